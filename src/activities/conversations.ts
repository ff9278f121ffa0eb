// resumeConversation: drives a conversation workflow through the Temporal client the worker gives activities.
import { WorkflowNotFoundError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { conversationWorkflowId } from '../shared/constants';
import { ErrorType, NestorError } from '../shared/errors';
import type { AgentLoopInfo } from '../shared/schemas';
import { resumeUpdate, sendMessageUpdate } from '../workflows/definitions';

export interface ResumeConversationInput {
  conversationId: string;
  message?: string;
  /** Deduplicates the message when this activity is retried. */
  messageId?: string;
}

export function createConversationActivities() {
  return {
    /** Resume `conversation-<id>` and deliver the optional message. A conversation that is not running is ConversationNotFound. */
    async resumeConversation(input: ResumeConversationInput): Promise<AgentLoopInfo> {
      const handle = Context.current().client.workflow.getHandle(conversationWorkflowId(input.conversationId));
      let status: string;
      try {
        status = (await handle.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          throw new NestorError(ErrorType.ConversationNotFound, `conversation ${input.conversationId} does not exist`, false);
        }
        throw err;
      }
      if (status !== 'RUNNING') {
        throw new NestorError(ErrorType.ConversationNotFound, `conversation ${input.conversationId} is not running (its workflow is ${status})`, false);
      }
      const info = await handle.executeUpdate(resumeUpdate);
      if (input.message) {
        await handle.executeUpdate(sendMessageUpdate, { args: [{ content: input.message, messageId: input.messageId }], updateId: input.messageId });
      }
      return info;
    },
  };
}
