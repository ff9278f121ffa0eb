// createActivities(deps): every feature's activities, built from their dependencies, so tests hand in fakes or real
// clients. Failures leave them typed through one activity interceptor (errors/cast-known-errors.ts).
import type { Dispatcher } from 'undici';
import type { KnownErrors } from './errors/cast-known-errors';
import { NESTED_HINTS } from './nested/hints';
import { RUNTIME_HINTS, castDockerError } from './runtime/hints';
import type { RuntimeProvider } from './runtime/provider';
import { createNestedActivities } from './conversation/activities/nested';
import { createRuntimeActivities } from './conversation/activities/runtime';
import { createTokenActivities, type OAuthConfig } from './conversation/activities/tokens';
import { createReaperActivities } from './reaper/activities';
import { createPoolActivities } from './sandbox-pools/activities';
import { createHostActivities } from './sandbox-hosts/activities';
import { createResumeScheduleActivities } from './resume-schedules/activities';
import { createSessionActivities } from './user-sessions/activities';
import { DEFAULT_MODEL_CAPABILITIES, type ModelCapabilities, type SandboxMaxima } from './user-sessions/session';
import { DEFAULT_MAX_CONVERSATIONS_PER_USER } from './defaults';

export interface ActivityDeps {
  runtime: RuntimeProvider;
  /** @default DEFAULT_MODEL_CAPABILITIES */
  modelCapabilities?: Record<string, ModelCapabilities>;
  /** Git providers' OAuth token endpoints and client credentials. */
  oauth?: OAuthConfig;
  /** undici dispatcher for the nested server and OAuth endpoints (tests pass a MockAgent). */
  dispatcher?: Dispatcher;
  /** Per-request timeout for nested-server calls. @default DEFAULT_NESTED_TIMEOUT_MS */
  nestedRequestTimeoutMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
  /** Largest sandbox limits a conversation may ask for. @default DEFAULT_SANDBOX_MAXIMA */
  sandboxMaxima?: SandboxMaxima;
  /** Most conversations per user at once (STARTING ones count), or false to keep no per-user slots. @default DEFAULT_MAX_CONVERSATIONS_PER_USER */
  maxConversationsPerUser?: number | false;
  /** Sandboxes go to registered sandbox hosts (placement), not this worker's engine. @default false */
  sandboxHosts?: boolean;
  /** The host registry's shards (NESTOR_HOST_REGISTRY_SHARDS). @default 1 */
  registryShards?: number;
  /** On a sandbox host's worker: its host ID (the reaper removes what was placed on another host). */
  hostId?: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createSessionActivities({
      runtime: deps.runtime,
      modelCapabilities: deps.modelCapabilities ?? DEFAULT_MODEL_CAPABILITIES,
      sandboxMaxima: deps.sandboxMaxima,
      limit: deps.maxConversationsPerUser ?? DEFAULT_MAX_CONVERSATIONS_PER_USER,
    }),
    ...createTokenActivities({ oauth: deps.oauth, dispatcher: deps.dispatcher, now: deps.now }),
    ...createRuntimeActivities({
      runtime: deps.runtime,
      dispatcher: deps.dispatcher,
      sandboxHosts: deps.sandboxHosts,
    }),
    ...createNestedActivities({ dispatcher: deps.dispatcher, requestTimeoutMs: deps.nestedRequestTimeoutMs }),
    ...createResumeScheduleActivities(),
    ...createReaperActivities({ runtime: deps.runtime, hostId: deps.hostId }),
    ...createPoolActivities({ runtime: deps.runtime }),
    ...createHostActivities({ sandboxHosts: deps.sandboxHosts, registryShards: deps.registryShards }),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** What the adapters know of their failures, for the activity interceptor that types them (errors/cast-known-errors.ts). */
export const KNOWN_ERRORS: KnownErrors = { hints: { ...RUNTIME_HINTS, ...NESTED_HINTS }, casts: [castDockerError] };
