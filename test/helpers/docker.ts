// Docker helpers for end-to-end tests: the real engine, the emulator image, labelled containers.
import Docker from 'dockerode';
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
