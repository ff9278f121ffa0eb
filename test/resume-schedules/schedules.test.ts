// Resume schedules end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { eventually, waitFor } from '../helpers/eventually';
import { uniqueId } from '../helpers/temporal';

import { e2eInput, startE2e, userMessages, type E2e } from '../helpers/e2e';

describe('resume schedules end to end (Temporal + Docker + emulator)', () => {
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  let taskQueue: string;
  let lab: E2e;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    lab = await startE2e(made);
    ({ env, client, taskQueue } = lab);
  });

  after(() => lab?.stop());

  test('a resume schedule triggered now resumes a paused conversation and delivers its message; listing and cancelling work', async () => {
    const id = uniqueId('sched');
    const info = await client.start(input(id));
    await client.pause(id, 'for the schedule');
    const scheduleId = await client.scheduleResume(id, { every: '1h', message: 'from the schedule' });
    const other = await client.scheduleResume(id, { at: new Date(Date.now() + 24 * 3_600_000).toISOString() });
    const listed = await eventually(async () => {
      const rows = await client.listScheduledResumes(id);
      assert.deepEqual(rows.map((s) => s.scheduleId).sort(), [scheduleId, other].sort());
      return rows;
    });
    assert.equal(listed.find((s) => s.scheduleId === scheduleId)?.message, 'from the schedule');
    await env.client.schedule.getHandle(scheduleId).trigger();
    await waitFor(
      async () => (await client.status(id)).messagesDelivered >= 1,
      "the schedule's message to be delivered",
    );
    assert.equal((await client.status(id)).status, 'RUNNING');
    const again = await client.start(input(id));
    assert.deepEqual(
      (await userMessages(again, id)).map((e) => e.args?.content),
      ['from the schedule'],
    );
    assert.equal(again.runtimeId, info.runtimeId);
    await client.cancelScheduledResume(scheduleId);
    await client.cancelScheduledResume(other);
    await eventually(async () => assert.deepEqual(await client.listScheduledResumes(id), []));
    await assert.rejects(client.cancelScheduledResume(scheduleId), /scheduleId: no schedule/);
    await client.close(id);
  });

  test('ResumeConversation on a conversation that is not running fails non-retryably with ConversationNotFound', async () => {
    await assert.rejects(
      env.client.workflow.execute('ResumeConversation', {
        taskQueue,
        workflowId: uniqueId('resume-nobody'),
        args: [{ conversationId: 'nobody-here' }],
      }),
      (err) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = (err.cause as ActivityFailure).cause as ApplicationFailure;
        assert.equal(cause.type, 'ConversationNotFound');
        assert.match(cause.message, /conversation nobody-here does not exist/);
        return true;
      },
    );
  });

  test("close deletes the conversation's resume schedules; a scheduled resume of the closed conversation ends at once", async () => {
    const id = uniqueId('sched-close');
    await client.start(input(id));
    await client.scheduleResume(id, { every: '1h', message: 'never' });
    await eventually(async () => assert.equal((await client.listScheduledResumes(id)).length, 1));
    await client.close(id);
    await eventually(async () => assert.deepEqual(await client.listScheduledResumes(id), []));
    // Had one fired (or been started by hand): ConversationNotFound on its first attempt, not five retries.
    const handle = await env.client.workflow.start('ResumeConversation', {
      taskQueue,
      workflowId: uniqueId('resume-closed'),
      args: [{ conversationId: id, message: 'late' }],
    });
    await assert.rejects(
      handle.result(),
      (err) =>
        err instanceof WorkflowFailedError &&
        ((err.cause as ActivityFailure).cause as ApplicationFailure).type === 'ConversationNotFound',
    );
    const attempts = (await handle.fetchHistory()).events
      ?.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1]);
  });
});
