// Every activity StartConversation runs, with its timeouts and retries in one table, a UI summary and the heartbeat
// timeout. The workflow sees only the activities' types.
import {
  ActivityCancellationType,
  type ActivityOptions,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { ErrorType } from '../../errors';
import { RUNTIME_STEP_CEILING_MS } from '../../defaults';

/**
 * Every step heartbeats each second while it runs (worker activity interceptor), so an activity whose worker died is
 * tried again after this long instead of after its start-to-close timeout.
 */
const HEARTBEAT_TIMEOUT = '10 seconds';

export const NEVER_RETRY_INPUT = [
  ErrorType.InvalidInput,
  ErrorType.InvalidSettings,
  ErrorType.NestedUnauthorized,
  ErrorType.NestedBadRequest,
];

const TOKENS: ActivityOptions = {
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
};
const NESTED: ActivityOptions = {
  startToCloseTimeout: '60 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NEVER_RETRY_INPUT,
  },
};

/**
 * A clone (CLONE_TIMEOUT_S, 10 min; it heartbeats meanwhile, and a failed clone starts over clean) and the
 * repository's setup script (SETUP_TIMEOUT_S, 10 min), with room.
 */
const REPOSITORY: ActivityOptions = {
  startToCloseTimeout: '22 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
};

const PLACEMENT: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
};

/** The bounds of the steps whose timeouts depend on the conversation's own (alive, ready). */
function stepOptions(aliveTimeoutMs: number | undefined, readyTimeoutMs: number) {
  const SESSION: ActivityOptions = {
    // Taking a slot may wait for another conversation of the user to pause.
    startToCloseTimeout: '3 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '10 seconds',
      maximumAttempts: 5,
      nonRetryableErrorTypes: NEVER_RETRY_INPUT,
    },
  };
  const RUNTIME: ActivityOptions = {
    startToCloseTimeout: (aliveTimeoutMs ?? RUNTIME_STEP_CEILING_MS) + 60_000,
    // Wait for the activity to stop before compensating, so a cancelled create cannot leave a container behind.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      maximumInterval: '10 seconds',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [...NEVER_RETRY_INPUT, ErrorType.RuntimeImageNotFound],
    },
  };
  const READY: ActivityOptions = {
    startToCloseTimeout: readyTimeoutMs + 30_000,
    // Retried only when the worker died mid-poll; exhausting the bound (NotReady) is final.
    retry: {
      initialInterval: '1 second',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [...NEVER_RETRY_INPUT, ErrorType.NotReady],
    },
  };
  const CLEANUP: ActivityOptions = {
    startToCloseTimeout: '60 seconds',
    // Cleanup must outlast a Docker hiccup (about 4 minutes of tries), but not forever.
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      maximumAttempts: 10,
      nonRetryableErrorTypes: [ErrorType.InvalidInput],
    },
  };
  return { SESSION, RUNTIME, READY, CLEANUP };
}

/**
 * Each step's timeouts and retries, named so a reader sees every bound in one place; each activity gets a UI summary
 * and the heartbeat timeout.
 */
