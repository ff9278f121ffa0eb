// The orphan reaper: sandboxes left behind on purpose (no workflow, a terminated workflow) are removed after the
// grace period; a running conversation's sandbox is kept; the schedule is created idempotently and runs it.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { LABELS, REAPER_SCHEDULE_ID, WORKFLOW_TYPES, conversationWorkflowId } from '../../src/shared/constants';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { ensureReaperSchedule } from '../../src/reaper/schedule';
import type { ReapResult } from '../../src/reaper/workflow';
import { containersFor, docker, removeContainers, volumesFor } from '../helpers/docker';
import { eventually } from '../helpers/eventually';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

describe('ReapOrphanRuntimes (Temporal + Docker)', () => {
  let env: TestWorkflowEnvironment;
  let stopWorker: () => Promise<void>;
  let client: ConversationClient;
  let provider: DockerRuntimeProvider;
  const taskQueue = uniqueId('reaper');
  const owner = uniqueId('owner');
  const made: string[] = [];

  const input = (id: string): StartConversationRequest => {
    made.push(id);
    return {
      conversationId: id,
      userId: 'reaper-user',
      settings: {
        agent: 'CodeActAgent',
        llmModel: 'anthropic/claude-sonnet-4-5',
        llmApiKey: 'sk-reaper',
        sandbox: { env: { CONVERSATION_START_DELAY_MS: '0' } },
      },
    };
  };
  const leaveBehind = async (id: string) => {
    made.push(id);
    await provider.create({ conversationId: id, userId: 'nobody' });
  };
  const reap = (graceMs: number) =>
    env.client.workflow.execute<(i: { graceMs: number }) => Promise<ReapResult>>(WORKFLOW_TYPES.reapOrphanRuntimes, {
      taskQueue,
      workflowId: uniqueId('reap'),
      args: [{ graceMs }],
    });

  before(async () => {
    env = await createTestEnv();
    // An owner of its own: the reaper sees only this test's sandboxes, whatever else the engine runs.
    provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner });
    ({ client, stop: stopWorker } = await startWorker(env, taskQueue, {
      runtime: provider,
      maxConversationsPerUser: false,
    }));
  });

  after(async () => {
    await stopWorker?.();
    await removeContainers(made);
    await env?.teardown();
  });

  test('removes sandboxes without an open conversation after the grace period, keeps the running one, counts all', async () => {
    const orphan = uniqueId('orphan');
    const live = uniqueId('live');
    const terminated = uniqueId('terminated');
    await leaveBehind(orphan);
    await client.start(input(live));
    await client.start(input(terminated));
    // A workflow killed by hand cannot clean up after itself.
    await env.client.workflow.getHandle(conversationWorkflowId(terminated)).terminate('left behind on purpose');
    const [c] = await containersFor(orphan);
    assert.equal(c.Labels[LABELS.owner], owner);

    const young = await reap(3_600_000);
    assert.deepEqual(
      { ...young, removed: young.removed.length },
      { seen: 3, owned: 1, young: 2, removed: 0, skipped: [], failed: [] },
    );
    assert.equal((await containersFor(orphan)).length, 1, 'within the grace period nothing is removed');

    const swept = await reap(0);
    assert.deepEqual(swept.removed, [orphan, terminated].sort());
    assert.equal(swept.seen, 3);
    assert.equal(swept.owned, 1);
    for (const id of [orphan, terminated]) {
      assert.deepEqual(await containersFor(id), [], `${id}'s container is gone`);
      assert.deepEqual(await volumesFor(id), [], `${id}'s volume is gone`);
    }
    assert.equal((await containersFor(live)).length, 1, 'the running conversation keeps its sandbox');

    const again = await reap(0);
    assert.deepEqual(
      { seen: again.seen, removed: again.removed },
      { seen: 1, removed: [] },
      'a second pass finds nothing more',
    );
    await client.close(live);
  });

  test('the schedule is created once and updated after; it runs the reaper', async () => {
    assert.equal(await ensureReaperSchedule(env.client, { taskQueue, intervalMs: 3_600_000, graceMs: 0 }), 'created');
    assert.equal(await ensureReaperSchedule(env.client, { taskQueue, intervalMs: 60_000, graceMs: 0 }), 'updated');
    const handle = env.client.schedule.getHandle(REAPER_SCHEDULE_ID);
    const described = await handle.describe();
    assert.equal(described.spec.intervals?.[0]?.every, 60_000);
    assert.equal(described.action.type, 'startWorkflow');
    assert.equal(
      described.action.type === 'startWorkflow' && described.action.workflowType,
      WORKFLOW_TYPES.reapOrphanRuntimes,
    );
    const orphan = uniqueId('scheduled-orphan');
    await leaveBehind(orphan);
    await handle.trigger();
    await eventually(async () => assert.deepEqual(await containersFor(orphan), []), 30_000);
    await handle.delete();
  });

  test("a PAUSED conversation's sandbox found running (a pause its lost host never picked up) is stopped, kept, and resumes", async () => {
    const id = uniqueId('paused-running');
    await client.start(input(id));
    assert.equal((await client.pause(id, 'its host looked lost')).status, 'PAUSED');
    // As a host-lost pause leaves it: the conversation PAUSED, its slot given back, the sandbox still running.
    await docker.getContainer(`nestor-conv-${id}`).start();
    const r = await reap(0);
    assert.deepEqual(r.stopped, [id]);
    assert.ok(!r.removed.includes(id));
    const [c] = await containersFor(id);
    assert.equal(c.State, 'exited', 'stopped, kept with its data');
    assert.equal((await client.resume(id)).status, 'RUNNING');
    assert.deepEqual((await reap(0)).stopped ?? [], [], 'a running conversation is left alone');
    await client.close(id);
  });

  test("a host's reaper removes a sandbox whose conversation is placed on another host (a placement moved away)", async () => {
    const here = uniqueId('reaper-here');
    const onHost = await startWorker(env, here, {
      runtime: provider,
      hostId: 'h-here',
      maxConversationsPerUser: false,
    });
    try {
      const moved = uniqueId('moved');
      const stays = uniqueId('stays');
      // Conversations whose workflows run (on a queue nobody polls), their placement in the memo as the workflow keeps it.
      for (const [id, host] of [
        [moved, 'h-elsewhere'],
        [stays, 'h-here'],
      ]) {
        await leaveBehind(id);
        await env.client.workflow.start('NeverPolled', {
          taskQueue: uniqueId('nobody'),
          workflowId: conversationWorkflowId(id),
          memo: { sandboxHost: host },
        });
      }
      const r = await env.client.workflow.execute<(i: { graceMs: number }) => Promise<ReapResult>>(
        WORKFLOW_TYPES.reapOrphanRuntimes,
        { taskQueue: here, workflowId: uniqueId('reap-here'), args: [{ graceMs: 0 }] },
      );
      assert.ok(r.removed.includes(moved), JSON.stringify(r));
      assert.deepEqual(await containersFor(moved), []);
      assert.equal((await containersFor(stays)).length, 1, 'its own conversation keeps its sandbox');
      for (const id of [moved, stays]) await env.client.workflow.getHandle(conversationWorkflowId(id)).terminate();
      await provider.remove(stays);
    } finally {
      await onHost.stop();
    }
  });

  test("an earlier pool's members (its workflow gone after an image or host change) are retired with their volumes", async () => {
    const oldPool = uniqueId('old-pool');
    const earlier = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner, pool: { name: oldPool } });
    for (const m of ['m1', 'm2']) assert.ok(!('taken' in (await earlier.pool.createMember(m))));
    assert.ok(await earlier.pool.markReady('m2'));
    const ofOldPool = { label: [`${LABELS.pool}=${oldPool}`] };
    assert.equal((await docker.listContainers({ all: true, filters: ofOldPool })).length, 2);
    const r = await reap(0);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(await docker.listContainers({ all: true, filters: ofOldPool }), []);
    assert.deepEqual((await docker.listVolumes({ filters: ofOldPool })).Volumes ?? [], []);
  });

  test('a provider with an owner lists only its own sandboxes', async () => {
    const other = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner: uniqueId('other-owner') });
    const mine = uniqueId('mine');
    await leaveBehind(mine);
    assert.deepEqual(await other.list(), []);
    assert.deepEqual(
      (await provider.list()).map((r) => r.conversationId),
      [mine],
    );
    await provider.remove(mine);
    assert.equal(
      (await docker.listContainers({ all: true, filters: { label: [`${LABELS.owner}=${owner}`] } })).length,
      0,
    );
  });
});
