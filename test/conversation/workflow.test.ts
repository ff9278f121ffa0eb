// The StartConversation state machine on a real dev server, with fake activities.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WithStartWorkflowOperation, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { ConversationStatusKey, START_STEPS, conversationWorkflowId } from '../../src/shared/constants';
import {
  closeSignal,
  closeUpdate,
  pauseUpdate,
  resumeUpdate,
  sendMessageUpdate,
  statusQuery,
  waitReadyUpdate,
} from '../../src/conversation/messages';

import { createTestEnv, uniqueId } from '../helpers/temporal';
import { fakeActivities, input, withFakeWorker, type FakeActivities } from '../helpers/fake-activities';
import { waitFor } from '../helpers/eventually';

describe('StartConversation workflow (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  const withWorker = <T>(
    acts: FakeActivities,
    fn: (client: ConversationClient, taskQueue: string) => Promise<T>,
  ): Promise<T> => withFakeWorker(env, acts, fn);

  test('runs the six steps in order, then closes with stop, remove, release', async () => {
    const { acts, calls } = fakeActivities();
    const id = uniqueId('order');
    await withWorker(acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.sessionApiKey, 'secret-session-key', 'the starter gets the session key');
      const status = await client.status(id);
      assert.equal(status.sessionApiKey, undefined, 'the status query never carries the key');
      assert.equal(status.url, `http://127.0.0.1:1/api/conversations/${id}`);
      const closed = await client.close(id, 'done');
      assert.equal(closed.status, 'STOPPED');
      const result = await client.handle(id).result();
      assert.equal(result.status, 'STOPPED');
      const desc = await client.handle(id).describe();
      assert.equal(desc.typedSearchAttributes.get(ConversationStatusKey), 'STOPPED');
    });
    assert.deepEqual(calls, [...START_STEPS, 'stopConversation', 'removeRuntime', 'releaseSession']);
  });

  for (const step of START_STEPS) {
    test(`a failure in ${step} runs the right compensations and ends in ERROR with a typed failure`, async () => {
      const { acts, calls } = fakeActivities({ failAt: step });
      const id = uniqueId(`fail-${step}`);
      await withWorker(acts, async (client) => {
        await assert.rejects(client.start(input(id)), (err: Error & { type?: string }) => {
          assert.equal(err.type, 'ConversationStartFailed');
          assert.match(err.message, new RegExp(`^${step} failed: .*injected failure in ${step}`));
          return true;
        });
        const handle = client.handle(id);
        await assert.rejects(handle.result(), (err) => {
          assert.ok(err instanceof WorkflowFailedError);
          assert.ok(err.cause instanceof ApplicationFailure);
          assert.equal(err.cause.type, 'ConversationStartFailed');
          assert.deepEqual(err.cause.details?.[0], { conversationId: id, step, causeType: 'NestedBadRequest' });
          return true;
        });
        const status = await client.status(id);
        assert.equal(status.status, 'ERROR');
        assert.deepEqual(status.lastError, { type: 'NestedBadRequest', step, message: `injected failure in ${step}` });
        assert.equal((await handle.describe()).typedSearchAttributes.get(ConversationStatusKey), 'ERROR');
      });
      const upTo = START_STEPS.slice(0, START_STEPS.indexOf(step) + 1);
      // Readiness is looked at once locally (claim-beside-slot); not ready there, the waitForReady activity fails too.
      if (step === 'waitForReady') upTo.push('waitForReady');
      const compensations = step === 'acquireSession' ? [] : ['removeRuntime', 'releaseSession'];
      assert.deepEqual(calls, [...upTo, ...compensations]);
    });
  }

  test('a message sent before ready is delivered once, after ready', async () => {
    const { acts, calls, sent } = fakeActivities({ readyDelayMs: 1500 });
    const id = uniqueId('early');
    await withWorker(acts, async (client, taskQueue) => {
      // Start without waiting, then send while the start is still in waitForReady.
      const startOp = new WithStartWorkflowOperation('StartConversation', {
        workflowId: conversationWorkflowId(id),
        taskQueue,
        args: [{ ...input(id), settings: { ...input(id).settings, agent: 'CodeActAgent' } }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      const msgUpdate = client.client.workflow.startUpdateWithStart(sendMessageUpdate, {
        args: [{ content: 'early bird', messageId: 'm-1' }],
        updateId: 'm-1',
        waitForStage: 'ACCEPTED',
        startWorkflowOperation: startOp,
      });
      const handle = await (await msgUpdate).result();
      assert.deepEqual(handle, { messageId: 'm-1', eventId: 1 });
      const wf = client.handle(id);
      // The same message ID again returns the first result and delivers nothing new.
      const again = await wf.executeUpdate(sendMessageUpdate, {
        args: [{ content: 'early bird', messageId: 'm-1' }],
        updateId: 'm-1',
      });
      assert.deepEqual(again, { messageId: 'm-1', eventId: 1 });
      await wf.executeUpdate(closeUpdate, { args: [{}] });
    });
    assert.deepEqual(sent, ['early bird']);
    assert.ok(calls.indexOf('sendEvent') > calls.indexOf('waitForReady'), `delivered after ready: ${calls.join(',')}`);
  });

  test('close while starting interrupts the start, compensates and ends STOPPED', async () => {
    const { acts, calls } = fakeActivities({ readyDelayMs: 60_000 });
    const id = uniqueId('close-starting');
    await withWorker(acts, async (client, taskQueue) => {
      const handle = await client.client.workflow.start('StartConversation', {
        workflowId: conversationWorkflowId(id),
        taskQueue,
        args: [input(id)],
      });
      // Wait until the start is in waitForReady.
      await waitFor(
        async () => (await handle.query(statusQuery)).step === 'waitForReady',
        'the start to reach waitForReady',
      );
      const closed = await handle.executeUpdate(closeUpdate, { args: [{ reason: 'user left' }] });
      assert.equal(closed.status, 'STOPPED');
      assert.equal((await handle.result()).status, 'STOPPED');
      // Nothing can wait for readiness of a closed conversation.
      await assert.rejects(handle.executeUpdate(waitReadyUpdate, { args: [{ userId: input(id).userId }] }));
    });
    // The local first look at readiness gave up; the close interrupted the waitForReady activity that followed.
    assert.deepEqual(calls, [...START_STEPS, 'waitForReady', 'removeRuntime', 'releaseSession']);
  });

  test('messages to a closed conversation are rejected by the validator', async () => {
    const { acts, sent } = fakeActivities();
    const id = uniqueId('closed');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      await assert.rejects(client.sendMessage(id, '   '), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'InvalidInput');
        assert.match(err.message, /content: must not be blank/);
        return true;
      });
      // Past the client's own check, the workflow's validator still refuses an oversized message.
      await assert.rejects(
        client.handle(id).executeUpdate(sendMessageUpdate, { args: [{ content: 'x'.repeat(70_000) }] }),
        (err: Error) => {
          assert.match(String((err as { cause?: Error }).cause?.message), /content: must be at most 65536 bytes/);
          return true;
        },
      );
      await client.close(id);
      await assert.rejects(client.sendMessage(id, 'too late'), /closed|not found|completed/i);
    });
    assert.deepEqual(sent, []);
  });

  test('the close signal closes like the update', async () => {
    const { acts, calls } = fakeActivities();
    const id = uniqueId('signal');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      await client.handle(id).signal(closeSignal, { reason: 'fire and forget' });
      assert.equal((await client.handle(id).result()).status, 'STOPPED');
    });
    assert.deepEqual(calls.slice(-3), ['stopConversation', 'removeRuntime', 'releaseSession']);
  });

  test('a close that cannot remove the runtime ends in ERROR with ConversationCloseFailed, not a silent STOPPED', async () => {
    const { acts, calls } = fakeActivities({ removeFails: true });
    const id = uniqueId('closefail');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      const closed = await client.close(id);
      assert.equal(closed.status, 'ERROR');
      assert.equal(closed.lastError?.step, 'closing');
      await assert.rejects(client.handle(id).result(), (err) => {
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'ConversationCloseFailed');
        assert.match(err.cause.message, /docker is gone/);
        return true;
      });
    });
    assert.deepEqual(
      calls.slice(-3),
      ['stopConversation', 'removeRuntime', 'releaseSession'],
      'the session is released even so',
    );
  });

  test('idle pauses; a message resumes and is delivered once, after the resume', async () => {
    const { acts, calls, sent } = fakeActivities();
    const id = uniqueId('idle');
    await withWorker(acts, async (client) => {
      await client.start({ ...input(id), timeouts: { idleTimeoutMs: 300 } });
      const handle = client.handle(id);
      await waitFor(async () => (await handle.query(statusQuery)).status === 'PAUSED', 'the idle pause');
      const paused = await client.status(id);
      assert.equal(paused.status, 'PAUSED');
      assert.equal(paused.pauseReason, 'idle for 300 ms');
      const ack = await client.sendMessage(id, { content: 'wake up', messageId: 'w-1' });
      assert.equal(ack.messageId, 'w-1');
      assert.equal((await client.status(id)).status, 'RUNNING');
      await client.close(id);
    });
    assert.deepEqual(sent, ['wake up']);
    const resumed = calls.indexOf('resumeRuntime');
    assert.ok(resumed > calls.indexOf('pauseRuntime') && resumed < calls.indexOf('sendEvent'), calls.join(','));
    assert.deepEqual(calls.slice(resumed - 1, resumed + 6), [
      'acquireSession',
      'resumeRuntime',
      'refreshTokens',
      'configureNestedServer',
      'createConversation',
      'waitForReady',
      'sendEvent',
    ]);
  });

  test('an agent at work is not idle: the timer pauses only once the agent waits for the user', async () => {
    const { acts, calls } = fakeActivities({ agentBusyChecks: 2 });
    const id = uniqueId('busy');
    await withWorker(acts, async (client) => {
      await client.start({ ...input(id), timeouts: { idleTimeoutMs: 300 } });
      await waitFor(async () => (await client.status(id)).status === 'PAUSED', 'the idle pause');
      await client.close(id);
    });
    const paused = calls.indexOf('pauseRuntime');
    assert.equal(
      calls.slice(0, paused).filter((c) => c === 'conversationActivity').length,
      3,
      'two checks found it at work, the third idle',
    );
  });

  test('warnings stay bounded: the newest 20, each once', async () => {
    const { acts } = fakeActivities();
    acts.configureNestedServer = async () => ({
      secretsCreated: 0,
      secretsReplaced: 0,
      warnings: Array.from({ length: 45 }, (_, i) => `warning ${i % 40}`),
    });
    const id = uniqueId('warnings');
    await withWorker(acts, async (client) => {
      const info = await client.start(input(id));
      assert.equal(info.warnings.length, 20);
      // Repeats move to the end: 5…39 then 0…4, of which the newest 20.
      const expected = [
        ...Array.from({ length: 15 }, (_, i) => `warning ${25 + i}`),
        ...Array.from({ length: 5 }, (_, i) => `warning ${i}`),
      ];
      assert.deepEqual(info.warnings, expected);
      await client.close(id);
    });
  });

  test('close while paused removes the runtime without talking to the stopped server', async () => {
    const { acts, calls } = fakeActivities();
    const id = uniqueId('closepaused');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      const paused = await client.handle(id).executeUpdate(pauseUpdate, { args: [{ reason: 'lunch' }] });
      assert.equal(paused.status, 'PAUSED');
      assert.equal(paused.pauseReason, 'lunch');
      assert.equal((await client.close(id)).status, 'STOPPED');
    });
    assert.deepEqual(calls.slice(START_STEPS.length), ['pauseRuntime', 'releaseSession', 'removeRuntime']);
  });

  test('resume while resuming brings it back once', async () => {
    const { acts, calls } = fakeActivities({ readyDelayMs: 0 });
    const id = uniqueId('doubleresume');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      const handle = client.handle(id);
      await handle.executeUpdate(pauseUpdate, { args: [{}] });
      const both = await Promise.all([
        handle.executeUpdate(resumeUpdate),
        handle.executeUpdate(resumeUpdate),
        client.start(input(id)),
      ]);
      assert.deepEqual(
        both.map((b) => b.status),
        ['RUNNING', 'RUNNING', 'RUNNING'],
      );
      await client.close(id);
    });
    assert.equal(calls.filter((c) => c === 'resumeRuntime').length, 1);
  });

  test('messages sent during a continue-as-new are delivered once each, in order, across runs', async () => {
    const { acts, sent } = fakeActivities();
    const id = uniqueId('can');
    const n = 30;
    const ids = Array.from({ length: n }, (_, i) => `m-${i}`);
    await withWorker(acts, async (client) => {
      await client.start({ ...input(id), continueAsNewAfterEvents: 60 });
      // One after another, so the accepted order is the sending order, straight through the switches.
      for (const mid of ids) await client.sendMessage(id, { content: `message ${mid}`, messageId: mid });
      await waitFor(async () => ((await client.status(id)).runNumber ?? 1) >= 2, 'a continue-as-new');
      const status = await client.status(id);
      assert.ok((status.runNumber ?? 1) >= 2, `continued as new: run ${status.runNumber}`);
      // Resending every ID in a later run delivers nothing new and answers with the first acknowledgement.
      const again = await Promise.all(
        ids.map((mid) => client.sendMessage(id, { content: `message ${mid}`, messageId: mid })),
      );
      assert.deepEqual(
        again.map((a) => [a.messageId, a.eventId]),
        ids.map((mid, i) => [mid, i + 1]),
      );
      assert.equal((await client.status(id)).messagesDelivered, n);
      await client.close(id);
    });
    assert.deepEqual(
      sent,
      ids.map((mid) => `message ${mid}`),
    );
  });

  test('a failed resume stops the sandbox again and stays PAUSED, keeping it for a later resume', async () => {
    const { acts, calls } = fakeActivities({ failResumeAt: 'configureNestedServer' });
    const id = uniqueId('resumefail');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      await client.pause(id);
      await assert.rejects(client.resume(id), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'ConversationResumeFailed');
        assert.match(err.message, /^resume failed: configureNestedServer failed: injected resume failure/);
        return true;
      });
      const s = await client.status(id);
      assert.equal(s.status, 'PAUSED');
      assert.equal(s.pauseReason, 'resume failed at configureNestedServer');
      assert.equal(s.lastError?.step, 'configureNestedServer');
      // The next try works: the sandbox was kept.
      assert.equal((await client.resume(id)).status, 'RUNNING');
      await client.close(id);
    });
    const firstResume = calls.indexOf('resumeRuntime');
    assert.deepEqual(calls.slice(firstResume, firstResume + 5), [
      'resumeRuntime',
      'refreshTokens',
      'configureNestedServer',
      'pauseRuntime',
      'releaseSession',
    ]);
    assert.equal(calls.filter((c) => c === 'removeRuntime').length, 1, 'removed only by the close');
  });

  test('a pause that fails answers the pause update with the error and keeps the conversation running', async () => {
    const { acts, sent } = fakeActivities({ pauseFails: true });
    const id = uniqueId('pausefail');
    await withWorker(acts, async (client) => {
      await client.start(input(id));
      await assert.rejects(client.pause(id, 'try'), /pause failed: docker stop failed/);
      const s = await client.status(id);
      assert.equal(s.status, 'RUNNING');
      assert.match(s.warnings.join(), /pause failed, still running/);
      await client.sendMessage(id, 'still here');
      await client.close(id);
    });
    assert.deepEqual(sent, ['still here']);
  });
});
