// The resume-schedules activities: resumeConversation (what a schedule runs) drives a conversation workflow through
// the Temporal client the worker gives activities; deleteResumeSchedules clears a closing conversation's schedules.
import { ScheduleNotFoundError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { listResumeSchedules } from './schedules';
import { Context } from '@temporalio/activity';
import { conversationWorkflowId } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { AgentLoopInfo } from '../shared/schemas';
import { resumeUpdate, sendMessageUpdate } from '../conversation/messages';
import type { ResumeActivityInput } from './messages';

export function createResumeScheduleActivities() {
  return {
    /** Resume `conversation-<id>` and deliver the optional message. A conversation that is not running is ConversationNotFound. */
    async resumeConversation(input: ResumeActivityInput): Promise<AgentLoopInfo> {
      const handle = Context.current().client.workflow.getHandle(conversationWorkflowId(input.conversationId));
      let status: string;
      try {
        status = (await handle.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          throw new NestorError(
            ErrorType.ConversationNotFound,
            `conversation ${input.conversationId} does not exist`,
            false,
          );
        }
        throw err;
      }
      if (status !== 'RUNNING') {
        throw new NestorError(
          ErrorType.ConversationNotFound,
          `conversation ${input.conversationId} is not running (its workflow is ${status})`,
          false,
        );
      }
      try {
        const info = await handle.executeUpdate(resumeUpdate);
        if (input.message) {
          await handle.executeUpdate(sendMessageUpdate, {
            args: [{ content: input.message, messageId: input.messageId }],
            updateId: input.messageId,
          });
        }
        return info;
      } catch (err) {
        // The conversation's own answer (closed while we asked, a failed resume): final, never retried as a transport error.
        const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === ErrorType.ConversationClosed) {
          throw new NestorError(
            ErrorType.ConversationNotFound,
            `conversation ${input.conversationId} is closed: ${cause.message}`,
            false,
          );
        }
        if (cause instanceof ApplicationFailure)
          throw ApplicationFailure.create({
            type: cause.type ?? undefined,
            message: cause.message,
            nonRetryable: true,
          });
        throw err;
      }
    },

    /** Delete every resume schedule of a conversation (it is closing: nothing may resume it later). Idempotent. */
    async deleteResumeSchedules(input: { conversationId: string }): Promise<{ deleted: string[] }> {
      const client = Context.current().client;
      const deleted: string[] = [];
      for (const s of await listResumeSchedules(client, input.conversationId)) {
        try {
          await client.schedule.getHandle(s.scheduleId).delete();
          deleted.push(s.scheduleId);
        } catch (err) {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        }
      }
      return { deleted };
    },
  };
}
