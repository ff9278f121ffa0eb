// The Kubernetes objects of a conversation's sandbox, as pure functions of the request and the image's manifest (like
// container-spec.ts for Docker), so tests check every field without a cluster:
//   - a PersistentVolumeClaim for its data (/data): it outlives pauses (the pod is deleted, the claim kept) and owns
//     the others (ownerReferences), so deleting it by hand takes everything with it;
//   - a Secret with the server's keys and the request's environment (never in the pod spec in clear);
//   - a NetworkPolicy: ingress only from nestor's workers, egress only when the start asks for it;
//   - the Pod, hardened: uid 10001, no capabilities, no privilege escalation, read-only root, seccomp RuntimeDefault,
//     limits, no service-account token.
// Kubernetes names are DNS labels and label values are short and plain, while a conversation ID may hold capitals,
// dots and underscores and a user or owner ID anything: names and labels carry a slug and a hash, the annotations
// carry the exact values (the conversation, user, owner and incarnation), which is what ownership is checked on.
import { createHash } from 'node:crypto';
import type { V1NetworkPolicy, V1PersistentVolumeClaim, V1Pod, V1Secret } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import { DEFAULT_LIMITS, DATA_PATH, resolveMemoryMb, serverEnv, type SandboxDefaults } from './container-spec';
import type { ImageManifest } from './image-manifest';
import type { RuntimeSpec } from './provider';

/** Where sandboxes run unless NESTOR_KUBERNETES_NAMESPACE says otherwise (the namespace must exist). */
export const SANDBOX_NAMESPACE = 'nestor-sandboxes';
/** The unprivileged uid and gid the sandbox runs as (the images' `nestor` / `openhands` user). */
export const SANDBOX_UID = 10001;
/** Label every sandbox pod carries: what a NetworkPolicy tells sandboxes from nestor's workers by. */
export const SANDBOX_LABEL = 'nestor.sandbox';
/** Label of a conversation's objects: a hash of its ID (IDs may hold what label values cannot). */
export const CONVERSATION_LABEL = 'nestor.conversation';
/** Label of nestor's worker pods (in-cluster workers): the only pods a sandbox accepts connections from. */
export const WORKER_LABEL = 'nestor.role';
/** The pod's own spec, kept on its claim so a resume re-creates the same pod (limits, egress, image). */
export const POD_TEMPLATE_ANNOTATION = 'nestor.pod-template';
/** The image's manifest kind the sandbox was made from: its protocol for its whole life. */
export const KIND_ANNOTATION = 'nestor.runtime.kind';

const hash = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** A label value for any string: its hash (label values are at most 63 plain characters). */
export function labelValue(s: string): string {
  return hash(s, 40);
}

/** The base name of a conversation's objects: a readable slug and a hash of the exact ID (DNS-label safe, ≤ 55). */
export function podName(conversationId: string, prefix = 'nestor-conv-'): string {
  const slug = conversationId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 30)
    .replace(/^-+|-+$/g, '');
  return `${prefix}${slug ? `${slug}-` : ''}${hash(conversationId, 12)}`;
}
export const claimName = (conversationId: string, prefix?: string) => `${podName(conversationId, prefix)}-data`;
export const secretName = (conversationId: string, prefix?: string) => `${podName(conversationId, prefix)}-keys`;

/** Who a sandbox's objects belong to: its conversation, user, service and life. */
export interface PodIdentity {
  conversationId: string;
  userId: string;
  owner?: string;
  incarnation?: string;
}

export function podLabels(id: PodIdentity): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [CONVERSATION_LABEL]: labelValue(id.conversationId),
    ...(id.owner && { [LABELS.owner]: labelValue(id.owner) }),
  };
}

export function podAnnotations(id: PodIdentity): Record<string, string> {
  return {
    [LABELS.conversationId]: id.conversationId,
    [LABELS.userId]: id.userId,
    ...(id.owner && { [LABELS.owner]: id.owner }),
    ...(id.incarnation && { [LABELS.incarnation]: id.incarnation }),
  };
}

/** The claim's metadata as Docker-style labels (exact values), for the ownership checks both providers share. */
export function identityLabels(meta: { labels?: Record<string, string>; annotations?: Record<string, string> }) {
  if (meta.labels?.[LABELS.managed] !== 'true') return meta.labels;
  const a = meta.annotations ?? {};
  return { [LABELS.managed]: 'true', ...a };
}

export interface PodSettings {
  image: string;
  manifest: ImageManifest;
  namespace: string;
  defaults?: Partial<SandboxDefaults>;
  owner?: string;
  prefix?: string;
  /** StorageClass of the data claims. @default the cluster's default class */
  storageClass?: string;
  /** Size asked for a conversation's data. @default '1Gi' */
  storageSize?: string;
}

