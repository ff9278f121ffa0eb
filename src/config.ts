// All configuration comes from environment variables, parsed once here (every variable: docs/configuration.md).
import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from './shared/constants';
import {
  DEFAULT_MAX_CONVERSATIONS_PER_USER,
  DEFAULT_NESTED_TIMEOUT_MS,
  DEFAULT_REAPER_GRACE_MS,
  DEFAULT_POOL_SIZE,
  DEFAULT_HOST_CAPACITY,
  DEFAULT_REAPER_INTERVAL_MS,
  DEFAULT_SANDBOX_LIMITS,
  DEFAULT_SANDBOX_MAXIMA,
  DEFAULT_TOKEN_URLS,
} from './defaults';
import { formatIssues } from './shared/schemas';
import { ConfigError } from './errors';
import type { OAuthConfig } from './conversation/activities/tokens';
import type { ModelCapabilities } from './user-sessions/session';
import { parseEncryptionKeys, type EncryptionKey } from './codec/encryption';
import { RUNTIME_IMAGES, type ImageManifest, type RuntimeName } from './runtime/image-manifest';
import { HOST_ID_PATTERN, MAX_REGISTRY_SHARDS } from './sandbox-hosts/messages';
import { EngineEnv, engineOf, type SandboxEngine } from './sandbox-engine';

export { ConfigError };

/** The project root (where package.json is), whether running from src/ via tsx or from dist/src/. */
export const PROJECT_ROOT = resolve(__dirname, __dirname.includes(`${'/dist/'}`) ? '../..' : '..');

const int = (dflt: number) => z.coerce.number().int().positive().default(dflt);
const bool = (dflt: boolean) =>
  z
    .enum(['true', 'false', '1', '0'], { error: "expected 'true' or 'false'" })
    .default(dflt ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
const encryptionKeys = z.string().transform((s, ctx) => {
  try {
    return parseEncryptionKeys(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^NESTOR_ENCRYPTION_KEYS: /, '') });
    return z.NEVER;
  }
});
const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
const capabilitiesJson = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(z.string(), z.strictObject({ functionCalling: z.boolean().optional(), vision: z.boolean().optional() })),
  );

