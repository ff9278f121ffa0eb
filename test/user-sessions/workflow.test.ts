// UserSessions, the per-user slot registry: slots checked against their conversations' workflows (self-healing), a
// registry started afresh finding its slots, and a slot holder never queued behind an acquire that waits for it.
// Real slot activities and fake conversation activities, on a real dev server.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createSlotActivities } from '../../src/user-sessions/activities';
import { WORKFLOW_TYPES } from '../../src/shared/constants';
import {
  acquireSlotUpdate,
  releaseSlotSignal,
  slotsQuery,
  touchSlotSignal,
  userSessionsWorkflowId,
  type UserSessionsInput,
} from '../../src/user-sessions/messages';
import { createTestEnv, uniqueId } from '../helpers/temporal';
import { eventually } from '../helpers/eventually';
import { fakeActivities, input, withFakeWorker } from '../helpers/fake-activities';

describe('UserSessions: slots that heal themselves', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  const registry = (taskQueue: string, i: UserSessionsInput) =>
    env.client.workflow.start('UserSessions', { workflowId: userSessionsWorkflowId(i.userId), taskQueue, args: [i] });

  test('at the limit the least recently active running conversation is paused to make room; a release frees its slot', async () => {
    const { acts } = fakeActivities();
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (client, taskQueue) => {
      const [older, newer] = [uniqueId('older'), uniqueId('newer')];
      await client.start(input(older));
      await client.start(input(newer));
      const h = await registry(taskQueue, {
        userId: uniqueId('evict-user'),
        limit: 2,
        slots: [
          { conversationId: older, status: 'RUNNING', lastActiveAt: 1 },
          { conversationId: newer, status: 'RUNNING', lastActiveAt: 2 },
        ],
      });
      // A message to the older one makes the newer one the least recently active.
      await h.signal(touchSlotSignal, { conversationId: older });
      const grant = await h.executeUpdate(acquireSlotUpdate, { args: [{ conversationId: 'third' }] });
      assert.deepEqual(grant, { conversationId: 'third', evicted: [newer] });
      const paused = await client.status(newer);
      assert.equal(paused.status, 'PAUSED');
      assert.equal(paused.pauseReason, 'too many conversations');
      assert.equal((await client.status(older)).status, 'RUNNING');
      assert.deepEqual((await h.query(slotsQuery)).map((s) => s.conversationId).sort(), [older, 'third'].sort());
      await h.signal(releaseSlotSignal, { conversationId: 'third' });
      await eventually(async () =>
        assert.deepEqual(
          (await h.query(slotsQuery)).map((s) => s.conversationId),
          [older],
        ),
      );
      await h.terminate();
      await Promise.all([client.close(older), client.close(newer)]);
    });
  });

  test('three acquires at once at a registry started afresh: two get a slot, the third waits', async () => {
    const { acts } = fakeActivities();
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (client, taskQueue) => {
      // Three live conversations (their slots hold when checked); none is RUNNING in this registry, so none can be
      // paused to make room.
      const ids = [uniqueId('burst'), uniqueId('burst'), uniqueId('burst')];
      for (const id of ids) await client.start(input(id));
      const h = await registry(taskQueue, { userId: uniqueId('burst-user'), limit: 2 });
      const asks = ids.map((conversationId) => h.executeUpdate(acquireSlotUpdate, { args: [{ conversationId }] }));
      for (const a of asks) a.catch(() => undefined); // the third is still waiting when the registry is terminated
      await eventually(async () => assert.equal((await h.query(slotsQuery)).length, 2));
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal((await h.query(slotsQuery)).length, 2, 'the third is still waiting, not granted');
      await h.terminate();
      await Promise.all(ids.map((id) => client.close(id)));
    });
  });

  test('a STARTING slot left by a conversation that is gone no longer counts at the limit', async () => {
    const { acts } = fakeActivities();
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (_client, taskQueue) => {
      const userId = uniqueId('ghost-user');
      // What a close during acquireSession left behind: a STARTING slot granted to a conversation that ended.
      const h = await registry(taskQueue, {
        userId,
        limit: 1,
        slots: [{ conversationId: uniqueId('ghost'), status: 'STARTING', lastActiveAt: 0 }],
      });
      const grant = await h.executeUpdate(acquireSlotUpdate, { args: [{ conversationId: 'real' }] });
      assert.deepEqual(grant, { conversationId: 'real', evicted: [] });
      assert.deepEqual(
        (await h.query(slotsQuery)).map((s) => s.conversationId),
        ['real'],
      );
      await h.terminate();
    });
  });

  test('a slot whose conversation is PAUSED (its release lost) is dropped instead of evicting anyone', async () => {
    const { acts } = fakeActivities();
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (client, taskQueue) => {
      const paused = uniqueId('paused');
      await client.start(input(paused));
      await client.pause(paused, 'test');
      const h = await registry(taskQueue, {
        userId: uniqueId('paused-user'),
        limit: 1,
        slots: [{ conversationId: paused, status: 'RUNNING', lastActiveAt: 0 }],
      });
      const grant = await h.executeUpdate(acquireSlotUpdate, { args: [{ conversationId: 'next' }] });
      assert.deepEqual(grant.evicted, []);
      await h.terminate();
      await client.close(paused);
    });
  });

  test("a registry started afresh (e.g. after it was terminated) finds the user's live conversations", async () => {
    const { acts } = fakeActivities();
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (client, taskQueue) => {
      const live = uniqueId('live');
      await client.start(input(live)); // user 'alice'
      const user = (await client.status(live)).userId;
      // Visibility is eventually consistent: wait until the conversation is listed as RUNNING.
      await eventually(async () => {
        const found = await client.list({ userId: user, status: 'RUNNING' });
        assert.ok(found.some((c) => c.conversationId === live));
      }, 60_000);
      await env.client.workflow
        .getHandle(userSessionsWorkflowId(user))
        .terminate()
        .catch(() => undefined);
      const h = await registry(taskQueue, { userId: user, limit: 3 });
      await eventually(
        async () =>
          assert.ok((await h.query(slotsQuery)).some((s) => s.conversationId === live && s.status === 'RUNNING')),
        60_000,
      );
      await h.terminate();
      await client.close(live);
    });
  });

  test('a conversation that holds a slot is answered at once, even while another acquire waits for it to pause', async () => {
    // The holder is still starting (a sandbox recovery looks the same): it acts on the eviction only once RUNNING.
    // Long enough that the holder is still starting when it asks again, however slow the machine.
    const { acts } = fakeActivities({ readyDelayMs: 120_000 });
    await withFakeWorker(env, { ...acts, ...createSlotActivities() }, async (client, taskQueue) => {
      const holder = uniqueId('holder');
      await env.client.workflow.start(WORKFLOW_TYPES.startConversation, {
        workflowId: `conversation-${holder}`,
        taskQueue,
        args: [input(holder)],
      });
      const h = await registry(taskQueue, {
        userId: uniqueId('cycle-user'),
        limit: 1,
        slots: [{ conversationId: holder, status: 'RUNNING', lastActiveAt: 0 }],
      });
      let waiterDone = false;
      // Ends with the registry's termination below: only whether it ended before the holder's answer matters.
      const waiter = h
        .executeUpdate(acquireSlotUpdate, { args: [{ conversationId: 'newcomer' }] })
        .finally(() => (waiterDone = true))
        .catch(() => undefined);
      await eventually(async () => assert.ok((await h.query(slotsQuery)).some((s) => s.evicting)), 60_000);
      const again = await h.executeUpdate(acquireSlotUpdate, { args: [{ conversationId: holder }] });
      assert.deepEqual(again, { conversationId: holder, evicted: [] });
      assert.equal(waiterDone, false, 'the holder was answered while the newcomer still waited');
      await h.terminate();
      await waiter;
      await client.close(holder).catch(() => undefined);
    });
  });
});
