// Kubernetes runtime provider (NESTOR_SANDBOX_ENGINE=kubernetes): each conversation's sandbox is a pod on any
// conformant cluster, through the official client (@kubernetes/client-node) with a kubeconfig or in-cluster
// credentials. Its objects (pod-spec.ts) are named after the conversation, so a retried create finds an earlier
// attempt's and adopts it; the data claim is the root: pause deletes the pod and keeps the claim, resume makes the
// pod again from the spec kept on the claim, remove deletes them all. Ownership (service, life) is checked on the
// claim's annotations exactly as on Docker's labels (ownership.ts).
import { randomBytes } from 'node:crypto';
import type { V1ObjectMeta, V1OwnerReference, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec, RuntimeSummary } from './provider';
import type { ImageManifest } from './image-manifest';
import type { SandboxDefaults } from './container-spec';
import { claimOf, type Owner } from './ownership';
import {
  POD_TEMPLATE_ANNOTATION,
  buildClaim,
  buildNetworkPolicy,
  buildPod,
  buildSecret,
  claimName,
  identityLabels,
  labelValue,
  podName,
  secretName,
  type PodSettings,
} from './pod-spec';
import {
  handleOfPod,
  kubeClients,
  type KubeClients,
  describePod,
  idempotent,
  lastPodLogLines,
  orAbsent,
  podState,
  summaryOf,
  waitGone,
  waitPodAddress,
} from './kubernetes-parts';

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
  /** How long a pod may take to get its address (scheduled, volume bound, sandbox made). @default 120 s */
  addressTimeoutMs?: number;
}

export class KubernetesRuntimeProvider implements RuntimeProvider {
  readonly kind = 'kubernetes';
  private clients?: Promise<KubeClients>;
  private readonly ns: string;
  private readonly prefix?: string;
  private readonly ownership: Owner;
  private readonly timeoutMs: number;