export const EnvSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  NESTOR_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  NESTOR_SERVICE_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, "expected letters, digits, '.', '_' and '-' (1-100 characters)")
    .optional(),
  NESTOR_DATA_DIR: z.string().min(1).default(resolve(PROJECT_ROOT, '.nestor')),
  NESTOR_TEMPORAL_BIN: z.string().min(1).default(resolve(PROJECT_ROOT, '.tools/temporal-1.5.1/temporal')),
  NESTOR_TEMPORAL_PORT: int(7233),
  NESTOR_UI_PORT: int(8233),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: bool(false),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  NESTOR_TEMPORAL_SERVER_DIR: z.string().min(1).default(resolve(PROJECT_ROOT, '.tools/temporal-server-1.29.2')),
  NESTOR_CLUSTER_PORT: int(7233),
  NESTOR_CLUSTER_PG_PORT: int(55432),
  // The local Kubernetes (`nestor kubernetes`): binaries and Debian's parts from scripts/ensure-kubernetes.sh.
  NESTOR_KUBERNETES_DIR: z.string().min(1).default(resolve(PROJECT_ROOT, '.tools/kubernetes-1.35.8')),
  NESTOR_KUBERNETES_API_PORT: int(16443),
  NESTOR_RUNTIME: z.enum(Object.keys(RUNTIME_IMAGES) as [RuntimeName, ...RuntimeName[]]).default('openhands'),
  NESTOR_RUNTIME_IMAGE: z.string().min(1).optional(),
  NESTOR_DEFAULT_CPUS: z.coerce.number().positive().default(DEFAULT_SANDBOX_LIMITS.cpus),
  NESTOR_DEFAULT_MEMORY_MB: z.coerce.number().int().positive().optional(),
  NESTOR_DEFAULT_PIDS_LIMIT: int(DEFAULT_SANDBOX_LIMITS.pidsLimit),
  NESTOR_MAX_CPUS: z.coerce.number().positive().default(DEFAULT_SANDBOX_MAXIMA.cpus),
  NESTOR_MAX_MEMORY_MB: int(DEFAULT_SANDBOX_MAXIMA.memoryMb),
  NESTOR_MAX_PIDS_LIMIT: int(DEFAULT_SANDBOX_MAXIMA.pidsLimit),
  NESTOR_NESTED_TIMEOUT_MS: int(DEFAULT_NESTED_TIMEOUT_MS),
  NESTOR_MAX_CONVERSATIONS_PER_USER: int(DEFAULT_MAX_CONVERSATIONS_PER_USER),
  NESTOR_MODEL_CAPABILITIES: capabilitiesJson.optional(),
  NESTOR_GITHUB_TOKEN_URL: z.url().default(DEFAULT_TOKEN_URLS.github),
  NESTOR_GITHUB_CLIENT_ID: z.string().optional(),
  NESTOR_GITHUB_CLIENT_SECRET: z.string().optional(),
  NESTOR_GITLAB_TOKEN_URL: z.url().default(DEFAULT_TOKEN_URLS.gitlab),
  NESTOR_GITLAB_CLIENT_ID: z.string().optional(),
  NESTOR_GITLAB_CLIENT_SECRET: z.string().optional(),
  NESTOR_BITBUCKET_TOKEN_URL: z.url().default(DEFAULT_TOKEN_URLS.bitbucket),
  NESTOR_BITBUCKET_CLIENT_ID: z.string().optional(),
  NESTOR_BITBUCKET_CLIENT_SECRET: z.string().optional(),
  NESTOR_ENCRYPTION_KEYS: encryptionKeys.optional(),
  NESTOR_REQUIRE_ENCRYPTION: bool(false),
  NESTOR_CODEC_PORT: int(8234),
  NESTOR_CODEC_CORS_ORIGINS: z.string().optional(),
  NESTOR_CODEC_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  NESTOR_CODEC_INSECURE: bool(false),
  NESTOR_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  NESTOR_WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(0).max(100_000).optional(),
  NESTOR_LOG_LEVEL: z.enum(LOG_LEVELS).default('INFO'),
  NESTOR_REAPER_INTERVAL_MS: z.coerce.number().int().min(0).default(DEFAULT_REAPER_INTERVAL_MS),
  NESTOR_REAPER_GRACE_MS: z.coerce.number().int().min(0).default(DEFAULT_REAPER_GRACE_MS),
  NESTOR_POOL_SIZE: z.coerce.number().int().min(0).max(1000).default(DEFAULT_POOL_SIZE),
  NESTOR_SANDBOX_HOSTS: bool(false),
  NESTOR_HOST_ID: z
    .string()
    .regex(
      HOST_ID_PATTERN,
      "expected lower-case letters, digits and '-' (1-63 characters), starting with a letter or digit",
    )
    .optional(),
  NESTOR_HOST_CAPACITY: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_HOST_CAPACITY),
  NESTOR_HOST_REGISTRY_SHARDS: z.coerce.number().int().min(1).max(MAX_REGISTRY_SHARDS).default(1),
  ...EngineEnv,
});

