// What a runtime image needs from the provider, read from its `nestor.runtime.*` labels (images/openhands/Dockerfile,
// scripts/build-emulator-image.sh), so defaults fit the image instead of being guessed for all of them.
import { z } from 'zod';

/** The images the set-up builds, by the name operators choose them with (NESTOR_RUNTIME). */
export const RUNTIME_IMAGES = {
  /** The current OpenHands agent server (openhands-agent-server 1.58.2, "V1"): real work, the default. */
  openhands: 'nestor-agent-server:1.58.2',
  /** The V0 nested server (openhands-ai 1.4.0), which OpenHands removed in 1.7.0: conversations started on it. */
  'openhands-v0': 'nestor-openhands:1.4.0',
  /** nestor's emulator of the nested server's contract: tests, fault injection, a quick try. */
  emulator: 'nestor-emulator:latest',
  /** The same emulator speaking the current agent server's (V1) contract. */
  'emulator-v1': 'nestor-emulator-v1:latest',
} as const;
export type RuntimeName = keyof typeof RUNTIME_IMAGES;

/** The image manifest kind of the current agent server: a sandbox of this kind speaks the V1 protocol. */
export const AGENT_SERVER_KIND = 'openhands-v1';
/** The emulator image that speaks the V1 contract. */
export const EMULATOR_V1_KIND = 'emulator-v1';

/**
 * Which HTTP protocol a sandbox's server speaks: `v1` (openhands-agent-server) or `v0` (the nested server of
 * openhands-ai ≤ 1.6.0, and the emulator). Read from the image kind a container was made from, so a conversation
 * keeps its protocol whatever the worker's default image is now.
 */
export type NestedProtocol = 'v0' | 'v1';
export function protocolOfKind(kind: string | undefined): NestedProtocol {
  return kind === AGENT_SERVER_KIND || kind === EMULATOR_V1_KIND ? 'v1' : 'v0';
}

export interface ImageManifest {
  /** `openhands-v1`, `openhands` (V0), `emulator`, or `unknown` for an image without labels. */
  kind: string;
  /** Port the nested server listens on inside the container (its `port` variable). */
  port: number;
  /** Below this a conversation cannot run: a request for less is InvalidSettings. */
  memoryFloorMb: number;
  /** Memory limit when neither the settings nor NESTOR_DEFAULT_MEMORY_MB say. */
  defaultMemoryMb: number;
  /** How long a cold start may take before GET /alive answers, when the start input names no bound. */
  aliveTimeoutMs: number;
  /** Size of the in-memory /tmp (fixed paths the server writes there). */
  tmpfsMb: number;
  /**
   * Extra environment for warm-pool members only: identity-free settings that make a pooled sandbox answer its first
   * conversation faster (OpenHands: `INITIAL_NUM_WARM_SERVERS=1`, one action server booted ahead). @default none
   */
  poolEnv: Record<string, string>;
}

/**
 * For an image without labels (an older or foreign build): the emulator's needs, as nestor assumed before images
 * declared theirs.
 */
export const UNLABELLED_MANIFEST: ImageManifest = {
  kind: 'unknown',
  port: 3000,
  memoryFloorMb: 64,
  defaultMemoryMb: 1024,
  aliveTimeoutMs: 120_000,
  tmpfsMb: 64,
  poolEnv: {},
};

export const MANIFEST_LABEL_PREFIX = 'nestor.runtime.';

const positive = z.coerce.number().int().positive();
const LabelsSchema = z.object({
  kind: z.string().min(1).optional(),
  port: positive.max(65535).optional(),
  'memory-floor-mb': positive.optional(),
  'default-memory-mb': positive.optional(),
  'alive-timeout-ms': positive.optional(),
  'tmpfs-mb': positive.optional(),
  /** `K=V` pairs separated by commas. */
  'pool-env': z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*=[^,]*(,[A-Za-z_][A-Za-z0-9_]*=[^,]*)*$/, 'expected K=V pairs separated by commas')
    .optional(),
});

/** The manifest from an image's labels; a malformed label is an error naming it (a broken build, not a default). */
export function manifestFromLabels(image: string, labels: Record<string, string> | null | undefined): ImageManifest {
  const ours = Object.fromEntries(
    Object.entries(labels ?? {})
      .filter(([k]) => k.startsWith(MANIFEST_LABEL_PREFIX))
      .map(([k, v]) => [k.slice(MANIFEST_LABEL_PREFIX.length), v]),
  );
  const r = LabelsSchema.safeParse(ours);
  if (!r.success) {
    const bad = r.error.issues.map((i) => `${MANIFEST_LABEL_PREFIX}${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`image '${image}' has malformed runtime labels (${bad}); rebuild it with 'npm run setup'`);
  }
  const l = r.data;
  const m: ImageManifest = {
    kind: l.kind ?? UNLABELLED_MANIFEST.kind,
    port: l.port ?? UNLABELLED_MANIFEST.port,
    memoryFloorMb: l['memory-floor-mb'] ?? UNLABELLED_MANIFEST.memoryFloorMb,
    defaultMemoryMb: l['default-memory-mb'] ?? UNLABELLED_MANIFEST.defaultMemoryMb,
    aliveTimeoutMs: l['alive-timeout-ms'] ?? UNLABELLED_MANIFEST.aliveTimeoutMs,
    tmpfsMb: l['tmpfs-mb'] ?? UNLABELLED_MANIFEST.tmpfsMb,
    poolEnv: Object.fromEntries(
      (l['pool-env']?.split(',') ?? []).map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]),
    ),
  };
  if (m.defaultMemoryMb < m.memoryFloorMb) {
    throw new Error(
      `image '${image}': ${MANIFEST_LABEL_PREFIX}default-memory-mb (${m.defaultMemoryMb}) is below its memory-floor-mb (${m.memoryFloorMb})`,
    );
  }
  return m;
}