  constructor(private readonly o: KubernetesProviderOptions) {
    this.ns = o.namespace;
    this.prefix = o.namePrefix;
    this.ownership = { id: o.owner };
    this.timeoutMs = o.addressTimeoutMs ?? 120_000;
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

  private async readClaim(conversationId: string): Promise<V1PersistentVolumeClaim | undefined> {
    const { core } = await this.api();
    return orAbsent(
      core.readNamespacedPersistentVolumeClaim({
        name: claimName(conversationId, this.prefix),
        namespace: this.ns,
      }),
    );
  }

  private async readPod(conversationId: string): Promise<V1Pod | undefined> {
    const { core } = await this.api();
    return orAbsent(core.readNamespacedPod({ name: podName(conversationId, this.prefix), namespace: this.ns }));
  }

  /** Whose the claim is: this start's (`own`) or an earlier life's; a stranger's or another service's throws. */
  private whose(claim: V1PersistentVolumeClaim, incarnation: string | undefined): 'own' | 'earlier' {
    return claimOf(claim.metadata?.name ?? '', identityLabels(claim.metadata ?? {}), this.ownership, incarnation);
  }

  async create(spec: RuntimeSpec): Promise<RuntimeHandle> {
    const { core, net } = await this.api();
    let claim = await this.readClaim(spec.conversationId);
    if (claim && this.whose(claim, spec.incarnation) === 'earlier') {
      // An earlier life's data is never inherited: removed, and gone, before this life's claim takes its name.
      await this.remove(spec.conversationId);
      await waitGone(
        () => this.readClaim(spec.conversationId),
        `claim ${claimName(spec.conversationId, this.prefix)}`,
        this.timeoutMs,
      );
      claim = undefined;
    }
    const adopted = !!claim;
    const s = await this.settings();
    if (!claim) claim = await this.createClaim(spec, s);
    // Made before the pod, after the claim (they name it as owner): an attempt killed in between left them missing,
    // and this one makes them. Already there (an earlier attempt's keys) is kept.
    const keys = {
      sessionApiKey: randomBytes(32).toString('base64url'),
      secretKey: randomBytes(32).toString('base64url'),
    };
    const secret = buildSecret(spec, s, keys);
    await this.own(claim, secret.metadata!, (metadata) =>
      core.createNamespacedSecret({ namespace: this.ns, body: { ...secret, metadata } }),
    );
    const policy = buildNetworkPolicy(spec, s, { workerCidrs: this.o.workerCidrs ?? [] });
    await this.own(claim, policy.metadata!, (metadata) =>
      net.createNamespacedNetworkPolicy({ namespace: this.ns, body: { ...policy, metadata } }),
    );
    const handle = await this.ensurePod(claim, adopted);
    return {
      ...handle,
      startPath: 'cold',
      ...(!adopted && { coldReason: 'the Kubernetes provider keeps no warm pool' }),
    };
  }

  /** The conversation's data claim, with the pod's spec on it; a racing attempt of this start may have made it. */
  private async createClaim(spec: RuntimeSpec, s: PodSettings): Promise<V1PersistentVolumeClaim> {
    const { core } = await this.api();
    const body = buildClaim(spec, s);
    body.metadata!.annotations![POD_TEMPLATE_ANNOTATION] = JSON.stringify(buildPod(spec, s));
    const made = await idempotent(core.createNamespacedPersistentVolumeClaim({ namespace: this.ns, body }));
    const claim = await this.readClaim(spec.conversationId);
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

  /** Create an object owned by the claim (Kubernetes deletes it with the claim); already there is fine. */
  private async own(claim: V1PersistentVolumeClaim, meta: V1ObjectMeta, create: (m: V1ObjectMeta) => Promise<unknown>) {
    const ref: V1OwnerReference = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: claim.metadata!.name!,
      uid: claim.metadata!.uid!,
    };
    await idempotent(create({ ...meta, ownerReferences: [ref] }));
  }

  /** The claim's pod, made from the spec kept on the claim when it is not there (first start, resume, deleted). */
  private async ensurePod(claim: V1PersistentVolumeClaim, adopted: boolean): Promise<RuntimeHandle> {
    const { core } = await this.api();
    const conversationId = claim.metadata!.annotations![LABELS.conversationId]!;
    const name = podName(conversationId, this.prefix);
    let pod = await this.readPod(conversationId);
    if (pod?.metadata?.deletionTimestamp) {
      // A pause (or a drain) is deleting it: the new one takes its name once it is gone.
      await waitGone(() => this.readPod(conversationId), `pod ${name}`, this.timeoutMs);
      pod = undefined;
    }
    if (!pod) {
      const template = claim.metadata?.annotations?.[POD_TEMPLATE_ANNOTATION];
      if (!template)
        throw new NestorError(
          ErrorType.RuntimeStartFailed,
          `claim ${claim.metadata!.name} has no pod template (${POD_TEMPLATE_ANNOTATION})`,
          false,
        );
      const body = JSON.parse(template) as V1Pod;
      await this.own(claim, body.metadata!, (metadata) =>
        core.createNamespacedPod({ namespace: this.ns, body: { ...body, metadata } }),
      );
    }
    pod = await waitPodAddress(core, this.ns, name, this.timeoutMs);
    return this.handleOf(pod, adopted);
  }

  private async handleOf(pod: V1Pod, adopted: boolean): Promise<RuntimeHandle> {
    const { core } = await this.api();
    const conversationId = pod.metadata!.annotations![LABELS.conversationId]!;
    const name = secretName(conversationId, this.prefix);
    return handleOfPod(pod, await orAbsent(core.readNamespacedSecret({ name, namespace: this.ns })), adopted);
  }

  /** Delete the pod and keep the claim (its data) and the rest; returns once the pod is gone. */
  async pause(conversationId: string): Promise<void> {
    const { core } = await this.api();
    const name = podName(conversationId, this.prefix);
    await idempotent(core.deleteNamespacedPod({ name, namespace: this.ns }));
    await waitGone(() => this.readPod(conversationId), `pod ${name}`, this.timeoutMs);
  }

  async resume(conversationId: string, incarnation?: string): Promise<RuntimeHandle> {
    const claim = await this.readClaim(conversationId);
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
    return this.ensurePod(claim, true);
  }

  /** Delete the pod, its policy, its secret and its claim (the volume goes by the class's reclaim policy). */
  async remove(conversationId: string): Promise<boolean> {
    const { core, net } = await this.api();
    const base = { namespace: this.ns };
    const name = podName(conversationId, this.prefix);
    const pod = await idempotent(core.deleteNamespacedPod({ ...base, name, gracePeriodSeconds: 0 }));
    await idempotent(net.deleteNamespacedNetworkPolicy({ ...base, name }));
    await idempotent(core.deleteNamespacedSecret({ ...base, name: secretName(conversationId, this.prefix) }));
    const claim = await idempotent(
      core.deleteNamespacedPersistentVolumeClaim({ ...base, name: claimName(conversationId, this.prefix) }),
    );
    return pod || claim;
  }

  async inspect(conversationId: string): Promise<RuntimeSummary | undefined> {
    const pod = await this.readPod(conversationId);
    if (pod) return summaryOf(pod.metadata!, podState(pod));
    const claim = await this.readClaim(conversationId);
    // A paused conversation is its claim alone: its sandbox is stopped, in Docker's words.
    return claim && summaryOf(claim.metadata!, 'exited');
  }

  /** Every conversation of this service with a claim or a pod (a pod without its claim is a leftover too). */
  async list(): Promise<RuntimeSummary[]> {
    const { core } = await this.api();
    const labelSelector = [
      `${LABELS.managed}=true`,
      ...(this.o.owner ? [`${LABELS.owner}=${labelValue(this.o.owner)}`] : []),
    ].join(',');
    const [claims, pods] = await Promise.all([
      core.listNamespacedPersistentVolumeClaim({ namespace: this.ns, labelSelector }),
      core.listNamespacedPod({ namespace: this.ns, labelSelector }),
    ]);
    const byConversation = new Map<string, RuntimeSummary>();
    for (const c of claims.items) byConversation.set(c.metadata!.name!, summaryOf(c.metadata!, 'exited'));
    for (const p of pods.items)
      byConversation.set(
        claimName(p.metadata!.annotations?.[LABELS.conversationId] ?? '', this.prefix),
        summaryOf(p.metadata!, podState(p)),
      );
    return [...byConversation.values()];
  }

  async diagnose(conversationId: string): Promise<string> {
    const { core } = await this.api();
    const pod = await this.readPod(conversationId);
    if (!pod) return `pod ${podName(conversationId, this.prefix)} does not exist`;
    const logs = await lastPodLogLines(core, this.ns, pod.metadata!.name!);
    return `${describePod(pod)}${logs ? `; last log lines: ${logs}` : ''}`;
  }
}
