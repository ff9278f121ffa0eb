// The user-sessions activities. acquireSession / releaseSession: what a conversation asks of its user's slot registry
// (UserSessions), after checking its settings. checkSlots / listLiveConversations: what UserSessions asks of Temporal
// itself to keep its slots true to the conversations they stand for (a closed, terminated or paused conversation holds
// no slot, whatever was signalled).
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import type { RuntimeProvider } from '../runtime/provider';
import { ConversationIdKey, ConversationStatusKey, WORKFLOW_TYPES, conversationWorkflowId } from '../shared/constants';
import { activityLog, heartbeat } from '../shared/activity-context';
import { acquireSlotUpdate, releaseSlotSignal, userSessionsWorkflowId, type SlotGrant } from './messages';
import {
  resolveSession,
  type AcquireSessionInput,
  type ModelCapabilities,
  type SandboxMaxima,
  type SessionLease,
} from './session';

/** Conversation statuses that hold a slot. */
const HOLDS_A_SLOT = ['STARTING', 'RUNNING'];

export interface SessionActivityDeps {
  runtime: RuntimeProvider;
  modelCapabilities: Record<string, ModelCapabilities>;
  sandboxMaxima?: SandboxMaxima;
  /** Most conversations per user at once, or false to keep no per-user slots. */
  limit: number | false;
}

export function createSessionActivities(deps: SessionActivityDeps) {
  const { limit } = deps;
  return {
    /**
     * Validate the agent and model against the registry and capability table, then take a slot from the user's
     * UserSessions workflow (update-with-start), which may pause the user's least recently active conversation.
     */
    async acquireSession(input: AcquireSessionInput): Promise<SessionLease & { evicted: string[] }> {
      // The image's floor is checked here, before a slot is taken; an image not built yet is createRuntime's to report.
      const image = await deps.runtime.requirements().catch(() => undefined);
      const lease = resolveSession(input, deps.modelCapabilities, deps.sandboxMaxima, image);
      if (limit === false) return { ...lease, evicted: [] };
      const grant = await takeSlot(input, limit);
      if (grant.evicted.length)
        activityLog()?.info('paused to make room', { userId: input.userId, evicted: grant.evicted });
      return { ...lease, evicted: grant.evicted };
    },

    /** Give the conversation's slot back to the user's UserSessions workflow. */
    async releaseSession(input: { conversationId: string; userId: string }): Promise<void> {
      if (limit === false) return;
      try {
        await Context.current()
          .client.workflow.getHandle(userSessionsWorkflowId(input.userId))
          .signal(releaseSlotSignal, { conversationId: input.conversationId });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err; // no registry: no slot to give back
      }
    },
    ...createSlotActivities(),
  };
}

/** What UserSessions asks of Temporal to check its slots. */
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

/** Ask the user's registry for a slot, starting the registry if it does not run yet. */
async function takeSlot(input: AcquireSessionInput, limit: number): Promise<SlotGrant> {
  const ctx = Context.current();
  const startWorkflowOperation = new WithStartWorkflowOperation(WORKFLOW_TYPES.userSessions, {
    workflowId: userSessionsWorkflowId(input.userId),
    taskQueue: ctx.info.taskQueue,
    args: [{ userId: input.userId, limit }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `conversation slots of ${input.userId}`,
  });
  // Waiting for an evicted conversation to pause can take a while: keep telling Temporal we are alive.
  const beat = setInterval(() => heartbeat('waiting for a slot'), 2000);
  try {
    return await ctx.client.workflow.executeUpdateWithStart(acquireSlotUpdate, {
      args: [{ conversationId: input.conversationId, limit }],
      startWorkflowOperation,
    });
  } finally {
    clearInterval(beat);
  }
}