export interface NestorConfig {
  temporalAddress?: string;
  namespace: string;
  /**
   * The service that owns its sandboxes (label `nestor.owner`): the same for every worker of one deployment, whatever
   * address each reaches Temporal by. @default `<namespace>/<task queue>` (worker.ts runtimeOwner)
   */
  serviceId?: string;
  taskQueue: string;
  dataDir: string;
  temporalBin: string;
  temporalPort: number;
  uiPort: number;
  /** How to authenticate to Temporal beyond a plain local connection (a cluster with mTLS, Temporal Cloud). */
  temporalAuth: TemporalAuth;
  /** `nestor cluster`: binaries, frontend of the first server (the second is 100 above), PostgreSQL's port. */
  cluster: { binDir: string; basePort: number; pgPort: number };
  /** `nestor kubernetes`: the local cluster's binaries and its API server's port on 127.0.0.1. */
  kubernetes: { toolsDir: string; apiPort: number };
  /** Which runtime the sandboxes run (NESTOR_RUNTIME), and its image (NESTOR_RUNTIME_IMAGE overrides the tag). */
  runtime: RuntimeName;
  runtimeImage: string;
  /** The image's manifest as NESTOR_RUNTIME_MANIFEST gives it (a cluster cannot read its labels); else its labels. */
  runtimeManifest?: ImageManifest;
  /** Where sandboxes run (NESTOR_SANDBOX_ENGINE): this machine's Docker engine, or a Kubernetes cluster. */
  engine: SandboxEngine;
  /** Memory unset: the runtime image's own default (its manifest). */
  defaultLimits: { cpus: number; memoryMb?: number; pidsLimit: number };
  maxLimits: { cpus: number; memoryMb: number; pidsLimit: number };
  nestedTimeoutMs: number;
  maxConversationsPerUser: number;
  modelCapabilities?: Record<string, ModelCapabilities>;
  oauth: OAuthConfig;
  /** From NESTOR_ENCRYPTION_KEYS; absent means the development key (codec/keys.ts). */
  encryptionKeys?: EncryptionKey[];
  requireEncryption: boolean;
  /** `insecure`: serve without a token (local development only; `nestor dev` does so when no token is set). */
  codec: { port: number; corsOrigins: string[]; token?: string; insecure: boolean };
  /** Prometheus endpoint port on 127.0.0.1; 0 turns it off. */
  metricsPort: number;
  /**
   * Workflows a worker keeps in memory (Temporal's sticky cache); beyond it the least recently used is evicted and
   * replayed from its history when it next has work. Unset: the SDK's default, sized from the heap limit.
   */
  workflowCacheSize?: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** The orphan reaper's schedule: every intervalMs (0: no schedule), sparing runtimes younger than graceMs. */
  reaper: { intervalMs: number; graceMs: number };
  /**
   * The warm pool of the runtime image: members a worker starts it with when none runs (0: the worker starts none;
   * `nestor pool resize` sets it from then on).
   */
  poolSize: number;
  /**
   * Sandbox hosts. `enabled` (NESTOR_SANDBOX_HOSTS): this service's conversations place their sandboxes on registered
   * hosts. `hostId`/`capacity`: what `nestor host-worker` registers its Docker engine as. `registryShards`
   * (NESTOR_HOST_REGISTRY_SHARDS): how many workflows the host registry is (the same on every worker, host worker and CLI).
   */
  sandboxHosts: { enabled: boolean; hostId?: string; capacity: number; registryShards: number };
}

/**
 * TLS and API key for Temporal, under the names Temporal's own clients read (TEMPORAL_API_KEY, TEMPORAL_TLS_*).
 * An API key implies TLS (Temporal Cloud refuses it in clear); a client certificate needs its key.
 */
export interface TemporalAuth {
  apiKey?: string;
  tls?: { clientCertPath?: string; clientKeyPath?: string; serverCaCertPath?: string; serverName?: string };
}

function temporalAuth(e: z.infer<typeof EnvSchema>): TemporalAuth {
  if (!!e.TEMPORAL_TLS_CLIENT_CERT_PATH !== !!e.TEMPORAL_TLS_CLIENT_KEY_PATH)
    throw new ConfigError(
      'invalid environment: TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: set both (a client certificate and its key) or neither',
    );
  const tlsAsked =
    e.TEMPORAL_TLS ||
    !!e.TEMPORAL_API_KEY ||
    !!e.TEMPORAL_TLS_CLIENT_CERT_PATH ||
    !!e.TEMPORAL_TLS_SERVER_CA_CERT_PATH ||
    !!e.TEMPORAL_TLS_SERVER_NAME;
  return {
    ...(e.TEMPORAL_API_KEY && { apiKey: e.TEMPORAL_API_KEY }),
    ...(tlsAsked && {
      tls: {
        clientCertPath: e.TEMPORAL_TLS_CLIENT_CERT_PATH,
        clientKeyPath: e.TEMPORAL_TLS_CLIENT_KEY_PATH,
        serverCaCertPath: e.TEMPORAL_TLS_SERVER_CA_CERT_PATH,
        serverName: e.TEMPORAL_TLS_SERVER_NAME,
      },
    }),
  };
}

