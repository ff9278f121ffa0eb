// A conversation's whole life with its sandbox a pod: a real dev server and worker, the local Kubernetes, the emulator
// image. Start, messages, pause (pod deleted, data kept) → resume on the same data, close leaving nothing; the reaper
// on the cluster's sandboxes.
// needs: temporal, docker, kubernetes
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { CONVERSATION_LABEL, SANDBOX_NAMESPACE, labelValue } from '../../src/runtime/pod-spec';
import { cliWorkers, killOnceSandboxExists } from '../helpers/cli-worker';
import type { LocalKubernetes } from '../../src/dev/kubernetes';
import type { KubernetesRuntimeProvider } from '../../src/runtime/kubernetes';
import { WORKFLOW_TYPES, conversationWorkflowId } from '../../src/shared/constants';
import type { ReapResult } from '../../src/reaper/workflow';
import { e2eInput, userMessages } from '../helpers/e2e';
import { eventually } from '../helpers/eventually';
import { drainPool, resizePool } from '../../src/sandbox-pools/pools';
import { K8S_IMAGE, podProvider, sandboxObjects, startLocalKubernetes, volumeCount } from '../helpers/kubernetes';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { eventsUntil, said } from '../helpers/agent-server';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

const GONE = { pod: 404, claim: 404, secret: 404, policy: 404 };

