// A start on the worker's engine (patch claim-beside-slot), with fake activities on a real dev server: its pooled
// sandbox claimed beside its user's slot, both scheduled by one workflow task; the claim removed when the slot is refused; a failed claim
// left to createRuntime after the slot; with no ready member, the slot and then createRuntime.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ConversationClient } from '../../src/conversation/client';
import { fakeActivities, input, withFakeWorker } from '../helpers/fake-activities';
import { activitiesRun } from '../helpers/history';
import { createTestEnv, uniqueId } from '../helpers/temporal';

describe('the slot and a pooled sandbox asked for at once (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  const ran = async (client: ConversationClient, id: string) =>
    activitiesRun((await client.handle(id).fetchHistory()).events ?? []);

  test('a ready pool: slot and claim asked for at once, readiness looked at locally, and no create follows', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 1 });
    // Each takes 300 ms, so one asked for after the other would not overlap it.
    const spans: Record<string, [number, number]> = {};
    for (const name of ['acquireSession', 'claimRuntime'] as const) {
      const fn = acts[name] as (i: unknown) => Promise<unknown>;
      (acts as Record<string, unknown>)[name] = async (i: unknown) => {
        const t = Date.now();
        await new Promise((r) => setTimeout(r, 300));
        const out = await fn(i);
        spans[name] = [t, Date.now()];
        return out;
      };
    }
    const id = uniqueId('beside');
    await withFakeWorker(env, acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.startPath, 'pool');
      assert.equal(info.runtimeId, 'rt-pooled');
      const { scheduled, local, scheduledBy } = await ran(client, id);
      assert.equal(local[0], 'whereSandbox');
      assert.equal(scheduledBy.acquireSession?.length, 1);
      assert.deepEqual(scheduledBy.claimRuntime, scheduledBy.acquireSession, 'scheduled by one workflow task');
      assert.ok(local.includes('waitForReady'), 'readiness looked at locally');
      for (const a of ['createRuntime', 'waitForReady'])
        assert.ok(!scheduled.includes(a), `no ${a} activity: ${scheduled.join(', ')}`);
      await client.close(id, 'done');
    });
    const [slot, claim] = [spans.acquireSession, spans.claimRuntime];
    assert.ok(claim[0] < slot[1] && slot[0] < claim[1], `they ran at once: ${JSON.stringify(spans)}`);
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

  test('no ready member: the claim finds none beside the slot; createRuntime after the slot', async () => {
    const { acts, calls } = fakeActivities({ poolReady: 0 });
    const id = uniqueId('empty-pool');
    await withFakeWorker(env, acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.runtimeId, 'rt-1', 'the sandbox createRuntime made');
      await client.close(id, 'done');
    });
    assert.deepEqual(calls.slice(0, 2).sort(), ['acquireSession', 'claimRuntime']);
    assert.equal(calls[2], 'createRuntime');
  });

  test('no pool here, or a request a member cannot serve: no claim; the slot, then createRuntime', async () => {
    const { acts, calls } = fakeActivities();
    const id = uniqueId('no-pool');
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
