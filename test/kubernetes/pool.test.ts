// Warm pools on Kubernetes (src/runtime/kubernetes-pool.ts) through the pool's and the start's own activities, on the
// local cluster: members booted ahead, each claimed by one start only, an empty pool falling back to a cold start,
// a claimed member removed with everything, a retire that loses to a claim; V1 members boot dormant and a claim gives
// the server its conversation's keys, again after a pause.
// needs: docker, kubernetes
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { createRuntimeActivities } from '../../src/conversation/activities/runtime';
import type { LocalKubernetes } from '../../src/dev/kubernetes';
import { AgentServerClient } from '../../src/nested/agent-server';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import type { KubernetesRuntimeProvider } from '../../src/runtime/kubernetes';
import { CONVERSATION_LABEL, SANDBOX_NAMESPACE, labelValue } from '../../src/runtime/pod-spec';
import { createPoolActivities } from '../../src/sandbox-pools/activities';
import { eventually } from '../helpers/eventually';
import { K8S_IMAGE, podProvider, startLocalKubernetes } from '../helpers/kubernetes';

const V1_IMAGE = RUNTIME_IMAGES['emulator-v1'];

/** Names of every object labelled as the conversation's, by kind. */
async function labelled(k: LocalKubernetes, conversationId: string): Promise<string[]> {
  const q = `labelSelector=${CONVERSATION_LABEL}=${labelValue(conversationId)}`;
  const ns = `/api/v1/namespaces/${SANDBOX_NAMESPACE}`;
  const paths = [`${ns}/pods`, `${ns}/secrets`, `${ns}/persistentvolumeclaims`];
  paths.push(`/apis/networking.k8s.io/v1/namespaces/${SANDBOX_NAMESPACE}/networkpolicies`);
  const names: string[] = [];
  for (const p of paths) {
    const items = ((await k.api('GET', `${p}?${q}`)).body as { items: Array<{ metadata: { name: string } }> }).items;
    names.push(...items.map((i) => i.metadata.name));
  }
  return names;
}

async function statusWith(url: string, key: string): Promise<number> {
  const r = await request(`${url}/api/conversations/${randomUUID()}`, { headers: { 'x-session-api-key': key } });
  await r.body.dump();
  return r.statusCode;
}

