// createActivities(deps): every activity, built from its dependencies, so tests hand in fakes or real clients.
import type { Dispatcher } from 'undici';
import { toApplicationFailure } from '../shared/errors';
import type { RuntimeProvider } from '../runtime/provider';
import type { ProviderTokens } from '../shared/schemas';
import { activityLog } from './context';
import { createConversationActivities } from './conversations';
import { createNestedActivities } from './nested';
import { createRuntimeActivities } from './runtime';
import { DEFAULT_MODEL_CAPABILITIES, resolveSession, type AcquireSessionInput, type ModelCapabilities, type SessionLease } from './session';
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
}

/** Wrap each activity so a NestorError leaves it as an ApplicationFailure with its stable type and step name. */
function typed<T extends Record<string, (...args: any[]) => Promise<unknown>>>(acts: T): T {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(acts)) {
    out[name] = async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toApplicationFailure(err, name);
      }
    };
  }
  return out as T;
}

export function createActivities(deps: ActivityDeps) {
  const table = deps.modelCapabilities ?? DEFAULT_MODEL_CAPABILITIES;
  const now = deps.now ?? (() => new Date());
  return typed({
    /** Validate the agent and model against the registry and capability table; resolve the LLM configuration. */
    async acquireSession(input: AcquireSessionInput): Promise<SessionLease> {
      return resolveSession(input, table);
    },
    /**
     * Give the session back. The lease holds nothing outside the workflow yet; the per-user slot registry
     * (UserSessions) will release its slot here.
     */
    async releaseSession(input: { conversationId: string; userId: string }): Promise<void> {
      activityLog()?.info('session released', { conversationId: input.conversationId, userId: input.userId });
    },
    async refreshTokens(input: { tokens: ProviderTokens }): Promise<RefreshResult> {
      return refreshProviderTokens(input.tokens, deps.oauth ?? {}, now(), deps.dispatcher);
    },
    ...createRuntimeActivities({ runtime: deps.runtime, dispatcher: deps.dispatcher }),
    ...createNestedActivities({ dispatcher: deps.dispatcher, requestTimeoutMs: deps.nestedRequestTimeoutMs }),
    ...createConversationActivities(),
  });
}

export type Activities = ReturnType<typeof createActivities>;
