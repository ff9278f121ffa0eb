// Warm pools on Kubernetes: identity-free sandboxes (a claim, a Secret with the member's own keys, a NetworkPolicy and
// a pod, like a conversation's, named `nestor-pool-<pool>-<member>`) made ahead of time by the same SandboxPool
// workflow as on Docker, through PoolOps. Taking a member, to claim it for a start or to retire it, first creates its
// claim Secret (`…-claim`): the API server creates a name once (a second create is 409), so exactly one taker wins.
// The claim Secret records whose the member is (the conversation, user, service and life, and a V1 member's
// conversation keys, which its dormant server takes at init); the winner then labels the member's objects with the
// conversation, which is how the provider finds them from then on (kubernetes-objects.ts). A pod's limits are fixed
// when it is made, so a start that asks for its own takes no member.
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import type { PoolMember, PoolOps, RuntimeHandle, RuntimeSpec } from './provider';
import { poolIneligible } from './pool-eligibility';
import { DEFERRED_INIT_ENV, poolNameFor, resolveMemoryMb } from './container-spec';
import { newConversationKeys } from './deferred-init';
import { protocolOfKind } from './image-manifest';
import { annotationOp, idempotent, labelOp, orAbsent, podState, statusOf, type PatchOp } from './kubernetes-parts';
import { CLAIM_KEYS, POOL_STATE_LABEL, type ConversationObjects, type ObjectsContext } from './kubernetes-objects';
import {
  CONVERSATION_LABEL,
  POD_TEMPLATE_ANNOTATION,
  SANDBOX_LABEL,
  buildClaim,
  buildNetworkPolicy,
  buildPod,
  buildSecret,
  labelValue,
  podAnnotations,
  type PodSettings,
} from './pod-spec';

export interface KubernetesPoolOptions {
  image: string;
  settings(): Promise<PodSettings>;
  workerCidrs: string[];
  /** @default from the image */
  poolName?: string;
}

type State = 'booting' | 'ready' | 'claimed';
export class KubernetesPool implements PoolOps {
  readonly poolName: string;

  constructor(
    private readonly c: ObjectsContext,
    private readonly objects: ConversationObjects,
    private readonly o: KubernetesPoolOptions,
  ) {
    this.poolName = o.poolName ?? poolNameFor(o.image);
  }