export function stepActivities(
  aliveTimeoutMs: number | undefined,
  readyTimeoutMs: number,
  host?: { taskQueue: string; pickupTimeoutMs: number },
) {
  const { SESSION, RUNTIME, READY, CLEANUP } = stepOptions(aliveTimeoutMs, readyTimeoutMs);
  const one = <K extends keyof Activities>(name: K, options: ActivityOptions, summary: string): Activities[K] =>
    proxyActivities<Activities>({ heartbeatTimeout: HEARTBEAT_TIMEOUT, ...options, summary: `${name}: ${summary}` })[
      name
    ];
  /**
   * A step that touches the sandbox: with a host placement, it runs on that host's worker (the sandbox and its port,
   * published on the host's 127.0.0.1, are only there). A task the host's worker does not pick up within the bound
   * fails at once (schedule-to-start timeout; never retried): the host is gone, and the workflow says so.
   */
  const onHost = <K extends keyof Activities>(name: K, options: ActivityOptions, summary: string): Activities[K] =>
    host
      ? one(
          name,
          { ...options, taskQueue: host.taskQueue, scheduleToStartTimeout: host.pickupTimeoutMs },
          `${summary} (on ${host.taskQueue})`,
        )
      : one(name, options, summary);
  const local = {
    refreshTokens: proxyLocalActivities<Activities>(TOKENS).refreshTokens,
    configureNestedServer: proxyLocalActivities<Activities>(NESTED).configureNestedServer,
    createConversation: proxyLocalActivities<Activities>(NESTED).createConversation,
  };
  const cursorOptions: ActivityOptions = {
    startToCloseTimeout: '15 seconds',
    retry: { initialInterval: '200 milliseconds', maximumAttempts: 3, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
  };
  const hostSteps = {
    createRuntime: onHost('createRuntime', RUNTIME, 'create or adopt the container, wait for /alive'),
    claimRuntime: onHost('claimRuntime', RUNTIME, 'claim a pooled container beside the slot, wait for /alive'),
    resumeRuntime: onHost('resumeRuntime', RUNTIME, 'start the paused container, wait for /alive'),
    pauseRuntime: onHost('pauseRuntime', CLEANUP, 'stop the container, keep it'),
    configureNestedServer: onHost(
      'configureNestedServer',
      NESTED,
      'settings, git providers, secrets, experiment config',
    ),
    prepareRepository: onHost('prepareRepository', REPOSITORY, "clone the start's repository (agent server)"),
    createConversation: onHost('createConversation', NESTED, 'POST /api/conversations'),
    waitForReady: onHost('waitForReady', READY, 'poll until the nested conversation runs'),
    sendEvent: onHost('sendEvent', NESTED, 'deliver a user message'),
    stopConversation: onHost('stopConversation', CLEANUP, 'stop the nested agent loop'),
    conversationActivity: onHost(
      'conversationActivity',
      NESTED,
      "read the agent's newest event and state (idle check)",
    ),
    removeRuntime: onHost('removeRuntime', CLEANUP, 'remove the container'),
  };
  return {
    acquireSession: one('acquireSession', SESSION, 'validate agent, model and key; take a slot of the user'),
    refreshTokens: one('refreshTokens', TOKENS, 'refresh git tokens expiring within 4 h'),
    ...hostSteps,
    releaseSession: one('releaseSession', CLEANUP, 'give the session back'),
    deleteResumeSchedules: one(
      'deleteResumeSchedules',
      CLEANUP,
      'delete the resume schedules of the closed conversation',
    ),
    /**
     * The nested set-up steps as local activities (runs since LEAN_START_PATCH): each is a few quick HTTP calls, so
     * they run inside the workflow task that asked for them, one after another, with no server round trip and no
     * workflow task between them. Same bounds and retries as their activity form. On a sandbox host they cannot be
     * local (the sandbox is reachable from its host only): they are that host's activities. refreshTokens is here for
     * histories recorded before REFRESH_AS_ACTIVITY_PATCH only.
     */
    local: host
      ? { refreshTokens: local.refreshTokens, ...pick(hostSteps, 'configureNestedServer', 'createConversation') }
      : local,
    // Local: one quick read, in the workflow task that schedules the delivery, with no server round trip (on a
    // sandbox host: that host's activity, for the same reason).
    markDeliveryCursor: host
      ? onHost('markDeliveryCursor', cursorOptions, 'mark the newest event before a delivery')
      : proxyLocalActivities<Activities>(cursorOptions).markDeliveryCursor,
    /** Whether the sandbox is on this worker's engine and a pool member can serve it (CLAIM_BESIDE_SLOT_PATCH). */
    whereSandbox: proxyLocalActivities<Activities>(PLACEMENT).whereSandbox,
    /**
     * A start on this worker's engine (CLAIM_BESIDE_SLOT_PATCH): a first readiness look in the workflow task of the
     * nested set-up (no retries: not ready yet, the waitForReady activity goes on with the whole bound). The slot stays
     * an activity: it waits for the user's registry, another workflow, which needs a workflow task slot of its own.
     */
    here: {
      readyNow: proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 1 } })
        .waitForReady,
    },
    /** Where the sandbox goes (patch SANDBOX_HOSTS_PATCH): local, a quick answer from the worker's configuration or the registry. */
    placeSandbox: proxyLocalActivities<Activities>(PLACEMENT).placeSandbox,
    releaseSandbox: one('releaseSandbox', CLEANUP, 'give the sandbox host placement back'),
    reportHostLost: one('reportHostLost', CLEANUP, 'tell the host registry a host did not pick up its task'),
  };
}

function pick<T, K extends keyof T>(o: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

/** The activities of one run, as the workflow calls them. */
export type Steps = ReturnType<typeof stepActivities>;

/**
 * The activities StartConversation calls: what a worker of its task queue must provide, and what a test's fakes must
 * fake in full (a new step missing from them is a compile error, not thirty failed tests).
 */
export type ConversationActivities = Pick<Activities, Exclude<keyof Steps, 'local' | 'here'>>;