export function buildClaim(spec: RuntimeSpec, s: PodSettings): V1PersistentVolumeClaim {
  const id = { ...spec, owner: s.owner };
  return {
    metadata: {
      name: claimName(spec.conversationId, s.prefix),
      namespace: s.namespace,
      labels: podLabels(id),
      annotations: podAnnotations(id),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: s.storageSize ?? '1Gi' } },
      ...(s.storageClass && { storageClassName: s.storageClass }),
    },
  };
}

/** The server's keys and the request's environment, for the pod's `envFrom`. */
export function buildSecret(
  spec: RuntimeSpec,
  s: PodSettings,
  keys: { sessionApiKey: string; secretKey?: string },
): V1Secret {
  const id = { ...spec, owner: s.owner };
  return {
    metadata: {
      name: secretName(spec.conversationId, s.prefix),
      namespace: s.namespace,
      labels: podLabels(id),
      annotations: podAnnotations(id),
    },
    type: 'Opaque',
    // Ours win over the request's extras (which the settings check refuses anyway: RESERVED_ENV).
    stringData: { ...spec.env, ...serverEnv(s.manifest, keys) },
  };
}

export function buildPod(spec: RuntimeSpec, s: PodSettings): V1Pod {
  const limits = { ...DEFAULT_LIMITS, ...s.defaults };
  const memoryMb = resolveMemoryMb(spec, s.defaults, s.manifest);
  const cpus = spec.cpus ?? limits.cpus;
  const id = { ...spec, owner: s.owner };
  return {
    metadata: {
      name: podName(spec.conversationId, s.prefix),
      namespace: s.namespace,
      labels: { ...podLabels(id), [SANDBOX_LABEL]: 'true' },
      annotations: { ...podAnnotations(id), [KIND_ANNOTATION]: s.manifest.kind },
    },
    spec: {
      // No Kubernetes API access from a user's agent, and no other services' addresses in its environment.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 10,
      securityContext: {
        runAsUser: SANDBOX_UID,
        runAsGroup: SANDBOX_UID,
        runAsNonRoot: true,
        // The data claim's files belong to the sandbox's group, so the server can write its file store there.
        fsGroup: SANDBOX_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'sandbox',
          image: s.image,
          // Images built where they run (no registry here) and tags like `latest` would otherwise be pulled.
          imagePullPolicy: 'IfNotPresent',
          ports: [{ name: 'server', containerPort: s.manifest.port }],
          envFrom: [{ secretRef: { name: secretName(spec.conversationId, s.prefix) } }],
          resources: {
            limits: { cpu: String(cpus), memory: `${memoryMb}Mi` },
            // The scheduler places by requests: a tenth of the CPU limit and a quarter of the memory, so mostly idle
            // conversations pack densely (a 2-core node holds 20 sandboxes of 1 CPU by their requests).
            requests: { cpu: String(Math.max(0.01, cpus / 10)), memory: `${Math.ceil(memoryMb / 4)}Mi` },
          },
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            readOnlyRootFilesystem: true,
            privileged: false,
          },
          volumeMounts: [
            { name: 'data', mountPath: DATA_PATH },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        },
      ],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: claimName(spec.conversationId, s.prefix) } },
        // OpenHands writes fixed /tmp paths; in memory and bounded like Docker's tmpfs.
        { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: `${s.manifest.tmpfsMb}Mi` } },
      ],
    },
  };
}

/** Who may connect to a sandbox: nestor's worker pods, and the addresses of workers outside the cluster. */
export interface PolicyPeers {
  /** CIDRs of workers outside the cluster (the local cluster's worker runs on the node: its IP /32). */
  workerCidrs: string[];
}

/**
 * Ingress only from nestor (its worker pods in the namespace, its workers' addresses), on the server's port: another
 * sandbox cannot connect. Egress only when the start asks for it.
 */
export function buildNetworkPolicy(spec: RuntimeSpec, s: PodSettings, peers: PolicyPeers): V1NetworkPolicy {
  const id = { ...spec, owner: s.owner };
  const egress = spec.egress ?? true;
  return {
    metadata: {
      name: podName(spec.conversationId, s.prefix),
      namespace: s.namespace,
      labels: podLabels(id),
      annotations: podAnnotations(id),
    },
    spec: {
      podSelector: { matchLabels: { [CONVERSATION_LABEL]: labelValue(spec.conversationId), [SANDBOX_LABEL]: 'true' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          // The client's model spells `from` `_from` (a reserved word in its generator); it is sent as `from`.
          _from: [
            { podSelector: { matchLabels: { [WORKER_LABEL]: 'worker' } } },
            ...peers.workerCidrs.map((cidr) => ({ ipBlock: { cidr } })),
          ],
          ports: [{ protocol: 'TCP', port: s.manifest.port }],
        },
      ],
      // Out anywhere when asked. Another sandbox is still closed: its own policy admits only nestor.
      egress: egress ? [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }] : [],
    },
  };
}
