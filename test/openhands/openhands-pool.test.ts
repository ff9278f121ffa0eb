// A warm pool of the real OpenHands server (openhands-ai 1.4.0): a member boots identity-free with the image's pool env
// (one action server booted ahead), a start claims it and configures it as it would a cold one (settings, a custom
// secret), the agent answers through the LLM stand-in, and the close removes everything the member had.
// needs: temporal, docker, openhands
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ConversationClient } from '../../src/conversation/client';
import { NestedClient, type NestedEvent } from '../../src/nested/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { REPLY_PREFIX, type LlmStandIn } from '../../src/llm-stand-in/server';
import { createPoolActivities } from '../../src/sandbox-pools/activities';
import { docker, removeContainers } from '../helpers/docker';
import { OPENHANDS_IMAGE, standInSettings, startStandInForSandboxes } from '../helpers/openhands';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

const poolName = uniqueId('ohpool').replace(/[^a-zA-Z0-9_.-]/g, '-');

describe('a warm pool of the real OpenHands server', { timeout: 900_000 }, () => {
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  let stopWorker: () => Promise<void>;
  let llm: LlmStandIn;
  const provider = new DockerRuntimeProvider({ image: OPENHANDS_IMAGE, pool: { name: poolName } });
  const made = new Set<string>();

  before(async () => {
    env = await createTestEnv();
    llm = await startStandInForSandboxes(provider);
    ({ client, stop: stopWorker } = await startWorker(env, uniqueId('ohpool'), { runtime: provider }));
  });
  after(async () => {
    await stopWorker?.();
    await llm?.close();
    await removeContainers(made);
    for (const m of await provider.pool.members()) await provider.pool.retire(m.memberId);
    await env?.teardown();
  });

  test('a pooled member boots with the pool env only; a start claims it, gets its secret, and the agent answers', async () => {
    await createPoolActivities({ runtime: provider }).createPoolMember({ pool: poolName, memberId: 'oh1' });
    const [member] = await provider.pool.members();
    const envOf = (await docker.getContainer(member.runtimeId).inspect()).Config.Env;
    assert.ok(envOf.includes('INITIAL_NUM_WARM_SERVERS=1'), "the image's declared pool env");

    const id = uniqueId('oh-pooled');
    made.add(id);
    const info = await client.start({
      conversationId: id,
      userId: 'openhands-pool',
      settings: standInSettings(llm),
      initialMessage: 'hello from the pool',
      customSecrets: [{ name: 'POOLED_TOKEN', value: 'pooled-secret-value' }],
    });
    assert.equal(info.status, 'RUNNING');
    assert.equal(info.startPath, 'pool');
    assert.equal(info.runtimeId, member.runtimeId, 'the member it claimed');
    assert.ok(info.timings?.startToRunningMs !== undefined);
    const nested = NestedClient.forConversation(info);
    assert.deepEqual(
      (await nested.listSecrets()).map((s) => s.name),
      ['POOLED_TOKEN'],
    );
    const deadline = Date.now() + 120_000;
    let events: NestedEvent[] = [];
    while (Date.now() < deadline) {
      events = await nested.allEvents(id);
      if (events.some((e) => e.source === 'agent' && String(e.args?.content) === `${REPLY_PREFIX}hello from the pool`))
        break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(
      events.some((e) => e.source === 'agent' && String(e.args?.content) === `${REPLY_PREFIX}hello from the pool`),
      `the agent answered; last events: ${JSON.stringify(events.slice(-3).map((e) => [e.source, e.action, e.message]))}`,
    );
    const volumes = (await docker.getContainer(member.runtimeId).inspect()).Mounts.map((m) => m.Name!);
    await client.close(id);
    await assert.rejects(docker.getContainer(member.runtimeId).inspect(), /no such container/i);
    for (const v of volumes) await assert.rejects(docker.getVolume(v).inspect(), /no such volume/i);
  });
});
