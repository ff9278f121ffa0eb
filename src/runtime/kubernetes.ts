// Kubernetes runtime provider (NESTOR_SANDBOX_ENGINE=kubernetes): each conversation's sandbox is a pod on any
// conformant cluster, through the official client (@kubernetes/client-node) with a kubeconfig or in-cluster
// credentials. Its objects (pod-spec.ts) are named after the conversation, or after the warm pool member it claimed
// (kubernetes-pool.ts), and labelled with it either way, so a retried create finds an earlier attempt's and adopts it
// (kubernetes-objects.ts). The data claim is the root: pause deletes the pod and keeps the claim, resume makes the pod
// again from the spec kept on the claim, remove deletes them all. Ownership (service, life) is checked on the claim's
// annotations exactly as on Docker's labels (ownership.ts).
import { randomBytes } from 'node:crypto';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';
import type { ImageManifest } from './image-manifest';
import type { SandboxDefaults } from './container-spec';
import { initializeServer } from './deferred-init';
import { claimOf, type Owner } from './ownership';
import {
  POD_TEMPLATE_ANNOTATION,
  buildClaim,
  buildNetworkPolicy,
  buildPod,
  buildSecret,
  identityLabels,
  type PodSettings,
} from './pod-spec';
import {
  kubeClients,
  type KubeClients,
  describePod,
  idempotent,
  lastPodLogLines,
  orAbsent,
  podState,
  summaryOf,
  waitGone,
} from './kubernetes-parts';
import { ConversationObjects, waitClaimGone } from './kubernetes-objects';
import { KubernetesPool } from './kubernetes-pool';

export interface KubernetesProviderOptions {
  image: string;
  /** What the image needs (port, memory, /tmp size): Kubernetes cannot read an image's labels, so nestor is told. */
  manifest: () => Promise<ImageManifest>;
  /** Namespace of the sandboxes (it must exist). */
  namespace: string;
  /** A kubeconfig file. @default KUBECONFIG, ~/.kube/config, or the pod's service account (in-cluster) */
  kubeconfig?: string;
  defaults?: Partial<SandboxDefaults>;
  /** The nestor service that owns the sandboxes (NESTOR_SERVICE_ID): only its own are adopted, listed and reaped. */
  owner?: string;
  /** Object name prefix. @default 'nestor-conv-' */
  namePrefix?: string;
  /** StorageClass of the data claims. @default the cluster's default */
  storageClass?: string;
  storageSize?: string;
  /** Addresses of nestor's workers outside the cluster, admitted by each sandbox's NetworkPolicy. */
  workerCidrs?: string[];
  /** The warm pool's name. @default from the image */
  poolName?: string;
  /** How long a pod may take to get its address (scheduled, volume bound, sandbox made). @default 120 s */
  addressTimeoutMs?: number;
}

export class KubernetesRuntimeProvider implements RuntimeProvider {
  readonly kind = 'kubernetes';
  private clients?: Promise<KubeClients>;
  private readonly objects: ConversationObjects;
  readonly pool: KubernetesPool;
  private readonly ns: string;
  private readonly prefix?: string;
  private readonly ownership: Owner;
  private readonly timeoutMs: number;

  constructor(private readonly o: KubernetesProviderOptions) {
    this.ns = o.namespace;
    this.prefix = o.namePrefix;
    this.ownership = { id: o.owner };
    this.timeoutMs = o.addressTimeoutMs ?? 120_000;
    const ctx = {
      api: () => this.api(),
      ns: o.namespace,
      prefix: o.namePrefix,
      owner: o.owner,
      timeoutMs: this.timeoutMs,
    };
    this.objects = new ConversationObjects(ctx);
    this.pool = new KubernetesPool(ctx, this.objects, {
      image: o.image,
      settings: () => this.settings(),
      workerCidrs: o.workerCidrs ?? [],
      ...(o.poolName && { poolName: o.poolName }),
    });
  }

  private api(): Promise<KubeClients> {
    this.clients ??= kubeClients(this.o.kubeconfig);
    return this.clients;
  }

  requirements(): Promise<ImageManifest> {
    return this.o.manifest();
  }

