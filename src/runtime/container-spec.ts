// The container a conversation's sandbox runs in: its name, volume, networks, limits and hardening, as pure functions
// of the request and the image's manifest, so tests can check every field without Docker.
import type Docker from 'dockerode';
import { DEFAULT_SANDBOX_LIMITS } from '../defaults';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeSpec } from './provider';
import { UNLABELLED_MANIFEST, protocolOfKind, type ImageManifest } from './image-manifest';

/** Where the nested server keeps its file store inside the container: on the conversation's own volume at /data. */
export const DATA_PATH = '/data';
export const FILE_STORE_PATH = `${DATA_PATH}/file_store`;
/** Unprivileged user the sandbox runs as (the images' `nestor` / `openhands` user). @default '10001:10001' */
export const SANDBOX_USER = '10001:10001';

/** Where each protocol's server reads its session key (the agent server also reads the V0 name, as a fallback). */
export const SESSION_KEY_ENV = { v0: 'SESSION_API_KEY', v1: 'OH_SESSION_API_KEYS_0' } as const;

/**
 * A V1 pool member boots dormant (the agent server's deferred init): its conversation routes answer 503 until
 * POST /api/init gives it the conversation's session and secret keys, authorized by the member's own init key (its
 * dormant OH_SECRET_KEY). A restart makes it dormant again, so every start of the container initializes it again.
 */
export const DEFERRED_INIT_ENV = 'OH_DEFERRED_INIT';
export const SECRET_KEY_ENV = 'OH_SECRET_KEY';

/**
 * Environment a conversation's settings may not set (`settings.sandbox.env`): what configures the server itself
 * (its keys, paths, lease, routes; the agent server reads every `OH_*` name as its configuration) and what nestor
 * sets for it. Refused with InvalidSettings naming the variable, instead of silently overridden or obeyed.
 */
export const RESERVED_ENV =
  /^(OH_.*|SESSION_API_KEY|ALLOW_SET_CONVERSATION_ID|port|FILE_STORE|FILE_STORE_PATH|SANDBOX_CLOSE_DELAY|OPENHANDS_AGENT_SERVER_CONFIG_PATH|RUNTIME|ENABLE_V1|HOME|PATH|USER)$/;

/** The first variable of `env` a conversation may not set, if any. */
export function reservedEnvName(env: Record<string, string> | undefined): string | undefined {
  return Object.keys(env ?? {}).find((k) => RESERVED_ENV.test(k));
}

/**
 * What nestor sets for the server, per protocol, over the image's own ENV. V1: the session key, a secret key of the
 * sandbox's own (the agent server encrypts the secrets it stores with it; it lives as long as the container and its
 * volume, so stored secrets survive restarts, and is never in the workflow's history).
 */
export function serverEnv(
  manifest: ImageManifest,
  keys: { sessionApiKey: string; secretKey?: string },
): Record<string, string> {
  if (protocolOfKind(manifest.kind) === 'v1') {
    return {
      [SESSION_KEY_ENV.v1]: keys.sessionApiKey,
      ...(keys.secretKey && { [SECRET_KEY_ENV]: keys.secretKey }),
    };
  }
  return {
    [SESSION_KEY_ENV.v0]: keys.sessionApiKey,
    ALLOW_SET_CONVERSATION_ID: '1',
    port: String(manifest.port),
    FILE_STORE_PATH,
    SANDBOX_CLOSE_DELAY: '0',
  };
}

/** Limits the operator set for sandboxes whose settings name none; memory unset means the image's default. */
export interface SandboxDefaults {
  cpus: number;
  memoryMb?: number;
  pidsLimit: number;
}

/**
 * Sandbox networks: bridges with inter-container traffic disabled, so one sandbox cannot reach another. The internal
 * one has no route out (no egress); sandboxes on it cannot publish ports, so the worker reaches them by address.
 */
export const SANDBOX_NETWORK = 'nestor-sandboxes';
export const SANDBOX_NETWORK_INTERNAL = 'nestor-sandboxes-internal';

/** @default DEFAULT_SANDBOX_LIMITS (defaults.ts); memory comes from the image's manifest (`default-memory-mb`). */
export const DEFAULT_LIMITS: SandboxDefaults = DEFAULT_SANDBOX_LIMITS;

/** The conversation's data volume: outlives pauses, removed with the container. */
export function volumeName(conversationId: string, prefix = 'nestor-conv-'): string {
  return `${prefix}${conversationId}-data`;
}

/** Deterministic container name: a retried create finds the first attempt's container. */
export function containerName(conversationId: string, prefix = 'nestor-conv-'): string {
  return `${prefix}${conversationId}`;
}

/**
 * The memory limit a sandbox gets: the settings', else the operator's default, else the image's; below the image's
 * floor it is InvalidSettings naming where the number came from.
 */
export function resolveMemoryMb(
  spec: Pick<RuntimeSpec, 'memoryMb'>,
  defaults: Partial<SandboxDefaults> | undefined,
  manifest: ImageManifest,
): number {
  const [memoryMb, field] =
    spec.memoryMb !== undefined
      ? [spec.memoryMb, 'settings.sandbox.memoryMb']
      : defaults?.memoryMb !== undefined
        ? [defaults.memoryMb, 'NESTOR_DEFAULT_MEMORY_MB']
        : [manifest.defaultMemoryMb, `the image's default-memory-mb label`];
  if (memoryMb < manifest.memoryFloorMb) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `${field}: ${memoryMb} MB is below the ${manifest.memoryFloorMb} MB the ${manifest.kind} runtime image needs for a live conversation`,
      false,
      { field, floorMb: manifest.memoryFloorMb },
    );
  }
  return memoryMb;
}