  /** The base name of a member's objects: the pool's hash and the member's ID (DNS-label safe). */
  private base(memberId: string): string {
    return `nestor-pool-${labelValue(this.poolName).slice(0, 8)}-${memberId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
  }

  private labels(memberId: string, state: State): Record<string, string> {
    return {
      [LABELS.managed]: 'true',
      ...(this.c.owner && { [LABELS.owner]: labelValue(this.c.owner) }),
      [LABELS.pool]: labelValue(this.poolName),
      [LABELS.poolMember]: memberId,
      [POOL_STATE_LABEL]: state,
    };
  }

  private annotations(): Record<string, string> {
    return { [LABELS.pool]: this.poolName, ...(this.c.owner && { [LABELS.owner]: this.c.owner }) };
  }

  private podOf(memberId: string): Promise<V1Pod | undefined> {
    return this.c
      .api()
      .then(({ core }) => orAbsent(core.readNamespacedPod({ name: this.base(memberId), namespace: this.c.ns })));
  }

  private toMember(pod: V1Pod): PoolMember {
    return {
      memberId: pod.metadata!.labels![LABELS.poolMember]!,
      name: pod.metadata!.name!,
      runtimeId: pod.metadata!.uid!,
      state: pod.metadata!.labels![POOL_STATE_LABEL] as 'booting' | 'ready',
      containerState: podState(pod),
      createdAt: new Date(pod.metadata!.creationTimestamp ?? 0).toISOString(),
    };
  }

  async members(): Promise<PoolMember[]> {
    const { core } = await this.c.api();
    const labelSelector = this.objects.selector(
      `${LABELS.pool}=${labelValue(this.poolName)}`,
      `${POOL_STATE_LABEL} in (booting,ready)`,
    );
    const pods = (await core.listNamespacedPod({ namespace: this.c.ns, labelSelector })).items;
    return pods.map((p) => this.toMember(p)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async createMember(memberId: string): Promise<{ member: PoolMember; url: string } | { taken: true }> {
    const { core, net } = await this.c.api();
    const ns = this.c.ns;
    // Taken (claimed, or being retired): booting it again would give the claimant's data to a second pod.
    if (await orAbsent(core.readNamespacedSecret({ name: `${this.base(memberId)}-claim`, namespace: ns })))
      return { taken: true };
    const s = await this.o.settings();
    const v1 = protocolOfKind(s.manifest.kind) === 'v1';
    const spec: RuntimeSpec = {
      conversationId: '',
      userId: '',
      env: { ...s.manifest.poolEnv, ...(v1 && { [DEFERRED_INIT_ENV]: 'true' }) },
    };
    const base = this.base(memberId);
    const meta = (name: string, state: State = 'booting') => ({
      name,
      namespace: ns,
      labels: this.labels(memberId, state),
      annotations: this.annotations(),
    });
    const pod = buildPod(spec, s);
    const own = pod.metadata!.annotations;
    pod.metadata = { ...meta(base), labels: { ...this.labels(memberId, 'booting'), [SANDBOX_LABEL]: 'true' } };
    pod.metadata.annotations = { ...pod.metadata.annotations, ...own };
    pod.spec!.containers[0].envFrom = [{ secretRef: { name: `${base}-keys` } }];
    pod.spec!.volumes![0] = { name: 'data', persistentVolumeClaim: { claimName: `${base}-data` } };
    const claimBody = { ...buildClaim(spec, s), metadata: meta(`${base}-data`) };
    claimBody.metadata.annotations = {
      ...claimBody.metadata.annotations,
      [POD_TEMPLATE_ANNOTATION]: JSON.stringify(pod),
    };
    await idempotent(core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claimBody }));
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: `${base}-data`, namespace: ns });
    // Its own keys (a V1 member's secret key is its init key, dormant), no one's until a start claims it.
    const key = () => randomBytes(32).toString('base64url');
    const secret = buildSecret(spec, s, { sessionApiKey: key(), secretKey: v1 ? key() : undefined });
    await this.objects.own(claim, meta(`${base}-keys`), (metadata) =>
      core.createNamespacedSecret({ namespace: ns, body: { ...secret, metadata } }),
    );
    const policy = buildNetworkPolicy(spec, s, { workerCidrs: this.o.workerCidrs });
    policy.spec!.podSelector = { matchLabels: { [LABELS.poolMember]: memberId, [SANDBOX_LABEL]: 'true' } };
    await this.objects.own(claim, meta(base), (metadata) =>
      net.createNamespacedNetworkPolicy({ namespace: ns, body: { ...policy, metadata } }),
    );
    const handle = await this.objects.ensurePod(claim, false);
    const made = await this.podOf(memberId);
    if (!made || made.metadata?.labels?.[POOL_STATE_LABEL] === 'claimed') return { taken: true };
    return { member: this.toMember(made), url: handle.url };
  }

  async markReady(memberId: string): Promise<boolean> {
    const pod = await this.podOf(memberId);
    const state = pod?.metadata?.labels?.[POOL_STATE_LABEL];
    if (state === 'ready') return true;
    if (state !== 'booting') return false;
    return this.patchPod(pod!, [labelOp(POOL_STATE_LABEL, 'ready')]);
  }

  async memberUrl(memberId: string): Promise<string | undefined> {
    const pod = await this.podOf(memberId);
    if (!pod?.status?.podIP || podState(pod) !== 'running') return undefined;
    return (await this.objects.handleOf(pod, true)).url;
  }

  async retire(memberId: string): Promise<boolean> {
    const { core, net } = await this.c.api();
    const namespace = this.c.ns;
    const name = `${this.base(memberId)}-claim`;
    const lock = {
      metadata: { name, labels: this.labels(memberId, 'claimed'), annotations: { 'nestor.purpose': 'retire' } },
    };
    if (!(await idempotent(core.createNamespacedSecret({ namespace, body: lock })))) {
      // Held: claimed by a start (then it is that conversation's), or by an earlier retire that did not finish.
      const held = await orAbsent(core.readNamespacedSecret({ name, namespace }));
      if (held?.metadata?.annotations?.['nestor.purpose'] !== 'retire') return false;
    }
    const labelSelector = this.objects.selector(`${LABELS.poolMember}=${memberId}`);
    const existed = !!(await this.podOf(memberId));
    const names = (l: { items: Array<{ metadata?: { name?: string } }> }) => l.items.map((x) => x.metadata!.name!);
    for (const n of names(await core.listNamespacedPod({ namespace, labelSelector })))
      await idempotent(core.deleteNamespacedPod({ namespace, name: n, gracePeriodSeconds: 0 }));
    for (const n of names(await net.listNamespacedNetworkPolicy({ namespace, labelSelector })))
      await idempotent(net.deleteNamespacedNetworkPolicy({ namespace, name: n }));
    for (const n of names(await core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector })))
      await idempotent(core.deleteNamespacedPersistentVolumeClaim({ namespace, name: n }));
    for (const n of names(await core.listNamespacedSecret({ namespace, labelSelector })).filter((n) => n !== name))
      await idempotent(core.deleteNamespacedSecret({ namespace, name: n }));
    await idempotent(core.deleteNamespacedSecret({ namespace, name }));
    return existed;
  }

  /** The cluster's allocatable memory (MB), for sizing the pool; unknown (no right to list nodes): unbounded. */
  async hostMemoryMb(): Promise<number> {
    const { core } = await this.c.api();
    try {
      const nodes = (await core.listNode()).items;
      const mi = (q: string) =>
        q.endsWith('Ki') ? parseInt(q) / 1024 : q.endsWith('Mi') ? parseInt(q) : parseInt(q) / 2 ** 20;
      return Math.floor(nodes.reduce((sum, n) => sum + mi(n.status?.allocatable?.memory ?? '0'), 0));
    } catch (err) {
      // No right to list nodes (a namespaced service account): the namespace's quota bounds the pool instead.
      if (statusOf(err) === 403) return Number.MAX_SAFE_INTEGER;
      throw err;
    }
  }

  ineligible(spec: RuntimeSpec): string | undefined {
    const why = poolIneligible(spec);
    if (why || (spec.cpus === undefined && spec.memoryMb === undefined)) return why;
    return "the request sets its own limits, and a pod's are fixed when it is made";
  }

  sibling(poolName: string): KubernetesPool {
    return poolName === this.poolName ? this : new KubernetesPool(this.c, this.objects, { ...this.o, poolName });
  }

  /**
   * Take a ready member for the conversation (first one an earlier attempt of this start took): its claim Secret
   * created (exclusive), then its objects labelled as the conversation's. Undefined when there is none to take.
   */
  async claim(spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    const s = await this.o.settings();
    resolveMemoryMb(spec, s.defaults, s.manifest); // a request the image cannot run is refused before a member is taken
    const { core } = await this.c.api();
    const namespace = this.c.ns;
    const mine = this.objects.selector(`${CONVERSATION_LABEL}=${labelValue(spec.conversationId)}`, `${LABELS.pool}`);
    const [owned, members] = await Promise.all([
      core.listNamespacedSecret({ namespace, labelSelector: mine }),
      this.members(),
    ]);
    const ownId = owned.items[0]?.metadata?.labels?.[LABELS.poolMember];
    const ready = members.filter((m) => m.state === 'ready' && m.containerState === 'running');
    const offset = Math.floor(Math.random() * ready.length);
    const order = [...(ownId ? [ownId] : []), ...ready.map((_, i) => ready[(offset + i) % ready.length].memberId)];
    for (const memberId of order) {
      if (memberId !== ownId && !(await this.lock(memberId, spec))) continue; // another took it
      const handle = await this.finishClaim(memberId, spec);
      if (handle) return { ...handle, startPath: 'pool' };
    }
    return undefined;
  }

  /** Create the member's claim Secret for the conversation; false when someone holds it already. */
  private async lock(memberId: string, spec: RuntimeSpec): Promise<boolean> {
    const { core } = await this.c.api();
    const keys = newConversationKeys();
    const body = {
      metadata: {
        name: `${this.base(memberId)}-claim`,
        labels: { ...this.labels(memberId, 'claimed'), [CONVERSATION_LABEL]: labelValue(spec.conversationId) },
        annotations: { ...podAnnotations({ ...spec, owner: this.c.owner }), 'nestor.purpose': 'claim' },
      },
      stringData: { [CLAIM_KEYS.session]: keys.sessionApiKey, [CLAIM_KEYS.secret]: keys.secretKey },
    };
    return idempotent(core.createNamespacedSecret({ namespace: this.c.ns, body }));
  }

  /** Label the claimed member's objects as the conversation's, its pod spec kept so; its handle (undefined: gone). */
  async finishClaim(memberId: string, spec: RuntimeSpec): Promise<RuntimeHandle | undefined> {
    const { core, net } = await this.c.api();
    const namespace = this.c.ns;
    const base = this.base(memberId);
    const claim = await orAbsent(core.readNamespacedPersistentVolumeClaim({ name: `${base}-data`, namespace }));
    if (!claim) return undefined; // retired before we locked it
    const identity = { [CONVERSATION_LABEL]: labelValue(spec.conversationId), [POOL_STATE_LABEL]: 'claimed' };
    const annotations = podAnnotations({ ...spec, owner: this.c.owner });
    const ops = [
      ...Object.entries(identity).map(([k, v]) => labelOp(k, v)),
      ...Object.entries(annotations).map(([k, v]) => annotationOp(k, v)),
    ];
    const template = JSON.parse(claim.metadata!.annotations![POD_TEMPLATE_ANNOTATION]!) as V1Pod;
    template.metadata = {
      ...template.metadata,
      labels: { ...template.metadata!.labels, ...identity },
      annotations: { ...template.metadata!.annotations, ...annotations },
    };
    const templateOp = annotationOp(POD_TEMPLATE_ANNOTATION, JSON.stringify(template));
    // The claim's labels last: they are what the provider adopts the sandbox by, so an attempt that died before them
    // is finished by the next (its claim Secret says which member is its own), never half-adopted.
    const pod = await this.podOf(memberId);
    await Promise.all([
      pod && this.patchPod(pod, ops),
      idempotent(core.patchNamespacedSecret({ name: `${base}-keys`, namespace, body: ops })),
      idempotent(net.patchNamespacedNetworkPolicy({ name: base, namespace, body: ops })),
    ]);
    const labelled = await core.patchNamespacedPersistentVolumeClaim({
      name: `${base}-data`,
      namespace,
      body: [...ops, templateOp],
    });
    return this.objects.ensurePod(labelled, false);
  }

  private async patchPod(pod: V1Pod, ops: PatchOp[]): Promise<boolean> {
    const { core } = await this.c.api();
    return idempotent(core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: this.c.ns, body: ops }));
  }
}