  private async settings(): Promise<PodSettings> {
    const o = this.o;
    return {
      image: o.image,
      manifest: await this.requirements(),
      namespace: this.ns,
      defaults: o.defaults,
      owner: o.owner,
      prefix: this.prefix,
      storageClass: o.storageClass,
      storageSize: o.storageSize,
    };
  }

  /** Whose the claim is: this start's (`own`) or an earlier life's; a stranger's or another service's throws. */
  private whose(claim: V1PersistentVolumeClaim, incarnation: string | undefined): 'own' | 'earlier' {
    return claimOf(claim.metadata?.name ?? '', identityLabels(claim.metadata ?? {}), this.ownership, incarnation);
  }

  async create(spec: RuntimeSpec): Promise<RuntimeHandle> {
    let claim = await this.objects.claim(spec.conversationId);
    if (claim && this.whose(claim, spec.incarnation) === 'earlier') {
      // An earlier life's data is never inherited: removed, and gone, before this life's claim takes its name.
      await this.remove(spec.conversationId);
      await waitClaimGone(this.objects, spec.conversationId, this.timeoutMs);
      claim = undefined;
    }
    // This start's own pooled sandbox (an earlier attempt claimed it): its claim finished and adopted.
    if (claim?.metadata?.labels?.[LABELS.poolMember]) return this.adoptPooled(claim, spec);
    const coldReason = claim ? undefined : (this.pool.ineligible(spec) ?? undefined);
    const pooled = claim || coldReason ? undefined : await this.pool.claim(spec);
    if (pooled) return pooled;
    return this.createCold(spec, claim, coldReason ?? 'the pool had no ready sandbox');
  }

  async claim(spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    const claim = await this.objects.claim(spec.conversationId);
    // A member an earlier attempt of this claim took is adopted; anything else (an earlier life's) is left for create.
    if (claim) {
      const ours = claim.metadata?.labels?.[LABELS.poolMember] && this.whose(claim, spec.incarnation) === 'own';
      return ours ? this.adoptPooled(claim, spec) : undefined;
    }
    return this.pool.ineligible(spec) ? undefined : this.pool.claim(spec);
  }

  /** A member this start claimed in an earlier attempt: its labelling finished (idempotent), then adopted. */
  private async adoptPooled(claim: V1PersistentVolumeClaim, spec: RuntimeSpec): Promise<RuntimeHandle> {
    const finished = await this.pool.finishClaim(claim.metadata!.labels![LABELS.poolMember]!, spec);
    return { ...(finished ?? (await this.objects.ensurePod(claim, true))), adopted: true, startPath: 'pool' };
  }

  private async createCold(
    spec: RuntimeSpec,
    existing: V1PersistentVolumeClaim | undefined,
    coldReason: string,
  ): Promise<RuntimeHandle> {
    const { core, net } = await this.api();
    const s = await this.settings();
    const claim = existing ?? (await this.createClaim(spec, s));
    // Made before the pod, after the claim (they name it as owner): an attempt killed in between left them missing,
    // and this one makes them. Already there (an earlier attempt's keys) is kept.
    const keys = {
      sessionApiKey: randomBytes(32).toString('base64url'),
      secretKey: randomBytes(32).toString('base64url'),
    };
    const secret = buildSecret(spec, s, keys);
    await this.objects.own(claim, secret.metadata!, (metadata) =>
      core.createNamespacedSecret({ namespace: this.ns, body: { ...secret, metadata } }),
    );
    const policy = buildNetworkPolicy(spec, s, { workerCidrs: this.o.workerCidrs ?? [] });
    await this.objects.own(claim, policy.metadata!, (metadata) =>
      net.createNamespacedNetworkPolicy({ namespace: this.ns, body: { ...policy, metadata } }),
    );
    const handle = await this.objects.ensurePod(claim, !!existing);
    return { ...handle, startPath: 'cold', ...(!existing && { coldReason }) };
  }