/** The container create options for one conversation. Pure, so tests can check every field. */
export function buildContainerSpec(
  spec: RuntimeSpec,
  opts: {
    image: string;
    sessionApiKey: string;
    /** The V1 server's OH_SECRET_KEY (random per sandbox). */
    secretKey?: string;
    namePrefix?: string;
    defaults?: Partial<SandboxDefaults>;
    user?: string;
    owner?: string;
    /** @default UNLABELLED_MANIFEST */
    manifest?: ImageManifest;
  },
): Docker.ContainerCreateOptions {
  const manifest = opts.manifest ?? UNLABELLED_MANIFEST;
  const limits = { ...DEFAULT_LIMITS, ...opts.defaults };
  const egress = spec.egress ?? true;
  const cpus = spec.cpus ?? limits.cpus;
  const memoryMb = resolveMemoryMb(spec, opts.defaults, manifest);
  const port = `${manifest.port}/tcp`;
  // Ours win over the settings' extras (which the settings check refuses anyway: RESERVED_ENV): these make the server
  // what nestor expects. The image's own ENV holds everything else it needs (images/*/Dockerfile).
  const env: Record<string, string> = {
    ...spec.env,
    ...serverEnv(manifest, { sessionApiKey: opts.sessionApiKey, secretKey: opts.secretKey }),
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
      ...(spec.incarnation && { [LABELS.incarnation]: spec.incarnation }),
    },
    ExposedPorts: { [port]: {} },
    HostConfig: {
      NetworkMode: egress ? SANDBOX_NETWORK : SANDBOX_NETWORK_INTERNAL,
      // Docker picks the host port; only loopback can reach it. (An internal network cannot publish ports.)
      PortBindings: egress ? { [port]: [{ HostIp: '127.0.0.1', HostPort: '' }] } : {},
      NanoCpus: Math.round(cpus * 1e9),
      Memory: memoryMb * 1024 * 1024,
      PidsLimit: spec.pidsLimit ?? limits.pidsLimit,
      // Back up with the Docker daemon (or after a crash) unless nestor stopped it (a pause): a RUNNING conversation keeps
      // a running sandbox. Its port may change; the workflow recovers the address on the next delivery.
      RestartPolicy: { Name: 'unless-stopped' },
      // A tiny init as PID 1 reaps the processes the agent server leaves (tmux, bash, Jupyter): without it they pile up
      // as zombies, and stopping the container ends them all.
      Init: true,
      // Hardened: no capabilities, no privilege escalation, a read-only root with scratch space in memory (sized by
      // the image: OpenHands writes fixed /tmp paths), and the only writable, lasting place the conversation's volume.
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,noexec,nosuid,size=${manifest.tmpfsMb}m` },
      Mounts: [
        {
          Type: 'volume',
          Source: volumeName(spec.conversationId, opts.namePrefix),
          Target: DATA_PATH,
          ReadOnly: false,
        },
      ],
    },
  };
}

/** A warm-pool member's name while booting and once ready (claimed, it takes its conversation's name). */
export function poolMemberName(
  pool: string,
  memberId: string,
  state: 'booting' | 'ready',
  prefix = 'nestor-pool-',
): string {
  return `${prefix}${pool}--${state}-${memberId}`;
}

/** The pool member's data volume: it becomes the claiming conversation's data (mounts are fixed at create). */
export function poolVolumeName(pool: string, memberId: string, prefix = 'nestor-pool-'): string {
  return `${prefix}${pool}-${memberId}-data`;
}

/**
 * The create options of a warm-pool member: a conversation's sandbox in every way (image, hardening, default limits,
 * the egress network) but identity-free: no conversation, user or incarnation label, no request env, only the
 * image's declared pool env and a session key of its own no one has read yet. A V1 member also boots dormant with
 * its init key (DEFERRED_INIT_ENV): the keys its conversation uses reach it only when claimed.
 */
export function buildPoolMemberSpec(opts: {
  pool: string;
  memberId: string;
  image: string;
  sessionApiKey: string;
  /** The V1 member's init key (its dormant OH_SECRET_KEY). */
  initKey?: string;
  poolPrefix?: string;
  defaults?: Partial<SandboxDefaults>;
  owner?: string;
  manifest: ImageManifest;
}): Docker.ContainerCreateOptions {
  const deferred = protocolOfKind(opts.manifest.kind) === 'v1';
  const base = buildContainerSpec(
    {
      conversationId: '',
      userId: '',
      env: { ...opts.manifest.poolEnv, ...(deferred && { [DEFERRED_INIT_ENV]: 'true' }) },
    },
    {
      image: opts.image,
      sessionApiKey: opts.sessionApiKey,
      secretKey: deferred ? opts.initKey : undefined,
      defaults: opts.defaults,
      manifest: opts.manifest,
    },
  );
  return {
    ...base,
    name: poolMemberName(opts.pool, opts.memberId, 'booting', opts.poolPrefix),
    Labels: poolLabels(opts.pool, opts.memberId, opts.owner),
    HostConfig: {
      ...base.HostConfig,
      Mounts: [
        { Type: 'volume', Source: poolVolumeName(opts.pool, opts.memberId, opts.poolPrefix), Target: DATA_PATH },
      ],
    },
  };
}

/** Labels of a pool member and its volume. */
export function poolLabels(pool: string, memberId: string, owner?: string): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.pool]: pool,
    [LABELS.poolMember]: memberId,
    ...(owner && { [LABELS.owner]: owner }),
  };
}

/** The pool of an image: its reference made a valid name part (`nestor-emulator:latest` → `nestor-emulator-latest`). */
export function poolNameFor(image: string): string {
  return image.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[^a-zA-Z0-9]+/, '');
}
