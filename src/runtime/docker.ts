// Docker runtime provider: one labelled container per conversation, found again by its name.
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../shared/errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';

/** Port the nested server listens on inside the container (env `port`, as OpenHands). */
export const NESTED_PORT = 3000;
/** Where the nested server keeps its file store inside the container: on the conversation's own volume at /data. */
export const DATA_PATH = '/data';
export const FILE_STORE_PATH = `${DATA_PATH}/file_store`;
/** Unprivileged user the sandbox runs as (the emulator image's `nestor` user). @default '10001:10001' */
export const SANDBOX_USER = '10001:10001';

export interface DockerProviderOptions {
  image: string;
  /** dockerode instance; @default one on the local socket (DOCKER_HOST honoured) */
  docker?: Docker;
  /** Container name prefix. @default 'nestor-conv-' */
  namePrefix?: string;
  /** Defaults when the settings name no limit. */
  defaults?: { cpus: number; memoryMb: number; pidsLimit: number };
  /**
   * Which Temporal service owns the containers (`<address>/<namespace>`), as label `nestor.owner`; `list` then sees
   * only those, so services sharing a Docker engine never reap each other's sandboxes. @default no owner label, list all
   */
  owner?: string;
}

/**
 * Sandbox networks: bridges with inter-container traffic disabled, so one sandbox cannot reach another. The internal
 * one has no route out (no egress); sandboxes on it cannot publish ports, so the worker reaches them by address.
 */
export const SANDBOX_NETWORK = 'nestor-sandboxes';
export const SANDBOX_NETWORK_INTERNAL = 'nestor-sandboxes-internal';

/** Documented defaults: 1 CPU, 1 GiB, 512 processes. */
export const DEFAULT_LIMITS = { cpus: 1, memoryMb: 1024, pidsLimit: 512 };

/** The conversation's data volume: outlives pauses, removed with the container. */
export function volumeName(conversationId: string, prefix = 'nestor-conv-'): string {
  return `${prefix}${conversationId}-data`;
}

/** Deterministic container name: a retried create finds the first attempt's container. */
export function containerName(conversationId: string, prefix = 'nestor-conv-'): string {
  return `${prefix}${conversationId}`;
}

