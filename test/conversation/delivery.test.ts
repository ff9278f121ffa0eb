// Message delivery, at most once per message ID: the workflow (not the activity's attempt) knows whether a message
// may have been posted, and a failed delivery is remembered. Fake activities on a real dev server.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationError } from '../../src/conversation/client';
import { conversationWorkflowId } from '../../src/shared/constants';
import { sendMessageUpdate } from '../../src/conversation/messages';
import { createTestEnv, testDataConverter, uniqueId } from '../helpers/temporal';
import { fakeActivities, input, withFakeWorker } from '../helpers/fake-activities';
import { waitFor } from '../helpers/eventually';

describe('message delivery (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  test('a delivery after a sandbox recovery looks for its earlier post first, from the cursor marked before the first', async () => {
    // The first post's answer is lost with the sandbox (its container restarted): the post may have landed.
    const { acts, calls, sendInputs } = fakeActivities({
      sendEvent: (i, n) => {
        if (n === 1) throw ApplicationFailure.nonRetryable('POST …/events: ECONNRESET', 'NestedUnavailable');
        return { eventId: 7, recovered: true, newestEventId: 9 };
      },
    });
    const id = uniqueId('recover');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      const ack = await client.sendMessage(id, { content: 'hello', messageId: 'm-1' });
      assert.deepEqual(ack, { messageId: 'm-1', eventId: 7 });
      await client.close(id);
    });
    assert.equal(sendInputs.length, 2);
    assert.equal(sendInputs[0].mayHavePosted, false, 'the first delivery posts without looking');
    assert.equal(sendInputs[1].mayHavePosted, true, 'the delivery after the recovery looks before posting');
    assert.equal(sendInputs[1].afterEventId, sendInputs[0].afterEventId, 'both look after the same mark');
    assert.ok(calls.includes('resumeRuntime'), 'the sandbox was brought back');
  });

  test('a message ID whose delivery failed gets the same failure again, in a later run too, without a second delivery', async () => {
    const { acts, sendInputs } = fakeActivities({
      sendEvent: (i, n) => {
        if (i.content === 'x')
          throw ApplicationFailure.nonRetryable('POST …/events answered 422 (content)', 'NestedBadRequest');
        return { eventId: n, recovered: false, newestEventId: n };
      },
    });
    const id = uniqueId('failed-once');
    await withFakeWorker(env, acts, async (client) => {
      await client.start({ ...input(id), continueAsNewAfterEvents: 60 });
      const first = await client.sendMessage(id, { content: 'x', messageId: 'm-bad' }).catch((e: unknown) => e);
      // Enough messages for the run to continue as new: the server's own memory of update IDs stays with the old run.
      for (let i = 0; i < 15; i++) await client.sendMessage(id, `filler ${i}`);
      await waitFor(async () => ((await client.status(id)).runNumber ?? 1) >= 2, 'a continue-as-new');
      const again = await client.sendMessage(id, { content: 'x', messageId: 'm-bad' }).catch((e: unknown) => e);
      const why = (e: unknown) => `${String(e)} (cause: ${String((e as { cause?: unknown })?.cause)})`;
      assert.ok(
        first instanceof ConversationError && again instanceof ConversationError,
        `${why(first)}; ${why(again)}`,
      );
      assert.equal(first.type, 'NestedBadRequest');
      assert.equal(again.type, first.type);
      assert.equal(again.message, first.message);
      await client.close(id);
    });
    assert.equal(
      sendInputs.filter((i) => i.content === 'x').length,
      1,
      'the failed message was not delivered a second time',
    );
  });

  test('each message is looked for only after the newest event when its first delivery began, never in older ones', async () => {
    const { acts, sendInputs } = fakeActivities({
      sendEvent: (_i, n) => ({ eventId: n * 1000, recovered: false, newestEventId: n * 1000 }),
    });
    // The nested server's newest event when each delivery begins: another writer (or the agent) wrote after ours.
    let marks = 0;
    acts.markDeliveryCursor = async () => ({ newestEventId: 4242 + marks++ });
    const id = uniqueId('cursor');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      await client.sendMessage(id, 'one');
      await client.sendMessage(id, 'two');
      await client.close(id);
    });
    assert.deepEqual(
      sendInputs.map((i) => [i.afterEventId, i.mayHavePosted]),
      [
        [4242, false],
        [4243, false],
      ],
    );
  });

  test('a burst of 40 concurrent messages from a plain SDK client is admitted whole (update limits sized for nestor)', async () => {
    // Each delivery takes a while, so the burst is in flight at once: Temporal's default admits only 10.
    const { acts, sent } = fakeActivities({
      sendEvent: (i, n) => {
        sent.push(i.content);
        const until = Date.now() + 20;
        while (Date.now() < until);
        return { eventId: n, recovered: false, newestEventId: n };
      },
    });
    const id = uniqueId('burst');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      // A client without the TypeScript SDK's own retries (no gRPC interceptors), as a plainer SDK would call.
      const bare = await Connection.connect({ address: env.address, interceptors: [] });
      const handle = new Client({ connection: bare, dataConverter: testDataConverter }).workflow.getHandle(
        conversationWorkflowId(id),
      );
      const acks = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          handle.executeUpdate(sendMessageUpdate, {
            args: [{ content: `burst ${i}`, messageId: `b-${i}` }],
            updateId: `b-${i}`,
          }),
        ),
      );
      assert.equal(new Set(acks.map((a) => a.eventId)).size, 40);
      await bare.close();
      await client.close(id);
    });
    assert.equal(sent.length, 40);
  });
});
