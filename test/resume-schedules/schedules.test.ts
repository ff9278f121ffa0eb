// Resume schedules end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, WorkflowUpdateFailedError, WorkflowUpdateStage } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { sendMessageUpdate } from '../../src/conversation/messages';
import { conversationWorkflowId } from '../../src/shared/constants';
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

  test("a scheduled resume's message that meets the switch to a new run goes again to that run, once", async () => {
    const id = uniqueId('sched-can');
    const base = input(id);
    await client.start({
      ...base,
      continueAsNewAfterEvents: 50,
      settings: {
        ...base.settings,
        sandbox: { env: { CONVERSATION_START_DELAY_MS: '100', FAULT_POST_EVENTS_STALL_MS: '3000' } },
      },
    });
    const conversation = env.client.workflow.getHandle(conversationWorkflowId(id));
    const firstRun = (await conversation.describe()).runId;
    // Two messages in flight at a time, each delivery 3 s: once the run is due to continue as new it delivers what it
    // accepted and turns new ones away (ContinuingAsNew). The first one turned away says the run is switching now.
    const inFlight: Array<Promise<unknown>> = [];
    let switching = false;
    for (let i = 0; i < 30 && !switching; i++) {
      const messageId = `${id}-m${i}`;
      const update = await conversation.startUpdate(sendMessageUpdate, {
        args: [{ content: `m${i}`, messageId }],
        updateId: messageId,
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      const delivered = update.result();
      delivered.catch(() => {});
      // A refused update's outcome is there at once; an accepted one is delivered 3 s later.
      const early = await Promise.race([
        delivered.then(
          () => 'delivered',
          (err: unknown) => err,
        ),
        sleep(300),
      ]);
      if (early instanceof WorkflowUpdateFailedError && (early.cause as ApplicationFailure)?.type === 'ContinuingAsNew')
        switching = true;
      else if (early instanceof Error) throw early;
      else if (i > 0) await inFlight[i - 1];
      inFlight.push(delivered);
    }
    assert.ok(switching, 'the run turned a message away while it continued as new');
    const scheduled = await env.client.workflow.execute('ResumeConversation', {
      taskQueue,
      workflowId: uniqueId('resume-during-switch'),
      args: [{ conversationId: id, message: 'from the schedule, during the switch' }],
    });
    assert.equal(scheduled.status, 'RUNNING');
    await Promise.allSettled(inFlight);
    assert.notEqual((await conversation.describe()).runId, firstRun, 'the conversation continued as new');
    const info = await client.start(input(id));
    const users = (await userMessages(info, id)).map((e) => e.args?.content);
    assert.equal(users.filter((c) => c === 'from the schedule, during the switch').length, 1);
    await client.close(id);
  });
});