describe('warm pools on Kubernetes', () => {
  let k: LocalKubernetes;
  let stop: () => Promise<void>;
  let v0: KubernetesRuntimeProvider;
  let v1: KubernetesRuntimeProvider;
  const acts = (p: KubernetesRuntimeProvider) => ({
    ...createRuntimeActivities({ runtime: p }),
    ...createPoolActivities({ runtime: p }),
  });

  before(async () => {
    ({ k, stop } = await startLocalKubernetes('k8s-pool', [K8S_IMAGE, V1_IMAGE]));
    v0 = podProvider(k, 'test/k8s-pool');
    v1 = podProvider(k, 'test/k8s-pool-v1', V1_IMAGE);
  });
  after(() => stop?.());

  test('two members, two starts: each takes its own; an empty pool starts cold; close and retire leave nothing', async () => {
    const a = acts(v0);
    const pool = v0.pool.poolName;
    await Promise.all(['m1', 'm2'].map((memberId) => a.createPoolMember({ pool, memberId, aliveTimeoutMs: 60_000 })));
    const members = await v0.pool.members();
    assert.deepEqual(members.map((m) => [m.memberId, m.state]).sort(), [
      ['m1', 'ready'],
      ['m2', 'ready'],
    ]);
    const [h1, h2] = await Promise.all(
      ['pooled-1', 'pooled-2'].map((id) => a.createRuntime({ conversationId: id, userId: 'u', incarnation: 'i' })),
    );
    assert.deepEqual([h1.startPath, h2.startPath], ['pool', 'pool']);
    assert.notEqual(h1.runtimeId, h2.runtimeId, 'never the same member');
    assert.deepEqual([h1.runtimeId, h2.runtimeId].sort(), members.map((m) => m.runtimeId).sort());
    assert.deepEqual(await v0.pool.members(), [], 'both claimed');
    assert.equal((await v0.inspect('pooled-1'))?.userId, 'u');
    // A retried create adopts its member; a retire of a claimed member loses.
    assert.equal(
      (await v0.create({ conversationId: 'pooled-1', userId: 'u', incarnation: 'i' })).runtimeId,
      h1.runtimeId,
    );
    assert.equal(await v0.pool.retire(members.find((m) => m.runtimeId === h1.runtimeId)!.memberId), false);

    // An attempt that died after taking its member's claim Secret, before labelling the member: the next finishes it.
    const m2 = (
      await k.api(
        'GET',
        `/api/v1/namespaces/${SANDBOX_NAMESPACE}/pods?labelSelector=${CONVERSATION_LABEL}=${labelValue('pooled-2')}`,
      )
    ).body as { items: Array<{ metadata: { name: string } }> };
    const base = m2.items[0].metadata.name;
    const unlabel = [{ op: 'remove', path: `/metadata/labels/${CONVERSATION_LABEL}` }];
    for (const path of [`pods/${base}`, `persistentvolumeclaims/${base}-data`])
      assert.equal(
        (
          await k.api(
            'PATCH',
            `/api/v1/namespaces/${SANDBOX_NAMESPACE}/${path}`,
            unlabel,
            'application/json-patch+json',
          )
        ).status,
        200,
      );
    assert.equal(await v0.inspect('pooled-2'), undefined, "unlabelled: not found as the conversation's");
    const finished = await v0.create({ conversationId: 'pooled-2', userId: 'u', incarnation: 'i' });
    assert.deepEqual([finished.runtimeId, finished.startPath], [h2.runtimeId, 'pool'], 'the same member, finished');
    assert.equal((await v0.inspect('pooled-2'))?.runtimeId, h2.runtimeId);

    const cold = await a.createRuntime({ conversationId: 'cold-1', userId: 'u', incarnation: 'i' });
    assert.deepEqual([cold.startPath, cold.coldReason], ['cold', 'the pool had no ready sandbox']);

    // Paused and resumed on the member's data, then closed: nothing of the member is left.
    await v0.pause('pooled-1');
    const resumed = await a.resumeRuntime({ conversationId: 'pooled-1', incarnation: 'i', aliveTimeoutMs: 60_000 });
    assert.equal(resumed.protocol, 'v0');
    assert.equal(resumed.sessionApiKey, h1.sessionApiKey, "the member's key, kept with its data");
    for (const id of ['pooled-1', 'pooled-2', 'cold-1']) {
      assert.equal(await v0.remove(id), true);
      await eventually(async () => assert.deepEqual(await labelled(k, id), []), 30_000);
    }
    await a.createPoolMember({ pool, memberId: 'm3', aliveTimeoutMs: 60_000 });
    assert.equal(await v0.pool.retire('m3'), true);
    assert.deepEqual(await v0.pool.members(), []);
    assert.deepEqual(
      (await v0.list()).filter((r) => r.state !== 'exited'),
      [],
      'no sandbox of this service left',
    );
  });

  test('a V1 member boots dormant; its claim gives the server fresh keys, again after a pause', async () => {
    const a = acts(v1);
    await a.createPoolMember({ pool: v1.pool.poolName, memberId: 'd1', aliveTimeoutMs: 60_000 });
    const memberUrl = (await v1.pool.memberUrl('d1'))!;
    const [member] = await v1.pool.members();
    const secret = (await k.api('GET', `/api/v1/namespaces/${SANDBOX_NAMESPACE}/secrets/${member.name}-keys`)).body as {
      data: Record<string, string>;
    };
    const env = (key: string) => Buffer.from(secret.data[key] ?? '', 'base64').toString('utf8');
    const memberKey = env('OH_SESSION_API_KEYS_0');
    assert.equal(env('OH_DEFERRED_INIT'), 'true');
    assert.ok(memberKey && env('OH_SECRET_KEY'), 'its own session and init keys');
    assert.equal(await statusWith(memberUrl, memberKey), 503, 'dormant: no conversation route before its init');
    const h = await a.createRuntime({
      conversationId: 'v1-pooled',
      userId: 'u',
      incarnation: 'i',
      aliveTimeoutMs: 60_000,
    });
    assert.equal(h.startPath, 'pool');
    assert.equal(h.protocol, 'v1');
    const state = async (url: string, key: string) =>
      (await new AgentServerClient({ baseUrl: url, sessionApiKey: key }).initState()).state;
    assert.equal(await state(h.url, h.sessionApiKey), 'ready');
    assert.notEqual(h.sessionApiKey, memberKey, 'a key the member never had');
    assert.equal(await statusWith(h.url, h.sessionApiKey), 404, 'let in with the conversation key');
    assert.equal(await statusWith(h.url, memberKey), 401, "the member's own key no longer opens it");
    await v1.pause('v1-pooled');
    const back = await a.resumeRuntime({ conversationId: 'v1-pooled', incarnation: 'i', aliveTimeoutMs: 60_000 });
    assert.equal(back.sessionApiKey, h.sessionApiKey);
    assert.equal(await state(back.url, back.sessionApiKey), 'ready', 'initialized again in its new pod');
    await v1.remove('v1-pooled');
    await eventually(async () => assert.deepEqual(await labelled(k, 'v1-pooled'), []), 30_000);
  });
});
