// Where sandboxes run (NESTOR_SANDBOX_ENGINE): the Docker engine on the worker's machine (the default, embedded) or a
// Kubernetes cluster (each sandbox a pod, src/runtime/kubernetes.ts). Its variables, parsed with the rest of the
// configuration (config.ts), and the provider they make.
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ErrorType, NestorError } from './errors';
import { DockerRuntimeProvider } from './runtime/docker';
import { KubernetesRuntimeProvider } from './runtime/kubernetes';
import { MANIFEST_LABEL_PREFIX, manifestFromLabels, type ImageManifest } from './runtime/image-manifest';
import { SANDBOX_NAMESPACE } from './runtime/pod-spec';
import type { SandboxDefaults } from './runtime/container-spec';

const cidr = z.string().refine((s) => {
  const [ip, bits, ...rest] = s.split('/');
  return rest.length === 0 && isIPv4(ip) && /^\d+$/.test(bits ?? '') && Number(bits) <= 32;
}, 'expected an IPv4 CIDR such as 10.0.0.5/32');

/** The manifest the image's labels would give, as JSON of label names without their prefix (`{"kind":"emulator"}`). */
const manifestJson = z.string().transform((s, ctx) => {
  try {
    const labels = JSON.parse(s) as Record<string, unknown>;
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new Error('not an object');
    const prefixed = Object.fromEntries(Object.entries(labels).map(([k, v]) => [MANIFEST_LABEL_PREFIX + k, String(v)]));
    return manifestFromLabels('NESTOR_RUNTIME_MANIFEST', prefixed);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `expected a JSON object of runtime labels: ${(err as Error).message}` });
    return z.NEVER;
  }
});

const EngineSchema = z.object({
  NESTOR_SANDBOX_ENGINE: z.enum(['docker', 'kubernetes']).default('docker'),
  NESTOR_KUBERNETES_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a namespace name (a DNS label)')
    .default(SANDBOX_NAMESPACE),
  NESTOR_KUBERNETES_STORAGE_CLASS: z.string().min(1).optional(),
  NESTOR_KUBERNETES_STORAGE_SIZE: z
    .string()
    .regex(/^\d+(Mi|Gi|Ti)$/, 'expected a size such as 1Gi or 500Mi')
    .default('1Gi'),
  NESTOR_KUBERNETES_WORKER_CIDRS: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(cidr))
    .optional(),
  NESTOR_RUNTIME_MANIFEST: manifestJson.optional(),
});
/** The variables, for config.ts's schema. */
export const EngineEnv = EngineSchema.shape;

export type SandboxEngine =
  | { kind: 'docker' }
  | {
      kind: 'kubernetes';
      namespace: string;
      storageClass?: string;
      storageSize: string;
      workerCidrs: string[];
    };

type EngineVars = z.infer<typeof EngineSchema>;

export function engineOf(e: EngineVars): SandboxEngine {
  if (e.NESTOR_SANDBOX_ENGINE === 'docker') return { kind: 'docker' };
  return {
    kind: 'kubernetes',
    namespace: e.NESTOR_KUBERNETES_NAMESPACE,
    storageClass: e.NESTOR_KUBERNETES_STORAGE_CLASS,
    storageSize: e.NESTOR_KUBERNETES_STORAGE_SIZE,
    workerCidrs: e.NESTOR_KUBERNETES_WORKER_CIDRS ?? [],
  };
}

/**
 * The Kubernetes provider of the configuration. A cluster cannot read an image's labels, so the image's manifest is
 * NESTOR_RUNTIME_MANIFEST, else read from the local Docker engine's copy of the image (where the set-up builds it).
 * Credentials: KUBECONFIG, ~/.kube/config, or the worker pod's service account.
 */
export function kubernetesProvider(o: {
  engine: Extract<SandboxEngine, { kind: 'kubernetes' }>;
  image: string;
  manifest?: ImageManifest;
  defaults?: Partial<SandboxDefaults>;
  owner: string;
  kubeconfig?: string;
}): KubernetesRuntimeProvider {
  const fromDocker = new DockerRuntimeProvider({ image: o.image });
  return new KubernetesRuntimeProvider({
    image: o.image,
    manifest: async () =>
      o.manifest ??
      fromDocker.requirements().catch((err: Error) => {
        throw new NestorError(
          ErrorType.RuntimeImageNotFound,
          `the Kubernetes engine reads image ${o.image}'s manifest from NESTOR_RUNTIME_MANIFEST (its nestor.runtime.* labels as JSON, e.g. {"kind":"emulator","port":3000}) or from the local Docker engine's copy of the image, and had neither: ${err.message}`,
          false,
        );
      }),
    namespace: o.engine.namespace,
    kubeconfig: o.kubeconfig,
    defaults: o.defaults,
    owner: o.owner,
    storageClass: o.engine.storageClass,
    storageSize: o.engine.storageSize,
    workerCidrs: o.engine.workerCidrs,
  });
}