/** Parse the environment; a bad variable is named with what was expected. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): NestorConfig {
  const r = EnvSchema.safeParse(env);
  if (!r.success) throw new ConfigError(`invalid environment: ${formatIssues(r.error)}`);
  const e = r.data;
  return {
    temporalAddress: e.TEMPORAL_ADDRESS,
    namespace: e.TEMPORAL_NAMESPACE,
    serviceId: e.NESTOR_SERVICE_ID,
    taskQueue: e.NESTOR_TASK_QUEUE,
    dataDir: e.NESTOR_DATA_DIR,
    temporalBin: e.NESTOR_TEMPORAL_BIN,
    temporalPort: e.NESTOR_TEMPORAL_PORT,
    uiPort: e.NESTOR_UI_PORT,
    temporalAuth: temporalAuth(e),
    cluster: {
      binDir: e.NESTOR_TEMPORAL_SERVER_DIR,
      basePort: e.NESTOR_CLUSTER_PORT,
      pgPort: e.NESTOR_CLUSTER_PG_PORT,
    },
    kubernetes: { toolsDir: e.NESTOR_KUBERNETES_DIR, apiPort: e.NESTOR_KUBERNETES_API_PORT },
    runtime: e.NESTOR_RUNTIME,
    runtimeImage: e.NESTOR_RUNTIME_IMAGE ?? RUNTIME_IMAGES[e.NESTOR_RUNTIME],
    runtimeManifest: e.NESTOR_RUNTIME_MANIFEST,
    engine: engineOf(e),
    defaultLimits: {
      cpus: e.NESTOR_DEFAULT_CPUS,
      memoryMb: e.NESTOR_DEFAULT_MEMORY_MB,
      pidsLimit: e.NESTOR_DEFAULT_PIDS_LIMIT,
    },
    maxLimits: { cpus: e.NESTOR_MAX_CPUS, memoryMb: e.NESTOR_MAX_MEMORY_MB, pidsLimit: e.NESTOR_MAX_PIDS_LIMIT },
    nestedTimeoutMs: e.NESTOR_NESTED_TIMEOUT_MS,
    maxConversationsPerUser: e.NESTOR_MAX_CONVERSATIONS_PER_USER,
    modelCapabilities: e.NESTOR_MODEL_CAPABILITIES,
    encryptionKeys: e.NESTOR_ENCRYPTION_KEYS,
    requireEncryption: e.NESTOR_REQUIRE_ENCRYPTION,
    codec: {
      port: e.NESTOR_CODEC_PORT,
      // The browser calls the codec server from the UI's page: only that origin may read its answers.
      corsOrigins: (
        e.NESTOR_CODEC_CORS_ORIGINS ?? `http://127.0.0.1:${e.NESTOR_UI_PORT},http://localhost:${e.NESTOR_UI_PORT}`
      )
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      token: e.NESTOR_CODEC_TOKEN,
      insecure: e.NESTOR_CODEC_INSECURE,
    },
    metricsPort: e.NESTOR_METRICS_PORT,
    workflowCacheSize: e.NESTOR_WORKFLOW_CACHE_SIZE,
    logLevel: e.NESTOR_LOG_LEVEL,
    reaper: { intervalMs: e.NESTOR_REAPER_INTERVAL_MS, graceMs: e.NESTOR_REAPER_GRACE_MS },
    poolSize: e.NESTOR_POOL_SIZE,
    sandboxHosts: {
      enabled: e.NESTOR_SANDBOX_HOSTS,
      hostId: e.NESTOR_HOST_ID,
      capacity: e.NESTOR_HOST_CAPACITY,
      registryShards: e.NESTOR_HOST_REGISTRY_SHARDS,
    },
    oauth: { github: oauthOf(e, 'GITHUB'), gitlab: oauthOf(e, 'GITLAB'), bitbucket: oauthOf(e, 'BITBUCKET') },
  };
}

/** A git provider's OAuth client, from its NESTOR_<PROVIDER>_{TOKEN_URL,CLIENT_ID,CLIENT_SECRET}. */
function oauthOf(e: z.infer<typeof EnvSchema>, p: 'GITHUB' | 'GITLAB' | 'BITBUCKET') {
  return {
    tokenUrl: e[`NESTOR_${p}_TOKEN_URL`],
    clientId: e[`NESTOR_${p}_CLIENT_ID`],
    clientSecret: e[`NESTOR_${p}_CLIENT_SECRET`],
  };
}

/** The address to reach Temporal at: TEMPORAL_ADDRESS, else the local dev server. */
export function temporalAddress(c: NestorConfig): string {
  return c.temporalAddress ?? `127.0.0.1:${c.temporalPort}`;
}
