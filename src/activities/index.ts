// createActivities(deps): every activity, built from its dependencies, so tests hand in fakes or real clients.
import type { Dispatcher } from 'undici';
import { toApplicationFailure } from '../shared/errors';
import type { RuntimeProvider } from '../runtime/provider';
import type { ProviderTokens } from '../shared/schemas';
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { activityLog, heartbeat } from './context';
import {
  UserSessions,
  acquireSlotUpdate,
  releaseSlotSignal,
  userSessionsWorkflowId,
  type SlotGrant,
} from '../workflows/user-sessions';
import { createConversationActivities } from './conversations';
import { createNestedActivities } from './nested';
import { createRuntimeActivities } from './runtime';
import { createReaperActivities } from './reaper';
import { createSlotActivities } from './slots';
import {
  DEFAULT_MODEL_CAPABILITIES,
  resolveSession,
  type AcquireSessionInput,
  type ModelCapabilities,
  type SandboxMaxima,
  type SessionLease,
} from './session';
import { refreshProviderTokens, type OAuthConfig, type RefreshResult } from './tokens';

export interface ActivityDeps {
  runtime: RuntimeProvider;
  /** @default DEFAULT_MODEL_CAPABILITIES */
  modelCapabilities?: Record<string, ModelCapabilities>;
  /** Git providers' OAuth token endpoints and client credentials. */
  oauth?: OAuthConfig;
  /** undici dispatcher for the nested server and OAuth endpoints (tests pass a MockAgent). */
  dispatcher?: Dispatcher;
  /** Per-request timeout for nested-server calls. @default 10000 */
  nestedRequestTimeoutMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
  /** Largest sandbox limits a conversation may ask for. @default DEFAULT_SANDBOX_MAXIMA */
  sandboxMaxima?: SandboxMaxima;
  /** Most conversations per user at once (STARTING ones count), or false to keep no per-user slots. @default 3 */
  maxConversationsPerUser?: number | false;
}

/** OpenHands' max_concurrent_conversations default. */
export const DEFAULT_MAX_CONVERSATIONS_PER_USER = 3;

/** Wrap each activity so a NestorError leaves it as an ApplicationFailure with its stable type and step name. */
function typed<T extends Record<string, (...args: any[]) => Promise<unknown>>>(acts: T): T {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(acts)) {
    out[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        const conversationId = (args[0] as { conversationId?: unknown } | undefined)?.conversationId;
        throw toApplicationFailure(err, name, typeof conversationId === 'string' ? conversationId : undefined);
      }
    };
  }
  return out as T;
}

export function createActivities(deps: ActivityDeps) {
  const table = deps.modelCapabilities ?? DEFAULT_MODEL_CAPABILITIES;
  const now = deps.now ?? (() => new Date());
  const limit = deps.maxConversationsPerUser ?? DEFAULT_MAX_CONVERSATIONS_PER_USER;
  return typed({
    /**
     * Validate the agent and model against the registry and capability table, then take a slot from the user's
     * UserSessions workflow (update-with-start), which may pause the user's least recently active conversation.
     */
    async acquireSession(input: AcquireSessionInput): Promise<SessionLease & { evicted: string[] }> {
      // The image's floor is checked here, before a slot is taken; an image not built yet is createRuntime's to report.
      const image = await deps.runtime.requirements().catch(() => undefined);
      const lease = resolveSession(input, table, deps.sandboxMaxima, image);
      if (limit === false) return { ...lease, evicted: [] };
      const ctx = Context.current();
      const startWorkflowOperation = new WithStartWorkflowOperation(UserSessions, {
        workflowId: userSessionsWorkflowId(input.userId),
        taskQueue: ctx.info.taskQueue,
        args: [{ userId: input.userId, limit }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `conversation slots of ${input.userId}`,
      });
      // Waiting for an evicted conversation to pause can take a while: keep telling Temporal we are alive.
      const beat = setInterval(() => heartbeat('waiting for a slot'), 2000);
      try {
        const grant: SlotGrant = await ctx.client.workflow.executeUpdateWithStart(acquireSlotUpdate, {
          args: [{ conversationId: input.conversationId, limit }],
          startWorkflowOperation,
        });
        if (grant.evicted.length)
          activityLog()?.info('paused to make room', { userId: input.userId, evicted: grant.evicted });
        return { ...lease, evicted: grant.evicted };
      } finally {
        clearInterval(beat);
      }
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
    async refreshTokens(input: { tokens: ProviderTokens }): Promise<RefreshResult> {
      return refreshProviderTokens(input.tokens, deps.oauth ?? {}, now(), deps.dispatcher);
    },
    ...createRuntimeActivities({ runtime: deps.runtime, dispatcher: deps.dispatcher }),
    ...createNestedActivities({ dispatcher: deps.dispatcher, requestTimeoutMs: deps.nestedRequestTimeoutMs }),
    ...createConversationActivities(),
    ...createReaperActivities({ runtime: deps.runtime }),
    ...createSlotActivities(),
  });
}

export type Activities = ReturnType<typeof createActivities>;