  /** The conversation's data claim, with the pod's spec on it; a racing attempt of this start may have made it. */
  private async createClaim(spec: RuntimeSpec, s: PodSettings): Promise<V1PersistentVolumeClaim> {
    const { core } = await this.api();
    const body = buildClaim(spec, s);
    body.metadata!.annotations![POD_TEMPLATE_ANNOTATION] = JSON.stringify(buildPod(spec, s));
    const made = await idempotent(core.createNamespacedPersistentVolumeClaim({ namespace: this.ns, body }));
    const claim = await this.objects.claim(spec.conversationId);
    if (!claim)
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `claim ${body.metadata!.name} vanished right after creation`,
        true,
      );
    if (!made && this.whose(claim, spec.incarnation) !== 'own')
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `claim ${body.metadata!.name} was created meanwhile by another life of the conversation`,
        true,
      );
    return claim;
  }

  /** A claimed V1 member's dormant server gets its conversation's keys (after every start of its pod). */
  async initialize(conversationId: string): Promise<void> {
    const pod = await this.objects.pod(conversationId);
    const keys = pod && (await this.objects.conversationKeys(pod));
    if (!pod || !keys) return;
    await initializeServer((await this.objects.handleOf(pod, true)).url, await this.objects.initKeyOf(pod), keys);
  }

  /** Delete the pod and keep the claim (its data) and the rest; returns once the pod is gone. */
  async pause(conversationId: string): Promise<void> {
    const { core } = await this.api();
    const pod = await this.objects.pod(conversationId);
    if (!pod) return;
    const name = pod.metadata!.name!;
    await idempotent(core.deleteNamespacedPod({ name, namespace: this.ns }));
    await waitGone(() => orAbsent(core.readNamespacedPod({ name, namespace: this.ns })), `pod ${name}`, this.timeoutMs);
  }

  async resume(conversationId: string, incarnation?: string): Promise<RuntimeHandle> {
    const claim = await this.objects.claim(conversationId);
    if (!claim)
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `no data claim for conversation ${conversationId} to resume`,
        false,
      );
    if (this.whose(claim, incarnation) !== 'own') {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `claim ${claim.metadata?.name} belongs to another life of conversation ${conversationId} (incarnation ${claim.metadata?.annotations?.[LABELS.incarnation]}); it is not resumed`,
        false,
      );
    }
    return this.objects.ensurePod(claim, true);
  }

  /** Delete pod, policy, secrets and claim, made cold or claimed (the volume goes by the class's reclaim policy). */
  remove(conversationId: string): Promise<boolean> {
    return this.objects.removeLabelled(conversationId);
  }

  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    const pod = await this.objects.pod(conversationId);
    if (pod) return summaryOf(pod.metadata!, podState(pod));
    const claim = await this.objects.claim(conversationId);
    // A paused conversation is its claim alone: its sandbox is stopped, in Docker's words.
    return claim && summaryOf(claim.metadata!, 'exited');
  }

  /** Every sandbox of this service with a claim or a pod (a pod without its claim is a leftover too). */
  async list(): Promise<RuntimeSummary[]> {
    const { core } = await this.api();
    const labelSelector = this.objects.selector();
    const [claims, pods] = await Promise.all([
      core.listNamespacedPersistentVolumeClaim({ namespace: this.ns, labelSelector }),
      core.listNamespacedPod({ namespace: this.ns, labelSelector }),
    ]);
    // One entry per sandbox, keyed by its claim's name (a pod's claim is its `data` volume's).
    const byClaim = new Map<string, RuntimeSummary>();
    for (const c of claims.items) byClaim.set(c.metadata!.name!, summaryOf(c.metadata!, 'exited'));
    for (const p of pods.items) {
      const claimOfPod = p.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
      byClaim.set(claimOfPod ?? p.metadata!.name!, summaryOf(p.metadata!, podState(p)));
    }
    return [...byClaim.values()];
  }

  async diagnose(conversationId: string): Promise<string> {
    const { core } = await this.api();
    const pod = await this.objects.pod(conversationId);
    if (!pod) return `no pod of conversation ${conversationId} exists`;
    const logs = await lastPodLogLines(core, this.ns, pod.metadata!.name!);
    return `${describePod(pod)}${logs ? `; last log lines: ${logs}` : ''}`;
  }
}