/** The container create options for one conversation. Pure, so tests can check every field. */
export function buildContainerSpec(
  spec: RuntimeSpec,
  opts: { image: string; sessionApiKey: string; namePrefix?: string; defaults?: typeof DEFAULT_LIMITS; user?: string; owner?: string },
): Docker.ContainerCreateOptions {
  const limits = { ...DEFAULT_LIMITS, ...opts.defaults };
  const egress = spec.egress ?? true;
  const cpus = spec.cpus ?? limits.cpus;
  const memoryMb = spec.memoryMb ?? limits.memoryMb;
  const env: Record<string, string> = {
    ...spec.env,
    // Ours win over the settings' extras: these make the nested server what nestor expects.
    SESSION_API_KEY: opts.sessionApiKey,
    ALLOW_SET_CONVERSATION_ID: '1',
    port: String(NESTED_PORT),
    FILE_STORE_PATH,
    SANDBOX_CLOSE_DELAY: '0',
  };
  return {
    name: containerName(spec.conversationId, opts.namePrefix),
    Image: opts.image,
    User: opts.user ?? SANDBOX_USER,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABELS.managed]: 'true',
      [LABELS.conversationId]: spec.conversationId,
      [LABELS.userId]: spec.userId,
      ...(opts.owner && { [LABELS.owner]: opts.owner }),
    },
    ExposedPorts: { [`${NESTED_PORT}/tcp`]: {} },
    HostConfig: {
      NetworkMode: egress ? SANDBOX_NETWORK : SANDBOX_NETWORK_INTERNAL,
      // Docker picks the host port; only loopback can reach it. (An internal network cannot publish ports.)
      PortBindings: egress ? { [`${NESTED_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] } : {},
      NanoCpus: Math.round(cpus * 1e9),
      Memory: memoryMb * 1024 * 1024,
      PidsLimit: spec.pidsLimit ?? limits.pidsLimit,
      // Back up with the Docker daemon (or after a crash) unless nestor stopped it (a pause): a RUNNING conversation keeps
      // a running sandbox. Its port may change; the workflow recovers the address on the next delivery.
      RestartPolicy: { Name: 'unless-stopped' },
      // Hardened: no capabilities, no privilege escalation, a read-only root with scratch space in memory, and
      // the only writable, lasting place the conversation's own volume.
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,noexec,nosuid,size=64m' },
      Mounts: [{ Type: 'volume', Source: volumeName(spec.conversationId, opts.namePrefix), Target: DATA_PATH, ReadOnly: false }],
    },
  };
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

export class DockerRuntimeProvider implements RuntimeProvider {
  readonly kind = 'docker';
  readonly docker: Docker;
  private readonly prefix: string;
  private readonly networksReady = new Set<string>();

  constructor(private readonly opts: DockerProviderOptions) {
    this.docker = opts.docker ?? new Docker();
    this.prefix = opts.namePrefix ?? 'nestor-conv-';
  }

  async create(spec: RuntimeSpec): Promise<RuntimeHandle> {
    const name = containerName(spec.conversationId, this.prefix);
    const existing = await this.inspectRaw(name);
    if (existing) return this.adopt(existing);
    const sessionApiKey = randomBytes(32).toString('base64url');
    await this.ensureNetwork(spec.egress ?? true);
    // Labelled, so every volume nestor makes is accounted for like its containers. Creating an existing one is a no-op.
    await this.docker.createVolume({
      Name: volumeName(spec.conversationId, this.prefix),
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.conversationId]: spec.conversationId,
        [LABELS.userId]: spec.userId,
        ...(this.opts.owner && { [LABELS.owner]: this.opts.owner }),
      },
    });
    const createOpts = buildContainerSpec(spec, { image: this.opts.image, sessionApiKey, namePrefix: this.prefix, defaults: this.opts.defaults, owner: this.opts.owner });
    try {
      await this.docker.createContainer(createOpts);
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) {
        // Someone (a retry racing the first attempt) is creating it: adopt it once Docker shows it. Docker holds the
        // name before the container can be inspected, so wait briefly for it to appear.
        for (let wait = 20; wait <= 2000; wait *= 2) {
          const raced = await this.inspectRaw(name);
          if (raced) return this.adopt(raced);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      if (status === 404 && !/no such image/i.test((err as Error).message)) {
        // The network went away under us (deleted by hand): make it again on the next attempt.
        this.networksReady.clear();
        throw new NestorError(ErrorType.RuntimeStartFailed, `creating container ${name} failed: ${(err as Error).message}`, true);
      }
      if (status === 404) {
        throw new NestorError(
          ErrorType.RuntimeImageNotFound,
          `image '${this.opts.image}' not found locally; build it with 'npm run setup' (scripts/build-emulator-image.sh)`,
          false,
          { image: this.opts.image },
        );
      }
      throw new NestorError(ErrorType.RuntimeStartFailed, `creating container ${name} failed: ${(err as Error).message}`, true);
    }
    const created = await this.inspectRaw(name);
    if (!created) throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} vanished right after creation`, true);
    return this.adopt(created, false);
  }

  async pause(conversationId: string): Promise<void> {
    const c = this.docker.getContainer(containerName(conversationId, this.prefix));
    try {
      await c.stop({ t: 10 });
    } catch (err) {
      if (statusOf(err) !== 304) throw err; // 304: already stopped
    }
  }

  async resume(conversationId: string): Promise<RuntimeHandle> {
    const info = await this.inspectRaw(containerName(conversationId, this.prefix));
    if (!info) throw new NestorError(ErrorType.RuntimeStartFailed, `no container for conversation ${conversationId} to resume`, false);
    return this.adopt(info);
  }

  /** Remove the container and then its data volume. */
  async remove(conversationId: string): Promise<boolean> {
    let removed = true;
    try {
      await this.docker.getContainer(containerName(conversationId, this.prefix)).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) === 404) removed = false;
      else if (!(statusOf(err) === 409 && /already in progress/.test((err as Error).message))) throw err;
    }
    // The volume is freed a moment after a racing removal of its container: try again briefly while it is in use.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.docker.getVolume(volumeName(conversationId, this.prefix)).remove();
        break;
      } catch (err) {
        if (statusOf(err) === 404) break;
        if (statusOf(err) !== 409 || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return removed;
  }

  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    const info = await this.inspectRaw(containerName(conversationId, this.prefix));
    return info && {
      runtimeId: info.Id,
      name: info.Name.replace(/^\//, ''),
      conversationId: info.Config.Labels?.[LABELS.conversationId] ?? '',
      userId: info.Config.Labels?.[LABELS.userId] ?? '',
      state: info.State.Status,
      createdAt: info.Created,
    };
  }

  async list(): Promise<RuntimeSummary[]> {
    const label = [`${LABELS.managed}=true`, ...(this.opts.owner ? [`${LABELS.owner}=${this.opts.owner}`] : [])];
    const all = await this.docker.listContainers({ all: true, filters: { label } });
    return all.map((c) => ({
      runtimeId: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      conversationId: c.Labels[LABELS.conversationId] ?? '',
      userId: c.Labels[LABELS.userId] ?? '',
      state: c.State,
      createdAt: new Date(c.Created * 1000).toISOString(),
    }));
  }

  async diagnose(conversationId: string): Promise<string> {
    const name = containerName(conversationId, this.prefix);
    const info = await this.inspectRaw(name);
    if (!info) return `container ${name} does not exist`;
    const logs = await this.docker
      .getContainer(name)
      .logs({ stdout: true, stderr: true, tail: 5 })
      .then((b) => demux(b as unknown as Buffer).trim().split('\n').slice(-5).join(' | ').slice(0, 500))
      .catch(() => '');
    return `container ${name} is ${info.State.Status} (exit code ${info.State.ExitCode})${logs ? `; last log lines: ${logs}` : ''}`;
  }

  /** Start the container if needed and read its URL and session key back from Docker. */
  private async adopt(info: Docker.ContainerInspectInfo, adopted = true): Promise<RuntimeHandle> {
    const name = info.Name.replace(/^\//, '');
    if (info.Config.Labels?.[LABELS.managed] !== 'true') {
      throw new NestorError(ErrorType.RuntimeStartFailed, `a container named ${name} exists but is not managed by nestor; remove or rename it`, false);
    }
    const sessionApiKey = (info.Config.Env ?? []).find((e) => e.startsWith('SESSION_API_KEY='))?.slice('SESSION_API_KEY='.length);
    if (!sessionApiKey) throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} has no session API key`, false);
    if (!info.State.Running) {
      try {
        await this.docker.getContainer(info.Id).start();
      } catch (err) {
        if (statusOf(err) !== 304) {
          throw new NestorError(ErrorType.RuntimeStartFailed, `starting container ${name} failed: ${(err as Error).message}`, true);
        }
      }
      info = await this.docker.getContainer(info.Id).inspect();
    }
    const binding = info.NetworkSettings.Ports?.[`${NESTED_PORT}/tcp`]?.find((b) => b.HostIp === '127.0.0.1' && b.HostPort);
    if (binding) return { runtimeId: info.Id, url: `http://127.0.0.1:${binding.HostPort}`, sessionApiKey, adopted };
    // No egress: no published port; the sandbox is reached at its address on the internal bridge.
    const internalIp = info.NetworkSettings.Networks?.[SANDBOX_NETWORK_INTERNAL]?.IPAddress;
    if (internalIp) return { runtimeId: info.Id, url: `http://${internalIp}:${NESTED_PORT}`, sessionApiKey, adopted };
    throw new NestorError(ErrorType.RuntimeStartFailed, `container ${name} has no published port or internal address (state ${info.State.Status})`, true);
  }

  /** Create the sandbox network if it is missing (inter-container traffic off; internal when there is no egress). */
  private async ensureNetwork(egress: boolean): Promise<void> {
    const name = egress ? SANDBOX_NETWORK : SANDBOX_NETWORK_INTERNAL;
    if (this.networksReady.has(name)) return;
    try {
      await this.docker.getNetwork(name).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
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
    this.networksReady.add(name);
  }

  private async inspectRaw(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
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