describe('conversations on Kubernetes (Temporal + a local cluster + emulator)', () => {
  let k: LocalKubernetes;
  let stopCluster: () => Promise<void>;
  let env: TestWorkflowEnvironment;
  let stopWorker: () => Promise<void>;
  let client: ConversationClient;
  let provider: KubernetesRuntimeProvider;
  const made = new Set<string>();
  const input = e2eInput(made);
  const taskQueue = uniqueId('k8s');

  before(async () => {
    ({ k, stop: stopCluster } = await startLocalKubernetes('k8s-conversation', [
      K8S_IMAGE,
      RUNTIME_IMAGES['emulator-v1'],
    ]));
    env = await createTestEnv();
    provider = podProvider(k, uniqueId('owner'));
    ({ client, stop: stopWorker } = await startWorker(env, taskQueue, {
      runtime: provider,
      maxConversationsPerUser: false,
    }));
  });

  after(async () => {
    await stopWorker?.();
    for (const id of made) await provider?.remove(id).catch(() => false);
    await env?.teardown();
    await stopCluster?.();
  });

  test('start → messages → pause → resume with its data → close leaves no object', async () => {
    const id = uniqueId('life');
    const info = await client.start(input(id, { initialMessage: 'hello' }));
    assert.equal(info.status, 'RUNNING');
    assert.match(info.url!, /^http:\/\/10\.244\.0\.\d+:3000\/api\/conversations\//, 'the pod address');
    for (const text of ['first', 'second']) assert.equal(typeof (await client.sendMessage(id, text)).eventId, 'number');

    const paused = await client.pause(id, 'lunch');
    assert.equal(paused.status, 'PAUSED');
    assert.deepEqual(await sandboxObjects(k, id), { pod: 404, claim: 200, secret: 200, policy: 200 });

    const resumed = await client.resume(id);
    assert.equal(resumed.status, 'RUNNING');
    assert.equal(typeof (await client.sendMessage(id, 'third')).eventId, 'number');
    const now = await client.connection(id);
    assert.deepEqual(
      (await userMessages(now, id)).map((e) => e.args?.content),
      ['hello', 'first', 'second', 'third'],
      "the events from before the pause are on the conversation's claim, each once",
    );

    assert.equal((await client.close(id, 'done')).status, 'STOPPED');
    assert.deepEqual(await sandboxObjects(k, id), GONE);
    await eventually(async () => assert.equal(await volumeCount(k), 0, 'its volume went with its claim'), 60_000);
  });

  test('the reaper removes a sandbox no open conversation owns and keeps a running one', async () => {
    const orphan = uniqueId('orphan');
    const live = uniqueId('live');
    made.add(orphan);
    await provider.create({ conversationId: orphan, userId: 'nobody' });
    await client.start(input(live));
    const reap = () =>
      env.client.workflow.execute<(i: { graceMs: number }) => Promise<ReapResult>>(WORKFLOW_TYPES.reapOrphanRuntimes, {
        taskQueue,
        workflowId: uniqueId('reap'),
        args: [{ graceMs: 0 }],
      });
    const swept = await reap();
    assert.deepEqual(swept.removed, [orphan]);
    assert.equal(swept.owned, 1);
    await eventually(async () => assert.deepEqual(await sandboxObjects(k, orphan), GONE), 30_000);
    assert.equal((await sandboxObjects(k, live)).pod, 200, 'the running conversation keeps its pod');
    await client.close(live);
    assert.equal(
      (await env.client.workflow.getHandle(conversationWorkflowId(live)).describe()).status.name,
      'COMPLETED',
    );
  });

  test('a V1 conversation (the V1 emulator) on a pod: messages once each, pause, a message while paused, close', async () => {
    const v1 = podProvider(k, uniqueId('owner-v1'), RUNTIME_IMAGES['emulator-v1']);
    const w = await startWorker(env, uniqueId('k8s-v1'), { runtime: v1, maxConversationsPerUser: false });
    const id = uniqueId('v1');
    try {
      const info = await w.client.start({ ...input(id), initialMessage: 'first' });
      assert.equal(info.protocol, 'v1');
      const acks = await Promise.all(
        Array.from({ length: 3 }, () => w.client.sendMessage(id, { messageId: 'same', content: 'once' })),
      );
      assert.equal(new Set(acks.map((a) => a.nestedEventId)).size, 1, 'one ID, one event');
      await w.client.pause(id);
      assert.equal((await sandboxObjects(k, id)).pod, 404);
      await w.client.sendMessage(id, 'while paused');
      const live = await w.client.connection(id);
      const events = await eventsUntil(live, (ev) => said(ev, 'agent').includes('echo: while paused'), 30_000);
      assert.deepEqual(said(events, 'user'), ['first', 'once', 'while paused']);
      assert.equal((await w.client.close(id)).status, 'STOPPED');
      assert.deepEqual(await sandboxObjects(k, id), GONE);
    } finally {
      await v1.remove(id).catch(() => false);
      await w.stop();
    }
  });

  test('a worker (`nestor worker`, the Kubernetes engine) killed once the claim exists: the next one adopts it, one pod', async () => {
    const queue = uniqueId('k8s-kill');
    const workers = cliWorkers(env.address, queue, 'emulator', {
      NESTOR_SANDBOX_ENGINE: 'kubernetes',
      KUBECONFIG: k.kubeconfig,
      NESTOR_KUBERNETES_WORKER_CIDRS: `${k.nodeIp}/32`,
    });
    const other = new ConversationClient({ client: env.client, taskQueue: queue });
    const id = uniqueId('k8s-kill');
    try {
      const info = await killOnceSandboxExists(
        workers,
        workers.spawn(),
        id,
        other.start(input(id, { initialMessage: 'survived' })),
        async () => (await sandboxObjects(k, id)).claim === 200,
      );
      assert.equal(info.status, 'RUNNING');
      const selector = `${CONVERSATION_LABEL}=${labelValue(id)}`;
      const pods = (await k.api('GET', `/api/v1/namespaces/${SANDBOX_NAMESPACE}/pods?labelSelector=${selector}`))
        .body as { items: Array<{ metadata: { uid: string } }> };
      assert.deepEqual(
        pods.items.map((p) => p.metadata.uid),
        [info.runtimeId],
        'one pod: the retry adopted the claim',
      );
      assert.deepEqual(
        (await userMessages(info, id)).map((e) => e.args?.content),
        ['survived'],
      );
      await other.close(id);
      assert.deepEqual(await sandboxObjects(k, id), GONE);
    } finally {
      await workers.stopAll();
    }
  });

  test('a pooled start: the SandboxPool workflow keeps a pod ready, a start takes it, the pool makes another', async () => {
    const pool = provider.pool.poolName;
    await resizePool(env.client, { taskQueue, pool, size: 1 });
    const ready = async () => (await provider.pool.members()).filter((m) => m.state === 'ready');
    await eventually(async () => assert.equal((await ready()).length, 1), 60_000);
    const [member] = await ready();
    const id = uniqueId('pooled');
    const info = await client.start(input(id, { settings: { ...input(id).settings, sandbox: {} } }));
    assert.deepEqual([info.status, info.startPath, info.runtimeId], ['RUNNING', 'pool', member.runtimeId]);
    assert.equal(typeof (await client.sendMessage(id, 'from a pooled pod')).eventId, 'number');
    await eventually(async () => assert.equal((await ready()).length, 1, 'refilled'), 60_000);
    assert.equal((await client.close(id)).status, 'STOPPED');
    await drainPool(env.client, pool);
    await eventually(async () => assert.deepEqual(await provider.pool.members(), []), 60_000);
  });
});
