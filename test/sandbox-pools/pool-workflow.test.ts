// SandboxPool end to end: a real dev server, nestor's worker, Docker and the emulator image. The pool fills, a start
// claims from it and says so, the pool refills, survives its worker's restart, replaces a member that stopped, is
// resized within what the machine holds, disabled, enabled and drained; the reaper spares a running pool's members
// and removes those of a pool that is gone.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NestorError } from '../../src/errors';
import type { ConversationClient } from '../../src/conversation/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { createReaperActivities, type FindOrphansResult } from '../../src/reaper/activities';
import { WORKFLOW_TYPES, poolWorkflowId } from '../../src/shared/constants';
import type { PoolStatus, SandboxPoolInput } from '../../src/sandbox-pools/messages';
import { drainPool, poolStatus, poolTaskQueue, resizePool, setPoolEnabled } from '../../src/sandbox-pools/pools';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { docker, removeContainers } from '../helpers/docker';
import { activitiesRun } from '../helpers/history';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

const poolName = uniqueId('wfpool').replace(/[^a-zA-Z0-9_.-]/g, '-');
const provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, pool: { name: poolName } });

describe('SandboxPool, the durable owner of a warm pool', { timeout: 300_000 }, () => {
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  let stopWorker: () => Promise<void>;
  const taskQueue = uniqueId('pool');
  const made = new Set<string>();

  const input = (id: string): StartConversationRequest => {
    made.add(id);
    return {
      conversationId: id,
      userId: 'pool-user',
      settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk-pool-llm-key' },
      timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000 },
    };
  };

  /** Poll the pool's status until `pred` holds. */
  async function poolUntil(pred: (s: PoolStatus) => boolean, what: string, ms = 60_000): Promise<PoolStatus> {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await poolStatus(env.client, poolName);
      if (pred(s)) return s;
      if (Date.now() > deadline) assert.fail(`pool never got ${what}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const readyMembers = async () => (await provider.pool.members()).filter((m) => m.state === 'ready');

  before(async () => {
    env = await createTestEnv();
    ({ client, stop: stopWorker } = await startWorker(env, taskQueue, { runtime: provider }));
  });
  after(async () => {
    await stopWorker?.();
    await removeContainers(made);
    for (const m of await provider.pool.members()) await provider.pool.retire(m.memberId);
    await env?.teardown();
  });

  test('fills to its size; a start claims a member, says so, and the pool refills', async () => {
    await env.client.workflow.start(WORKFLOW_TYPES.sandboxPool, {
      workflowId: poolWorkflowId(poolName),
      taskQueue,
      args: [{ pool: poolName, size: 2, tendIntervalMs: 1000 } satisfies SandboxPoolInput],
    });
    await poolUntil((s) => s.ready === 2, '2 ready');
    assert.equal((await readyMembers()).length, 2);

    const id = uniqueId('pooled');
    const info = await client.start(input(id));
    assert.equal(info.status, 'RUNNING');
    assert.equal(info.startPath, 'pool');
    assert.equal(info.coldReason, undefined);
    assert.equal((await client.status(id)).startPath, 'pool');
    // Claimed beside the user's slot: both scheduled by one workflow task, and nothing created after.
    const { scheduled, scheduledBy } = activitiesRun((await client.handle(id).fetchHistory()).events ?? []);
    assert.equal(scheduledBy.claimRuntime?.length, 1);
    assert.deepEqual(scheduledBy.claimRuntime, scheduledBy.acquireSession);
    assert.ok(!scheduled.includes('createRuntime'), `no createRuntime: ${scheduled.join(', ')}`);
    const s = await poolUntil((x) => x.counters.claimed === 1 && x.ready === 2, 'refilled after the claim');
    assert.equal(s.counters.created, 3);
    assert.equal((await readyMembers()).length, 2, 'never more than its size');

    // The claimed sandbox is the conversation's: it is removed at close, with its data and lock.
    const runtimeId = info.runtimeId!;
    await client.close(id, 'done');
    await assert.rejects(docker.getContainer(runtimeId).inspect(), /no such container/i);
  });

  test('a start whose settings are refused removes the member it claimed beside the slot; the pool refills', async () => {
    await poolUntil((s) => s.ready === 2, '2 ready');
    const claimedBefore = (await poolStatus(env.client, poolName)).counters.claimed;
    const id = uniqueId('refused');
    const req = input(id);
    req.settings.agent = 'NoSuchAgent';
    await assert.rejects(client.start(req), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'ConversationStartFailed');
      assert.match(err.message, /^acquireSession failed: .*settings\.agent: unknown agent 'NoSuchAgent'/);
      return true;
    });
    const { scheduled } = activitiesRun((await client.handle(id).fetchHistory()).events ?? []);
    assert.ok(scheduled.includes('claimRuntime'), `claimed beside the slot: ${scheduled.join(', ')}`);
    assert.ok(scheduled.includes('removeRuntime'), `and removed: ${scheduled.join(', ')}`);
    assert.ok(!scheduled.includes('releaseSession'), 'no slot to give back');
    assert.equal(await provider.inspect(id), undefined, 'nothing of the refused start is left');
    await poolUntil((s) => s.counters.claimed === claimedBefore + 1 && s.ready === 2, 'refilled after the claim');
  });

  test('a start whose request a member cannot serve starts cold and says why', async () => {
    const id = uniqueId('env');
    const req = input(id);
    req.settings.sandbox = { env: { CONVERSATION_START_DELAY_MS: '10' } };
    const info = await client.start(req);
    assert.equal(info.startPath, 'cold');
    assert.match(info.coldReason!, /settings\.sandbox\.env/);
    await client.close(id, 'done');
  });

  test("survives its worker's restart, and replaces a member that stopped", async () => {
    await stopWorker();
    ({ client, stop: stopWorker } = await startWorker(env, taskQueue, { runtime: provider }));
    const [victim] = await readyMembers();
    await docker.getContainer(victim.runtimeId).stop({ t: 0 });
    const s = await poolUntil((x) => x.counters.replaced >= 1 && x.ready === 2, 'the stopped member replaced');
    assert.ok(!(await provider.pool.members()).some((m) => m.memberId === victim.memberId));
    assert.equal(s.size, 2);
  });

  test('resized within what the machine holds; refused above it or for a size that is not one', async () => {
    const grown = await resizePool(env.client, { taskQueue, pool: poolName, size: 3 });
    assert.equal(grown.size, 3);
    await poolUntil((x) => x.ready === 3, '3 ready');
    await assert.rejects(resizePool(env.client, { taskQueue, pool: poolName, size: 1000 }), (err: Error) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, 'PoolTooLarge');
      assert.match(err.message, /^size: 1000 members of 256 MB is more than .* \(at most \d+\); choose \d+ or fewer$/);
      return true;
    });
    await assert.rejects(resizePool(env.client, { taskQueue, pool: poolName, size: -1 }), (err: Error) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, 'InvalidInput');
      assert.match(err.message, /size: expected a whole number from 0 to 1000, got -1/);
      return true;
    });
    assert.equal((await poolStatus(env.client, poolName)).size, 3, 'a refused resize changes nothing');
    await resizePool(env.client, { taskQueue, pool: poolName, size: 1 });
    await poolUntil((x) => x.ready === 1, '1 ready');
    assert.equal((await provider.pool.members()).length, 1);
  });

  test('disabled: members removed and starts go cold; enabled: refilled', async () => {
    const off = await setPoolEnabled(env.client, poolName, false);
    assert.equal(off.enabled, false);
    await poolUntil((x) => x.ready === 0 && x.booting === 0, 'empty');
    assert.equal((await provider.pool.members()).length, 0);
    const id = uniqueId('off');
    const info = await client.start(input(id));
    assert.equal(info.startPath, 'cold');
    assert.equal(info.coldReason, 'the pool had no ready sandbox');
    await client.close(id, 'done');
    await setPoolEnabled(env.client, poolName, true);
    await poolUntil((x) => x.ready === 1, 'refilled');
  });

  test("the reaper spares a running pool's members; drained, the pool ends and a leftover member is reaped", async () => {
    const reaper = createReaperActivities({ runtime: provider });
    const act = new MockActivityEnvironment({}, { client: env.client });
    const found: FindOrphansResult = await act.run(reaper.findOrphanRuntimes, { graceMs: 0 });
    assert.ok(!found.orphans.some((o) => o.pool?.name === poolName), 'a running pool’s members are owned');

    const drained = await drainPool(env.client, poolName);
    assert.equal(drained.draining, true);
    assert.equal(drained.ready, 0);
    assert.equal((await provider.pool.members()).length, 0);
    await assert.rejects(poolStatus(env.client, poolName), /no warm pool/);

    // A member left behind by a pool that is gone (booted here directly) is an orphan, and is removed.
    await act.run(provider.pool.createMember.bind(provider.pool), 'leftover1');
    const orphans = ((await act.run(reaper.findOrphanRuntimes, { graceMs: 0 })) as FindOrphansResult).orphans.filter(
      (o) => o.pool?.name === poolName,
    );
    assert.deepEqual(
      orphans.map((o) => o.pool),
      [{ name: poolName, memberId: 'leftover1' }],
    );
    assert.equal(await act.run(reaper.removeOrphanRuntime, orphans[0]), true);
    assert.equal((await provider.pool.members()).length, 0);
  });
});

describe('which queue a pool resize starts its owner on', () => {
  test("a sandbox host's pool on that host's queue (its members are in that host's engine), others on the conversations'", () => {
    const hosts = ['h1', 'docker-2'];
    assert.equal(poolTaskQueue('nestor-emulator-abc-docker-2', hosts, 'conversations'), 'sandbox-host-docker-2');
    assert.equal(poolTaskQueue('nestor-emulator-abc-h1', hosts, 'conversations'), 'sandbox-host-h1');
    assert.equal(poolTaskQueue('nestor-emulator-abc', hosts, 'conversations'), 'conversations');
    assert.equal(poolTaskQueue('nestor-emulator-abc-h1', [], 'conversations'), 'conversations');
  });
});
