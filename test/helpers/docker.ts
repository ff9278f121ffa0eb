// Docker helpers for end-to-end tests: the real engine, the emulator image, labelled containers.
import Docker from 'dockerode';
import type { ConversationClient } from '../../src/conversation/client';
import { demux } from '../../src/runtime/docker';
import { LABELS } from '../../src/shared/constants';

export const docker = new Docker();

/** Containers carrying nestor's label for one conversation. */
export async function containersFor(conversationId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.conversationId}=${conversationId}`] } });
}

/** Volumes carrying nestor's label for one conversation. */
export async function volumesFor(conversationId: string): Promise<Docker.VolumeInspectInfo[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABELS.conversationId}=${conversationId}`] } });
  return Volumes ?? [];
}

/** Remove every container and volume a test made, whatever happened (a pooled sandbox carries no conversation label). */
export async function removeContainers(conversationIds: Iterable<string>): Promise<void> {
  for (const id of conversationIds) {
    const pooled = await docker
      .getContainer(`nestor-conv-${id}`)
      .inspect()
      .catch(() => undefined);
    if (pooled?.Config.Labels?.[LABELS.pool]) {
      await docker
        .getContainer(pooled.Id)
        .remove({ force: true })
        .catch(() => {});
      for (const m of pooled.Mounts ?? [])
        if (m.Name)
          await docker
            .getVolume(m.Name)
            .remove()
            .catch(() => {});
    }
    for (const c of await containersFor(id))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    for (const v of await volumesFor(id))
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => {});
  }
}

/**
 * Run `fn`; if it fails, the failure carries the last lines of the conversation's sandbox logs, so a start or resume
 * that failed on a busy CI machine says what the server inside was doing (the sandbox is gone by the time anyone looks).
 */
export async function withSandboxLogs<T>(conversationId: string, fn: () => Promise<T>, lines = 60): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const logs: string[] = [];
    for (const c of await containersFor(conversationId).catch(() => [])) {
      const buf = (await docker
        .getContainer(c.Id)
        .logs({ stdout: true, stderr: true, tail: lines, timestamps: true })
        .catch((e: Error) => Buffer.from(`(logs unavailable: ${e.message})`))) as Buffer;
      logs.push(`--- ${c.Names[0]} (${c.State}), last ${lines} lines:\n${demux(buf)}`);
    }
    if (err instanceof Error && logs.length) err.message += `\n${logs.join('\n')}`;
    throw err;
  }
}

/** The client's start and resume, failing with the sandbox's last log lines (withSandboxLogs); for real-server tests. */
export function logsOnFailure(client: ConversationClient): ConversationClient {
  const start = client.start.bind(client);
  const resume = client.resume.bind(client);
  client.start = (req) => withSandboxLogs(req.conversationId, () => start(req));
  client.resume = (id) => withSandboxLogs(id, () => resume(id));
  return client;
}
