// The Docker provider's helpers that stand on their own: the sandbox networks, a container's logs, a missing image.
import type Docker from 'dockerode';
import { ErrorType, NestorError } from '../errors';
import { LABELS } from '../shared/constants';
import {
  DEFAULT_LIMITS,
  DEFERRED_INIT_ENV,
  SANDBOX_NETWORK,
  SANDBOX_NETWORK_INTERNAL,
  SESSION_KEY_ENV,
  resolveMemoryMb,
  type SandboxDefaults,
} from './container-spec';
import { MANIFEST_LABEL_PREFIX, UNLABELLED_MANIFEST, protocolOfKind, type ImageManifest } from './image-manifest';
import type { RuntimeHandle, RuntimeSpec } from './provider';

/** The HTTP status of a Docker API error (404: no such object, 409: conflict), if it has one. */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** The sandbox networks: bridges with inter-container traffic off; the internal one has no route out. */
export class SandboxNetworks {
  private readonly ready = new Set<string>();
  private readonly making = new Map<string, Promise<void>>();

  constructor(private readonly docker: Docker) {}

  /** Forget what was checked: a network deleted under us is made again on the next ensure. */
  forget(): void {
    this.ready.clear();
  }

  /** The host's address on a sandbox network (its bridge gateway); the network is created if missing. */
  async gateway(egress: boolean): Promise<string> {
    await this.ensure(egress);
    const net = await this.docker.getNetwork(egress ? SANDBOX_NETWORK : SANDBOX_NETWORK_INTERNAL).inspect();
    const gateway = (net.IPAM?.Config ?? []).map((c: { Gateway?: string }) => c.Gateway).find(Boolean);
    if (!gateway) throw new Error(`network ${net.Name} has no gateway address`);
    return gateway;
  }

  /**
   * Create the sandbox network if it is missing (inter-container traffic off; internal when there is no egress).
   * Docker's duplicate-name check is not atomic: two concurrent creates on a fresh engine made two networks of one
   * name (seen on a new sandbox host), and every start after failed with "network … is ambiguous". So creates in this
   * process are one at a time, and a duplicate another process made is removed (the oldest network stays).
   */
  async ensure(egress: boolean): Promise<void> {
    const name = egress ? SANDBOX_NETWORK : SANDBOX_NETWORK_INTERNAL;
    if (this.ready.has(name)) return;
    let making = this.making.get(name);
    if (!making) {
      making = this.make(name, egress).finally(() => this.making.delete(name));
      this.making.set(name, making);
    }
    await making;
    this.ready.add(name);
  }

  private async make(name: string, egress: boolean): Promise<void> {
    if ((await this.named(name)).length === 0) {
      try {
        await this.docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          Internal: !egress,
          CheckDuplicate: true,
          Options: { 'com.docker.network.bridge.enable_icc': 'false' },
          Labels: { [LABELS.managed]: 'true' },
        });
      } catch (cerr) {
        if (statusOf(cerr) !== 409) throw cerr; // created meanwhile by a racing start
      }
    }
    const [kept, ...extra] = await this.named(name);
    for (const n of extra)
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
    // One made by someone else (or an older tool) is used only if it isolates as nestor's would.
    const icc = kept?.Options?.['com.docker.network.bridge.enable_icc'];
    if (kept && (kept.Internal !== !egress || icc !== 'false'))
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `network ${name} exists but ${kept.Internal !== !egress ? `is ${kept.Internal ? '' : 'not '}internal` : 'lets containers reach each other (enable_icc is not false)'}: sandboxes on it would not be isolated as they must; remove it (docker network rm ${name}) and nestor makes it again`,
        false,
      );
  }

  /** The networks called exactly `name`, oldest first (the filter matches substrings). */
  private async named(name: string): Promise<Docker.NetworkInspectInfo[]> {
    const all = await this.docker.listNetworks({ filters: { name: [name] } });
    return all
      .filter((n) => n.Name === name)
      .sort((a, b) => a.Created.localeCompare(b.Created) || a.Id.localeCompare(b.Id));
  }
}

/** Docker multiplexes stdout/stderr with 8-byte frame headers when no TTY is attached; this joins the frames' text. */
export function demux(buf: Buffer): string {
  const parts: string[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len).toString('utf8'));
    i += 8 + len;
  }
  return parts.join('');
}

/** A container's last five log lines on one line (at most 500 characters), or '' when they cannot be read. */
export function lastLogLines(docker: Docker, name: string): Promise<string> {
  return docker
    .getContainer(name)
    .logs({ stdout: true, stderr: true, tail: 5 })
    .then((b) =>
      demux(b as unknown as Buffer)
        .trim()
        .split('\n')
        .slice(-5)
        .join(' | ')
        .slice(0, 500),
    )
    .catch(() => '');
}

/** The runtime image is not on this Docker engine: say how to build it. */
export function imageNotFound(image: string): NestorError {
  return new NestorError(
    ErrorType.RuntimeImageNotFound,
    `image '${image}' not found locally; build it with 'npm run setup' (scripts/build-openhands-image.sh, scripts/build-emulator-image.sh)`,
    false,
    { image },
  );
}

