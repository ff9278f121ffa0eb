// checkSlots / listLiveConversations: what UserSessions asks of Temporal itself to keep its slots true to the
// conversations they stand for (a closed, terminated or paused conversation holds no slot, whatever was signalled).
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ConversationIdKey, ConversationStatusKey, WORKFLOW_TYPES, conversationWorkflowId } from '../shared/constants';

/** Conversation statuses that hold a slot. */
const HOLDS_A_SLOT = ['STARTING', 'RUNNING'];

export function createSlotActivities() {
  return {
    /**
     * Which of these conversations no longer hold a slot: their workflow is closed (finished, failed, terminated) or
     * gone, or reports a status that holds none (PAUSED, STOPPED, ERROR). Read from each workflow's own description,
     * which is current (not the eventually consistent list).
     */
    async checkSlots(input: {
      conversationIds: string[];
    }): Promise<{ stale: Array<{ conversationId: string; why: string }> }> {
      const client = Context.current().client;
      const stale: Array<{ conversationId: string; why: string }> = [];
      for (const conversationId of input.conversationIds) {
        try {
          const d = await client.workflow.getHandle(conversationWorkflowId(conversationId)).describe();
          const status = d.typedSearchAttributes.get(ConversationStatusKey);
          if (d.status.name !== 'RUNNING') stale.push({ conversationId, why: `workflow ${d.status.name}` });
          else if (status !== undefined && !HOLDS_A_SLOT.includes(status))
            stale.push({ conversationId, why: `conversation ${status}` });
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          stale.push({ conversationId, why: 'no such workflow' });
        }
      }
      return { stale };
    },

    /** The user's conversations that hold a slot now, from visibility: how a registry started afresh finds its slots. */
    async listLiveConversations(input: {
      userId: string;
    }): Promise<{ conversations: Array<{ conversationId: string; status: 'STARTING' | 'RUNNING' }> }> {
      const client = Context.current().client;
      const user = `'${input.userId.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      const query = `WorkflowType = '${WORKFLOW_TYPES.startConversation}' AND ExecutionStatus = 'Running' AND UserId = ${user} AND ConversationStatus IN ('STARTING', 'RUNNING')`;
      const conversations: Array<{ conversationId: string; status: 'STARTING' | 'RUNNING' }> = [];
      for await (const wf of client.workflow.list({ query })) {
        const id = wf.typedSearchAttributes.get(ConversationIdKey);
        const status = wf.typedSearchAttributes.get(ConversationStatusKey);
        if (id && (status === 'STARTING' || status === 'RUNNING')) conversations.push({ conversationId: id, status });
      }
      return { conversations };
    },
  };
}
