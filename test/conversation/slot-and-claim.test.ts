// A start's pooled sandbox claimed beside its user's slot (patch claim-beside-slot), with fake activities on a real dev
// server: both asked for in one workflow task, the claim removed when the slot is refused, and a failed claim left to
// createRuntime after the slot.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ConversationClient } from '../../src/conversation/client';
import { fakeActivities, input, withFakeWorker } from '../helpers/fake-activities';
import { createTestEnv, uniqueId } from '../helpers/temporal';

describe('the slot and a pooled sandbox asked for at once (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  /** The workflow task that scheduled each activity of the conversation's history, by activity type. */
  async function scheduledBy(client: ConversationClient, id: string): Promise<Map<string, number[]>> {
    const { events } = await client.handle(id).fetchHistory();
    const out = new Map<string, number[]>();
    for (const e of events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (!a?.activityType?.name) continue;
      out.set(a.activityType.name, [...(out.get(a.activityType.name) ?? []), Number(a.workflowTaskCompletedEventId)]);
    }
    return out;
  }

  test('a ready pool: the claim is asked for beside the slot, in the same workflow task, and no create follows', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 1 });
    const id = uniqueId('beside');
    await withFakeWorker(env, acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.startPath, 'pool');
      assert.equal(info.runtimeId, 'rt-pooled');
      const by = await scheduledBy(client, id);
      assert.equal(by.get('acquireSession')?.length, 1);
      assert.deepEqual(by.get('claimRuntime'), by.get('acquireSession'), 'scheduled by one workflow task');
      assert.equal(by.get('createRuntime'), undefined);
      await client.close(id, 'done');
    });
    assert.deepEqual(calls.slice(0, 2).sort(), ['acquireSession', 'claimRuntime']);
    assert.deepEqual(calls.slice(2), [
      'refreshTokens',
      'configureNestedServer',
      'createConversation',
      'waitForReady',
      'stopConversation',
      'removeRuntime',
      'releaseSession',
    ]);
  });

  test('no ready member: no claim is asked for; the slot, then createRuntime, as before', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 0 });
    const id = uniqueId('empty-pool');
    await withFakeWorker(env, acts, async (client) => {
      assert.equal((await client.start(input(id))).status, 'RUNNING');
      await client.close(id, 'done');
    });
    assert.deepEqual(calls.slice(0, 2), ['acquireSession', 'createRuntime']);
    assert.ok(!calls.includes('claimRuntime'));
  });

  test('refused settings: the sandbox claimed beside the slot is removed, and no slot is given back (none was taken)', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 1, failAt: 'acquireSession' });
    const id = uniqueId('refused');
    await withFakeWorker(env, acts, async (client) => {
      await assert.rejects(client.start(input(id)), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'ConversationStartFailed');
        assert.match(err.message, /^acquireSession failed: .*injected failure in acquireSession/);
        return true;
      });
      assert.equal((await client.status(id)).status, 'ERROR');
    });
    assert.deepEqual(calls.slice(0, 2).sort(), ['acquireSession', 'claimRuntime']);
    assert.deepEqual(calls.slice(2), ['removeRuntime']);
  });

  test('a claim that fails is left to createRuntime after the slot, and the conversation says so', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 1, failAt: 'claimRuntime' });
    const id = uniqueId('claim-fails');
    await withFakeWorker(env, acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.runtimeId, 'rt-1', 'the sandbox createRuntime made');
      const { warnings } = await client.status(id);
      assert.ok(
        warnings?.some((w) =>
          /claiming a pooled sandbox beside the slot failed \(injected failure in claimRuntime\)/.test(w),
        ),
        `warned: ${JSON.stringify(warnings)}`,
      );
      await client.close(id, 'done');
    });
    assert.deepEqual(calls.slice(0, 2).sort(), ['acquireSession', 'claimRuntime']);
    assert.equal(calls[2], 'createRuntime');
  });
});
