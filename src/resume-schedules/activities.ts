// The resume-schedules activities: resumeConversation (what a schedule runs) drives a conversation workflow through
// the Temporal client the worker gives activities; deleteResumeSchedules clears a closing conversation's schedules.
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { listResumeSchedules } from './schedules';
import { conversationWorkflowId } from '../shared/constants';
import { ErrorType, NestorError } from '../errors';
import type { AgentLoopInfo } from '../shared/schemas';
import { ConversationClient, ConversationError } from '../conversation/client';
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
      // Through the conversation client: a message the run turns away while it continues as new (ContinuingAsNew,
      // or too many updates in flight) goes again under its ID, to the next run, as every client must.
      const conversations = new ConversationClient({ client: Context.current().client });
      try {
        const info = await conversations.resume(input.conversationId);
        if (input.message)
          await conversations.sendMessage(input.conversationId, { content: input.message, messageId: input.messageId });
        return info;
      } catch (err) {
        if (!(err instanceof ConversationError)) throw err;
        // The conversation's own answer (closed while we asked, a failed resume): final, never retried as a transport error.
        if (err.type === ErrorType.ConversationClosed)
          throw new NestorError(
            ErrorType.ConversationNotFound,
            `conversation ${input.conversationId} is closed: ${err.message}`,
            false,
          );
        throw ApplicationFailure.create({ type: err.type, message: err.message, nonRetryable: true });
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
