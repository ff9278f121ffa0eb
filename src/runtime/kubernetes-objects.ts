// Finding and making a conversation's Kubernetes objects, whether made cold for it (named after the conversation) or
// claimed from a warm pool (named after the member; Kubernetes cannot rename): both carry the conversation's label
// (a hash of its ID), which is what a lookup falls back to. Shared by the provider (kubernetes.ts) and its pool
// (kubernetes-pool.ts).
import type { V1ObjectMeta, V1OwnerReference, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { RuntimeHandle } from './provider';
import { DEFERRED_INIT_ENV, SECRET_KEY_ENV } from './container-spec';
import type { ConversationKeys } from './deferred-init';
import { handleOfPod, idempotent, orAbsent, waitGone, waitPodAddress, type KubeClients } from './kubernetes-parts';
import { CONVERSATION_LABEL, POD_TEMPLATE_ANNOTATION, claimName, labelValue, podName } from './pod-spec';

/** Label of a pool member's objects: its state (`booting`, `ready`, `claimed`). */
export const POOL_STATE_LABEL = 'nestor.pool-state';
/** Keys of a claimed V1 member's conversation, in its claim Secret (kubernetes-pool.ts). */
export const CLAIM_KEYS = { session: 'conversation-session-key', secret: 'conversation-secret-key' } as const;

export interface ObjectsContext {
  api(): Promise<KubeClients>;
  ns: string;
  prefix?: string;
  owner?: string;
  timeoutMs: number;
}

export class ConversationObjects {
  constructor(private readonly c: ObjectsContext) {}

  /** `nestor.managed=true` and this service's owner label, plus `extra`. */
  selector(...extra: string[]): string {
    const owner = this.c.owner ? [`${LABELS.owner}=${labelValue(this.c.owner)}`] : [];
    return [`${LABELS.managed}=true`, ...owner, ...extra].join(',');
  }

  private ofConversation(conversationId: string): string {
    return this.selector(`${CONVERSATION_LABEL}=${labelValue(conversationId)}`);
  }

  /** The conversation's data claim: by its name (made cold), else by its label (claimed from a pool). */
  async claim(conversationId: string): Promise<V1PersistentVolumeClaim | undefined> {
    const { core } = await this.c.api();
    const { ns } = this.c;
    const named = await orAbsent(
      core.readNamespacedPersistentVolumeClaim({ name: claimName(conversationId, this.c.prefix), namespace: ns }),
    );
    if (named) return named;
    const labelSelector = this.ofConversation(conversationId);
    return (await core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector })).items[0];
  }

  async pod(conversationId: string): Promise<V1Pod | undefined> {
    const { core } = await this.c.api();
    const { ns } = this.c;
    const named = await orAbsent(
      core.readNamespacedPod({ name: podName(conversationId, this.c.prefix), namespace: ns }),
    );
    if (named) return named;
    return (await core.listNamespacedPod({ namespace: ns, labelSelector: this.ofConversation(conversationId) }))
      .items[0];
  }

  /** Create an object owned by the claim (Kubernetes deletes it with the claim); already there is fine. */
  async own(claim: V1PersistentVolumeClaim, meta: V1ObjectMeta, create: (m: V1ObjectMeta) => Promise<unknown>) {
    const ref: V1OwnerReference = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: claim.metadata!.name!,
      uid: claim.metadata!.uid!,
    };
    await idempotent(create({ ...meta, ownerReferences: [ref] }));
  }

  /** The claim's pod, made from the spec kept on the claim when it is not there (first start, resume, deleted). */
  async ensurePod(claim: V1PersistentVolumeClaim, adopted: boolean): Promise<RuntimeHandle> {
    const { core } = await this.c.api();
    const template = claim.metadata?.annotations?.[POD_TEMPLATE_ANNOTATION];
    if (!template)
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `claim ${claim.metadata!.name} has no pod template (${POD_TEMPLATE_ANNOTATION})`,
        false,
      );
    const body = JSON.parse(template) as V1Pod;
    const name = body.metadata!.name!;
    const read = () => orAbsent(core.readNamespacedPod({ name, namespace: this.c.ns }));
    let pod = await read();
    if (pod?.metadata?.deletionTimestamp) {
      // A pause (or a drain) is deleting it: the new one takes its name once it is gone.
      await waitGone(read, `pod ${name}`, this.c.timeoutMs);
      pod = undefined;
    }
    if (!pod)
      await this.own(claim, body.metadata!, (metadata) =>
        core.createNamespacedPod({ namespace: this.c.ns, body: { ...body, metadata } }),
      );
    // Running already (an adopted or claimed pod): no second read.
    if (!pod?.status?.podIP) pod = await waitPodAddress(core, this.c.ns, name, this.c.timeoutMs);
    return this.handleOf(pod, adopted);
  }

  /** The environment Secret the pod is given (`envFrom`), decoded. */
  async envOf(pod: V1Pod): Promise<Record<string, string>> {
    const { core } = await this.c.api();
    const name = pod.spec?.containers[0]?.envFrom?.[0]?.secretRef?.name;
    const secret = name ? await orAbsent(core.readNamespacedSecret({ name, namespace: this.c.ns })) : undefined;
    return Object.fromEntries(
      Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  /**
   * A claimed V1 pool member's conversation keys (its server boots dormant and takes them at init), from its claim
   * Secret; undefined for a sandbox whose keys are its own environment's.
   */
  async conversationKeys(pod: V1Pod, env?: Record<string, string>): Promise<ConversationKeys | undefined> {
    const memberId = pod.metadata?.labels?.[LABELS.poolMember];
    if (!memberId || pod.metadata?.labels?.[POOL_STATE_LABEL] !== 'claimed') return undefined;
    if ((env ?? (await this.envOf(pod)))[DEFERRED_INIT_ENV] !== 'true') return undefined;
    const { core } = await this.c.api();
    const name = `${pod.metadata!.name}-claim`;
    const data = (await orAbsent(core.readNamespacedSecret({ name, namespace: this.c.ns })))?.data ?? {};
    const of = (k: string) => (data[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
    const sessionApiKey = of(CLAIM_KEYS.session);
    const secretKey = of(CLAIM_KEYS.secret);
    if (!sessionApiKey || !secretKey)
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `pool member ${memberId} has no claim holding its keys`,
        false,
      );
    return { sessionApiKey, secretKey };
  }

  /** The member's init key (its dormant OH_SECRET_KEY), for a claimed V1 member's init. */
  async initKeyOf(pod: V1Pod): Promise<string> {
    return (await this.envOf(pod))[SECRET_KEY_ENV] ?? '';
  }

  async handleOf(pod: V1Pod, adopted: boolean): Promise<RuntimeHandle> {
    const env = await this.envOf(pod);
    const keys = await this.conversationKeys(pod, env);
    return handleOfPod(pod, keys ? { ...env, OH_SESSION_API_KEYS_0: keys.sessionApiKey } : env, adopted);
  }

  /** Delete every object labelled as the conversation's (a claimed member's too); whether there was any. */
  async removeLabelled(conversationId: string): Promise<boolean> {
    const { core, net } = await this.c.api();
    const namespace = this.c.ns;
    const labelSelector = this.ofConversation(conversationId);
    const [pods, policies, secrets, claims] = await Promise.all([
      core.listNamespacedPod({ namespace, labelSelector }),
      net.listNamespacedNetworkPolicy({ namespace, labelSelector }),
      core.listNamespacedSecret({ namespace, labelSelector }),
      core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }),
    ]);
    const names = (l: { items: Array<{ metadata?: V1ObjectMeta }> }) => l.items.map((o) => o.metadata!.name!);
    for (const name of names(pods))
      await idempotent(core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }));
    for (const name of names(policies)) await idempotent(net.deleteNamespacedNetworkPolicy({ namespace, name }));
    // The claim Secret (a pooled sandbox's record) goes last but for the data: it says whose the member was.
    for (const name of names(secrets).sort((a, b) => +a.endsWith('-claim') - +b.endsWith('-claim')))
      await idempotent(core.deleteNamespacedSecret({ namespace, name }));
    for (const name of names(claims)) await idempotent(core.deleteNamespacedPersistentVolumeClaim({ namespace, name }));
    return pods.items.length + claims.items.length > 0;
  }
}

/** Wait until the conversation's claim is gone (being deleted: its pod's end releases it). */
export function waitClaimGone(objects: ConversationObjects, conversationId: string, timeoutMs: number) {
  return waitGone(() => objects.claim(conversationId), `the data claim of ${conversationId}`, timeoutMs);
}
