// The real OpenHands images on Kubernetes pods: the current agent server (V1) answers a message through its LLM (the
// stand-in, on this node's address) and survives a pause; the V0 server starts and answers /alive.
// needs: temporal, docker, openhands, kubernetes
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ConversationClient } from '../../src/conversation/client';
import type { LocalKubernetes } from '../../src/dev/kubernetes';
import { REPLY_PREFIX, startLlmStandIn, type LlmStandIn } from '../../src/llm-stand-in/server';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import type { KubernetesRuntimeProvider } from '../../src/runtime/kubernetes';
import { eventsUntil, said } from '../helpers/agent-server';
import { podProvider, sandboxObjects, startLocalKubernetes } from '../helpers/kubernetes';
import { standInSettings } from '../helpers/openhands';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

const V1 = RUNTIME_IMAGES.openhands;
const V0 = RUNTIME_IMAGES['openhands-v0'];

describe('the real OpenHands images as Kubernetes pods', { timeout: 1_200_000 }, () => {
  let k: LocalKubernetes;
  let stopCluster: () => Promise<void>;
  let env: TestWorkflowEnvironment;
  let llm: LlmStandIn;
  let provider: KubernetesRuntimeProvider;
  let client: ConversationClient;
  let stopWorker: () => Promise<void>;

  before(async () => {
    ({ k, stop: stopCluster } = await startLocalKubernetes('k8s-real', [V1, V0]));
    env = await createTestEnv();
    // Pods reach this node's address (their default route is the bridge's gateway on this host).
    llm = await startLlmStandIn({ host: k.nodeIp });
    provider = podProvider(k, uniqueId('owner'), V1);
    ({ client, stop: stopWorker } = await startWorker(env, uniqueId('k8s-v1'), { runtime: provider }));
  });
  after(async () => {
    await stopWorker?.();
    await llm?.close();
    await env?.teardown();
    await stopCluster?.();
  });

  test('the agent server on a pod: a message answered by its LLM; pause → resume keeps it; close leaves nothing', async () => {
    const id = uniqueId('k8s-v1');
    const info = await client.start({
      conversationId: id,
      userId: 'k8s-real',
      settings: standInSettings(llm),
      initialMessage: 'hello from a pod',
    });
    assert.deepEqual([info.status, info.protocol], ['RUNNING', 'v1']);
    await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}hello from a pod`), 300_000);
    await client.pause(id);
    assert.equal((await sandboxObjects(k, id)).pod, 404);
    await client.sendMessage(id, 'after the pause');
    const back = await client.connection(id);
    const events = await eventsUntil(
      back,
      (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}after the pause`),
      300_000,
    );
    assert.deepEqual(said(events, 'user'), ['hello from a pod', 'after the pause']);
    await client.close(id);
    assert.deepEqual(await sandboxObjects(k, id), { pod: 404, claim: 404, secret: 404, policy: 404 });
  });

  test('the V0 server on a pod answers /alive', async () => {
    const v0 = podProvider(k, uniqueId('owner-v0'), V0);
    const h = await v0.create({ conversationId: 'k8s-v0', userId: 'u' });
    assert.equal(h.protocol, 'v0');
    const deadline = Date.now() + 180_000;
    for (;;) {
      const r = await fetch(`${h.url}/alive`).catch(() => undefined);
      if (r?.status === 200) break;
      assert.ok(Date.now() < deadline, await v0.diagnose('k8s-v0'));
      await new Promise((res) => setTimeout(res, 500));
    }
    await v0.remove('k8s-v0');
  });
});