/** A container by name or ID; undefined when there is none (404). */
export async function inspectContainer(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Rename, atomically in the engine: 'gone' when the source no longer has that name, 'taken' when the target is in use. */
export async function renameContainer(docker: Docker, from: string, to: string): Promise<'done' | 'gone' | 'taken'> {
  try {
    await docker.getContainer(from).rename({ name: to });
    return 'done';
  } catch (err) {
    if (statusOf(err) === 404) return 'gone';
    if (statusOf(err) === 409) return 'taken';
    throw err;
  }
}

/**
 * The conversation's limits, set on a running container (`docker update`; a claimed pool member was made with the
 * defaults): only what differs. Memory and its swap limit move together (Docker refuses a memory limit above the
 * current swap limit).
 */
export async function applyLimits(
  docker: Docker,
  id: string,
  spec: RuntimeSpec,
  defaults: Partial<SandboxDefaults> | undefined,
  manifest: ImageManifest,
  /** Its limits now, from an inspect the caller made already (one call fewer on a claim); else read here. */
  current?: Docker.HostConfig,
): Promise<void> {
  const limits = { ...DEFAULT_LIMITS, ...defaults };
  const memory = resolveMemoryMb(spec, defaults, manifest) * 1024 * 1024;
  const c = docker.getContainer(id);
  current ??= (await c.inspect()).HostConfig;
  const update: Record<string, number> = {};
  const cpus = Math.round((spec.cpus ?? limits.cpus) * 1e9);
  if (current.NanoCpus !== cpus) update.NanoCpus = cpus;
  const pids = spec.pidsLimit ?? limits.pidsLimit;
  if (current.PidsLimit !== pids) update.PidsLimit = pids;
  if (current.Memory !== memory) Object.assign(update, { Memory: memory, MemorySwap: memory * 2 });
  if (Object.keys(update).length > 0) await c.update(update);
}

/** A variable of the container's environment, if set. */
export function envOf(info: Docker.ContainerInspectInfo, name: string): string | undefined {
  return (info.Config.Env ?? []).find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** Whether a sandbox's server boots dormant (a V1 pool member's): it waits for its conversation's keys at init. */
export const bootsDormant = (info: Docker.ContainerInspectInfo) => envOf(info, DEFERRED_INIT_ENV) === 'true';

/**
 * Start the container if needed and read its URL, session key and protocol back from Docker. `initKeys`: the keys its
 * server was given at init (a claimed V1 pool member's; its environment holds only the member's own).
 */
export async function handleOf(
  docker: Docker,
  info: Docker.ContainerInspectInfo,
  adopted = true,
  initKeys?: { sessionApiKey: string },
): Promise<RuntimeHandle> {
  const name = info.Name.replace(/^\//, '');
  if (info.Config.Labels?.[LABELS.managed] !== 'true') {
    throw new NestorError(
      ErrorType.RuntimeStartFailed,
      `a container named ${name} exists but is not managed by nestor; remove or rename it`,
      false,
    );
  }
  const sessionApiKey = initKeys?.sessionApiKey ?? envOf(info, SESSION_KEY_ENV.v1) ?? envOf(info, SESSION_KEY_ENV.v0);
  // Image labels are merged into the container's: the protocol is the image's it was made from, for its whole life.
  const protocol = protocolOfKind(info.Config.Labels?.[`${MANIFEST_LABEL_PREFIX}kind`]);
  if (!sessionApiKey)
    throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} has no session API key`, false);
  if (!info.State.Running) {
    try {
      await docker.getContainer(info.Id).start();
    } catch (err) {
      if (statusOf(err) !== 304) {
        throw new NestorError(
          ErrorType.RuntimeStartFailed,
          `starting container ${name} failed: ${(err as Error).message}`,
          true,
        );
      }
    }
    info = await docker.getContainer(info.Id).inspect();
  }
  // The port the container was created with (its image's manifest), whatever image is configured now.
  const port = Object.keys(info.Config.ExposedPorts ?? {})[0] ?? `${UNLABELLED_MANIFEST.port}/tcp`;
  const binding = info.NetworkSettings.Ports?.[port]?.find((b) => b.HostIp === '127.0.0.1' && b.HostPort);
  const handle = { runtimeId: info.Id, sessionApiKey, adopted, protocol, deferredInit: bootsDormant(info) };
  if (binding) return { ...handle, url: `http://127.0.0.1:${binding.HostPort}` };
  // No egress: no published port; the sandbox is reached at its address on the internal bridge.
  const internalIp = info.NetworkSettings.Networks?.[SANDBOX_NETWORK_INTERNAL]?.IPAddress;
  if (internalIp) return { ...handle, url: `http://${internalIp}:${parseInt(port, 10)}` };
  throw new NestorError(
    ErrorType.RuntimeStartFailed,
    `container ${name} has no published port or internal address (state ${info.State.Status})`,
    true,
  );
}

/** Remove a volume; gone already is fine. */
async function removeVolume(docker: Docker, name: string): Promise<void> {
  try {
    await docker.getVolume(name).remove();
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}

/** Remove a volume once Docker has let go of it: it is freed a moment after its container's (racing) removal. */
export async function removeVolumeWhenFree(docker: Docker, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await removeVolume(docker, name);
    } catch (err) {
      if (statusOf(err) !== 409 || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A volume's description, or undefined when there is none by that name. */
export function inspectVolume(docker: Docker, name: string): Promise<Docker.VolumeInspectInfo | undefined> {
  return docker
    .getVolume(name)
    .inspect()
    .catch((err) => {
      if (statusOf(err) === 404) return undefined;
      throw err;
    });
}

/** What state a container is in, with its last log lines: for a failure that says what the sandbox was doing. */
export async function diagnoseContainer(docker: Docker, name: string): Promise<string> {
  const info = await inspectContainer(docker, name);
  if (!info) return `container ${name} does not exist`;
  const logs = await lastLogLines(docker, name);
  return `container ${name} is ${info.State.Status} (exit code ${info.State.ExitCode})${logs ? `; last log lines: ${logs}` : ''}`;
}
