// StartConversation: one run per live conversation. The workflow ID is the lock; this file says what happens in
// which order, the activities say how.
import {
  ActivityCancellationType,
  type ActivityOptions,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  currentUpdateInfo,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { CreatedRuntime } from '../activities/runtime';
import {
  ConversationStatusKey,
  RECENT_MESSAGE_IDS,
  conversationWorkflowId,
  type ConversationStatus,
  type StartStep,
} from '../../shared/constants';
import { ErrorType } from '../../errors';
import {
  CloseInputSchema,
  PauseInputSchema,
  SendMessageInputSchema,
  StartConversationInputSchema,
  formatIssues,
  type AgentLoopInfo,
  type MessageAck,
  type ProviderTokens,
  type SendMessageInput,
  type StartConversationInput,
} from '../../shared/schemas';
import type { z } from 'zod';
import { keyMismatch, undecryptable } from '../../codec/undecryptable';
import {
  closeSignal,
  closeUpdate,
  pauseSignal,
  pauseUpdate,
  resumeUpdate,
  sendMessageUpdate,
  statusQuery,
  waitReadyUpdate,
} from '../messages';
import { touchSlotSignal, userSessionsWorkflowId } from '../../user-sessions/messages';
import { conversationMetrics } from './metrics';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_READY_TIMEOUT_MS,
  MAX_WARNINGS,
  RUNTIME_STEP_CEILING_MS,
} from '../../defaults';

/**
 * Every step heartbeats each second while it runs (worker activity interceptor), so an activity whose worker died is
 * tried again after this long instead of after its start-to-close timeout.
 */
const HEARTBEAT_TIMEOUT = '10 seconds';

/** Patch ID: a delivery that finds the sandbox unreachable recovers it (a resume) and tries again. */
export const RECOVER_SANDBOX_PATCH = 'recover-unreachable-sandbox';

/**
 * Patch ID: before a message's first delivery the workflow marks the newest event ID (a local activity), so a later
 * look for its earlier post starts there, not at the cursor of the previous delivery.
 */
export const DELIVERY_CURSOR_PATCH = 'delivery-cursor';

/** Patch ID: a start or resume whose slot request was interrupted (a close) gives back the slot it may be granted. */
export const RELEASE_UNFINISHED_ACQUIRE_PATCH = 'release-unfinished-acquire';

/** Patch ID: closing deletes the conversation's resume schedules. */
export const CLOSE_DELETES_SCHEDULES_PATCH = 'close-deletes-schedules';

/**
 * Patch ID: when the idle timer runs out, the conversation's own activity (its newest event, the agent's state) is
 * read first: an agent at work, or one that wrote lately, is not idle.
 */
export const IDLE_COUNTS_AGENT_PATCH = 'idle-counts-agent';

/** Patch ID: the worker checks a new conversation's start input against the published schema. */
export const VALIDATE_INPUT_PATCH = 'validate-start-input';

/** Patch ID: `touch` stopped waiting for its signal's delivery (histories recorded before still replay). */
export const ASYNC_TOUCH_PATCH = 'async-touch';

const NEVER_RETRY_INPUT = [
  ErrorType.InvalidInput,
  ErrorType.InvalidSettings,
  ErrorType.NestedUnauthorized,
  ErrorType.NestedBadRequest,
];

/**
 * Each step's timeouts and retries, named so a reader sees every bound in one place; each activity gets a UI summary
 * and the heartbeat timeout.
 */
function stepActivities(aliveTimeoutMs: number | undefined, readyTimeoutMs: number) {
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
  const one = <K extends keyof Activities>(name: K, options: ActivityOptions, summary: string): Activities[K] =>
    proxyActivities<Activities>({ heartbeatTimeout: HEARTBEAT_TIMEOUT, ...options, summary: `${name}: ${summary}` })[
      name
    ];
  return {
    acquireSession: one('acquireSession', SESSION, 'validate agent, model and key; take a slot of the user'),
    createRuntime: one('createRuntime', RUNTIME, 'create or adopt the container, wait for /alive'),
    resumeRuntime: one('resumeRuntime', RUNTIME, 'start the paused container, wait for /alive'),
    pauseRuntime: one('pauseRuntime', CLEANUP, 'stop the container, keep it'),
    refreshTokens: one('refreshTokens', TOKENS, 'refresh git tokens expiring within 4 h'),
    configureNestedServer: one('configureNestedServer', NESTED, 'settings, git providers, secrets, experiment config'),
    createConversation: one('createConversation', NESTED, 'POST /api/conversations'),
    waitForReady: one('waitForReady', READY, 'poll until the nested conversation runs'),
    sendEvent: one('sendEvent', NESTED, 'deliver a user message'),
    stopConversation: one('stopConversation', CLEANUP, 'stop the nested agent loop'),
    conversationActivity: one('conversationActivity', NESTED, "read the agent's newest event and state (idle check)"),
    removeRuntime: one('removeRuntime', CLEANUP, 'remove the container'),
    releaseSession: one('releaseSession', CLEANUP, 'give the session back'),
    deleteResumeSchedules: one(
      'deleteResumeSchedules',
      CLEANUP,
      'delete the resume schedules of the closed conversation',
    ),
    // Local: one quick read, in the workflow task that schedules the delivery, with no server round trip.
    markDeliveryCursor: proxyLocalActivities<Activities>({
      startToCloseTimeout: '15 seconds',
      retry: { initialInterval: '200 milliseconds', maximumAttempts: 3, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
    }).markDeliveryCursor,
  };
}

interface PendingMessage {
  id: string;
  /** The sandbox was recovered once for this message already. */
  recovered?: boolean;
  /** Deliveries of it scheduled so far: after the first, it may have been posted and is looked for first. */
  posts: number;
  /** The cursor when its first delivery was scheduled: an earlier post of it is after this event. */
  lookFrom?: number;
  input: SendMessageInput;
  ack?: MessageAck;
  error?: ApplicationFailure;
  done: boolean;
}

/** What one run hands the next through continue-as-new. Pending messages are always delivered first, so none travel. */
export interface CarriedState {
  info: AgentLoopInfo;
  runtime?: CreatedRuntime;
  tokens?: ProviderTokens;
  /** Recently delivered message IDs and their acknowledgements, oldest first. */
  acks: Array<[string, MessageAck]>;
  /** Recent message IDs whose delivery failed, with the failure, oldest first (absent in runs before it existed). */
  failed?: Array<[string, DeliveryFailure]>;
  /** Newest event ID known to precede every message still to be delivered. */
  cursor: number;
}

/** Why a message's delivery failed, kept so that the same message ID sent again gets the same answer. */
export interface DeliveryFailure {
  type: string;
  message: string;
}

/** Keep `value` under `key`, forgetting the oldest once more than RECENT_MESSAGE_IDS are kept. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > RECENT_MESSAGE_IDS) map.delete(map.keys().next().value!);
}

function deliveryFailure(f: DeliveryFailure): ApplicationFailure {
  return ApplicationFailure.create({ message: f.message, type: f.type, nonRetryable: true });
}

/** The cause of a failed step, as a type name and a message, without stack or payloads. */
function describeCause(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

/** The failure of an input that does not satisfy its schema: every bad field named, nothing done. */
function invalidInput(what: string, error: z.ZodError): ApplicationFailure {
  return ApplicationFailure.create({
    message: `invalid ${what}: ${formatIssues(error)}`,
    type: ErrorType.InvalidInput,
    nonRetryable: true,
    details: [{ issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) }],
  });
}

/** Validate a message input with its schema in an update's validator: a bad one is rejected before it is accepted. */
function checked<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const sealed = keyMismatch(what, value);
  if (sealed) throw sealed;
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw invalidInput(what, r.error);
  return r.data;
}

/**
 * The start input as the worker trusts it: parsed with the published schema (defaults applied, limits checked),
 * whatever client sent it, and addressed to this workflow's own ID.
 */
function checkStartInput(request: StartConversationInput): {
  input: StartConversationInput;
  invalid?: ApplicationFailure;
} {
  const sealed = keyMismatch('start', request);
  if (sealed) return { input: {} as StartConversationInput, invalid: sealed };
  const r = StartConversationInputSchema.safeParse(request);
  if (!r.success)
    return { input: request ?? ({} as StartConversationInput), invalid: invalidInput('start input', r.error) };
  const expected = conversationWorkflowId(r.data.conversationId);
  if (workflowInfo().workflowId !== expected) {
    const message = `invalid start input: conversationId: '${r.data.conversationId}' is not this workflow's conversation (workflow ID '${workflowInfo().workflowId}', expected '${expected}')`;
    return {
      input: r.data,
      invalid: ApplicationFailure.create({ message, type: ErrorType.InvalidInput, nonRetryable: true }),
    };
  }
  return { input: r.data };
}

export async function StartConversation(
  request: StartConversationInput,
  carried?: CarriedState,
): Promise<AgentLoopInfo> {
  const { input, invalid } = checkStartInput(request);
  const conversationId = typeof input.conversationId === 'string' ? input.conversationId : workflowInfo().workflowId;
  const userId = typeof input.userId === 'string' ? input.userId : '';
  // Unset: the runtime image's own bound (its manifest), applied by the activity.
  const aliveTimeoutMs = input.timeouts?.aliveTimeoutMs;
  const readyTimeoutMs = input.timeouts?.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const idleTimeoutMs = input.timeouts?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const acts = stepActivities(aliveTimeoutMs, readyTimeoutMs);
  /** This conversation's life under its ID (every run of it): its sandbox is labelled with it, never adopted by another. */
  const incarnation = workflowInfo().firstExecutionRunId;
  const metrics = conversationMetrics();

  const info: AgentLoopInfo = carried?.info ?? {
    conversationId,
    userId,
    status: 'STARTING',
    startedAt: new Date(workflowInfo().startTime).toISOString(),
    messagesDelivered: 0,
    warnings: [],
  };
  info.runNumber = (info.runNumber ?? 0) + 1;
  let runtime: CreatedRuntime | undefined = carried?.runtime;
  let tokens: ProviderTokens | undefined = carried?.tokens ?? input.gitProviderTokens;
  let cursor = carried?.cursor ?? -1;
  const acks = new Map<string, MessageAck>(carried?.acks ?? []);
  const failed = new Map<string, DeliveryFailure>(carried?.failed ?? []);
  let startFailure: ApplicationFailure | undefined;
  /** The last failed resume, and how many there were: a waiter fails when one happens after it began waiting. */
  let resumeFailure: ApplicationFailure | undefined;
  let resumeFailures = 0;
  /** Likewise for pauses, so a pause update whose pause failed is answered instead of left waiting. */
  let pauseFailure: ApplicationFailure | undefined;
  let pauseFailures = 0;
  let closeRequested = false;
  let closeReason: string | undefined;
  let pauseReason: string | undefined;
  let resumeRequested = false;
  /** Set when the sandbox stopped answering a delivery: the loop brings it back before anything else. */
  let sandboxLost: string | undefined;
  const queue: PendingMessage[] = [];
  /** True while this run is handing over to the next: new messages are turned away for the client to retry there. */
  let switching = false;
  /** The scope of the bring-up in progress (start or resume), cancelled by a close. */
  let bringUpScope: CancellationScope | undefined;

  /** The status last logged: each change is logged once (a continued run has logged its status already). */
  let loggedStatus: ConversationStatus | undefined = carried ? info.status : undefined;
  const setStatus = (status: ConversationStatus) => {
    if (status !== loggedStatus) log.info(`conversation ${status}`, { status, step: info.step ?? 'acquireSession' });
    loggedStatus = status;
    info.status = status;
    upsertSearchAttributes([{ key: ConversationStatusKey, value: status }]);
  };
  const setStep = (step: AgentLoopInfo['step'], details: string) => {
    info.step = step;
    setCurrentDetails(`**${info.status}** · ${step}: ${details}`);
  };
  const terminal = () => info.status === 'STOPPED' || info.status === 'ERROR';
  /** The queue holds only messages still to deliver: delivered ones move to `acks`, failed ones are dropped. */
  const pending = () => queue.length > 0;
  const requestClose = (reason?: string) => {
    if (closeRequested) return;
    closeRequested = true;
    closeReason = reason;
    // Closing while starting or resuming interrupts the step in flight; compensations then tear down what exists.
    bringUpScope?.cancel();
  };
  const requestPause = (reason: string) => {
    if (!closeRequested && !terminal()) pauseReason ??= reason;
  };
  const closedFailure = () =>
    ApplicationFailure.create({
      message: `conversation ${conversationId} is ${info.status === 'ERROR' ? 'failed' : 'closed'}`,
      type: ErrorType.ConversationClosed,
      nonRetryable: true,
    });
  const publicInfo = (): AgentLoopInfo => ({ ...info, sessionApiKey: undefined });
  /**
   * Note something the conversation runs without or went through. Kept to the newest MAX_WARNINGS, each once (the
   * oldest go first), so a long life does not grow its status, and what continue-as-new carries, without bound.
   */
  const warn = (w: string) => {
    info.warnings = [...info.warnings.filter((x) => x !== w), w].slice(-MAX_WARNINGS);
  };
  info.warnings = info.warnings.slice(-MAX_WARNINGS);
  const rejectIfClosed = (): void => {
    if (closeRequested || terminal()) throw closedFailure();
  };

  // All handlers before the first await: update-with-start delivers its update before the main code proceeds.
  setHandler(statusQuery, publicInfo);
  /** Wait until RUNNING; fail if the conversation ends or a resume fails meanwhile. */
  const untilRunning = async () => {
    const failuresBefore = resumeFailures;
    await condition(() => info.status === 'RUNNING' || terminal() || resumeFailures > failuresBefore);
    if (info.status !== 'RUNNING')
      throw resumeFailures > failuresBefore ? resumeFailure! : (startFailure ?? closedFailure());
  };
  setHandler(
    waitReadyUpdate,
    async () => {
      if (info.status === 'PAUSED') resumeRequested = true;
      await untilRunning();
      return { ...info, sessionApiKey: runtime?.sessionApiKey };
    },
    {
      // Another user's start (the same conversation ID) must not join this conversation and get its session key.
      validator: (w) => {
        const sealed = keyMismatch('waitReady', w);
        if (sealed) throw sealed;
        if (w?.userId !== undefined && w.userId !== userId) {
          throw ApplicationFailure.create({
            message: `conversationId: conversation ${conversationId} belongs to another user; choose another conversation ID`,
            type: ErrorType.WrongUser,
            nonRetryable: true,
          });
        }
      },
    },
  );
  setHandler(
    sendMessageUpdate,
    async (msg) => {
      const id = msg.messageId ?? currentUpdateInfo()?.id ?? uuid4();
      // The same message ID again (a retry, or the client after a continue-as-new) gets the first answer.
      const delivered = acks.get(id);
      if (delivered) return delivered;
      // A delivery that failed may still have posted it: the same ID never goes again, it gets the same failure.
      const failure = failed.get(id);
      if (failure) throw deliveryFailure(failure);
      let item = queue.find((m) => m.id === id);
      if (!item) {
        item = { id, input: msg, done: false, posts: 0 };
        queue.push(item);
      }
      const mine = item;
      await condition(() => mine.done);
      if (mine.error) throw mine.error;
      return mine.ack!;
    },
    {
      validator: (msg) => {
        checked(SendMessageInputSchema, msg, 'message');
        rejectIfClosed();
        if (switching) {
          throw ApplicationFailure.create({
            message: 'continuing as new: send again',
            type: ErrorType.ContinuingAsNew,
            nonRetryable: false,
          });
        }
      },
    },
  );
  setHandler(
    closeUpdate,
    async (c) => {
      requestClose(c?.reason);
      await condition(terminal);
      return publicInfo();
    },
    { validator: (c) => void checked(CloseInputSchema, c, 'close input') },
  );
  // A signal cannot be refused: a close is a close, but a reason that breaks the schema is not kept.
  // A signal nobody here can read (another key) is no instruction: only holders of a shared key drive a conversation.
  setHandler(closeSignal, (c) => {
    if (undecryptable(c))
      return void log.warn('close signal sealed with an unknown key ignored', { keyId: undecryptable(c)!.keyId });
    requestClose(CloseInputSchema.safeParse(c ?? {}).data?.reason);
  });
  setHandler(
    pauseUpdate,
    async (p) => {
      const failuresBefore = pauseFailures;
      requestPause(p?.reason ?? 'paused on request');
      await condition(() => info.status === 'PAUSED' || terminal() || pauseFailures > failuresBefore);
      if (info.status !== 'PAUSED' && pauseFailures > failuresBefore) throw pauseFailure!;
      return publicInfo();
    },
    {
      validator: (p) => {
        checked(PauseInputSchema, p, 'pause input');
        rejectIfClosed();
      },
    },
  );
  setHandler(pauseSignal, (p) => {
    if (undecryptable(p))
      return void log.warn('pause signal sealed with an unknown key ignored', { keyId: undecryptable(p)!.keyId });
    requestPause(PauseInputSchema.safeParse(p ?? {}).data?.reason ?? 'paused on request');
  });
  setHandler(
    resumeUpdate,
    async () => {
      if (info.status === 'PAUSED') resumeRequested = true;
      await untilRunning();
      return publicInfo();
    },
    { validator: rejectIfClosed },
  );

  const failPending = (failure: ApplicationFailure) => {
    for (const m of queue.splice(0)) {
      m.error = failure;
      m.done = true;
    }
  };

  /**
   * Start (mode 'start') or resume (mode 'resume') the conversation: the six steps, with compensations pushed as each
   * resource comes to exist. Returns 'running'; 'closed' when a close interrupted it; 'paused' when a resume failed
   * (the sandbox is stopped again, kept with its data, and can be resumed later). A failed start throws the typed
   * start failure.
   */
  const bringUp = async (mode: 'start' | 'resume'): Promise<'running' | 'closed' | 'paused'> => {
    setStatus('STARTING');
    const compensations: Array<{ name: string; run: () => Promise<unknown> }> = [];
    let step: StartStep | 'resumeRuntime' = 'acquireSession';
    const run = async <T>(s: StartStep | 'resumeRuntime', details: string, fn: () => Promise<T>): Promise<T> => {
      step = s;
      setStep(s, details);
      return fn();
    };
    bringUpScope = new CancellationScope();
    try {
      await bringUpScope.run(async () => {
        // Pushed before the request: a request interrupted by a close may still be granted by the user's registry.
        const release = { name: 'releaseSession', run: () => acts.releaseSession({ conversationId, userId }) };
        if (patched(RELEASE_UNFINISHED_ACQUIRE_PATCH)) compensations.unshift(release);
        await run('acquireSession', 'validating settings', () =>
          acts.acquireSession({ conversationId, userId, settings: input.settings }),
        );
        if (!compensations.includes(release)) compensations.unshift(release);

        // Pushed before the create: a create that fails half-way may still have made the container. A failed resume
        // only stops it again: the conversation's data stays, for a later resume.
        compensations.unshift(
          mode === 'start'
            ? { name: 'removeRuntime', run: () => acts.removeRuntime({ conversationId }) }
            : { name: 'pauseRuntime', run: () => acts.pauseRuntime({ conversationId }) },
        );
        const sandbox = input.settings.sandbox;
        runtime =
          mode === 'start'
            ? await run('createRuntime', 'waiting for the container to answer /alive', () =>
                acts.createRuntime({
                  conversationId,
                  userId,
                  incarnation,
                  env: sandbox?.env,
                  cpus: sandbox?.cpus,
                  memoryMb: sandbox?.memoryMb,
                  pidsLimit: sandbox?.pidsLimit,
                  egress: sandbox?.egress,
                  aliveTimeoutMs,
                }),
              )
            : await run('resumeRuntime', 'starting the paused container', () =>
                acts.resumeRuntime({ conversationId, incarnation, aliveTimeoutMs }),
              );
        info.runtimeId = runtime.runtimeId;
        info.timings = { runtimeReadyMs: runtime.readyMs };
        info.url = `${runtime.url}/api/conversations/${conversationId}`;
        upsertMemo({ runtimeId: runtime.runtimeId, runtimeAdopted: runtime.adopted });

        if (tokens && Object.keys(tokens).length > 0) {
          const current = tokens;
          const refreshed = await run('refreshTokens', 'refreshing git provider tokens', () =>
            acts.refreshTokens({ tokens: current }),
          );
          tokens = refreshed.tokens;
          for (const w of refreshed.warnings) warn(w);
          for (const w of refreshed.warnings) log.warn('token refresh', { step: 'refreshTokens', warning: w });
        }

        const target = { url: runtime.url, sessionApiKey: runtime.sessionApiKey, conversationId };
        const configured = await run('configureNestedServer', 'storing settings, git providers and secrets', () =>
          acts.configureNestedServer({
            ...target,
            settings: input.settings,
            providerTokens: tokens,
            customSecrets: input.customSecrets,
            repository: input.repository,
            gitProvider: input.gitProvider,
          }),
        );
        // Histories recorded before the report had warnings hold none: `?? []`.
        for (const w of configured?.warnings ?? []) {
          warn(w);
          log.warn('nested set-up', { step: 'configureNestedServer', warning: w });
        }
        // A resume creates the conversation again (the nested server reuses it) without the initial message or replay.
        await run(
          'createConversation',
          mode === 'start' ? 'creating the nested conversation' : 'reopening the nested conversation',
          () =>
            acts.createConversation({
              ...target,
              initialMessage: mode === 'start' ? input.initialMessage : undefined,
              replayJson: mode === 'start' ? input.replayJson : undefined,
              repository: input.repository,
              branch: input.branch,
              gitProvider: input.gitProvider,
              conversationInstructions: input.conversationInstructions,
              mcpConfig: input.mcpConfig,
            }),
        );
        const ready = await run('waitForReady', `waiting up to ${readyTimeoutMs} ms for the conversation to run`, () =>
          acts.waitForReady({ ...target, readyTimeoutMs }),
        );
        cursor = Math.max(cursor, ready.lastEventId);
      });
    } catch (err) {
      const cancelledByClose = closeRequested && isCancellation(err);
      const cause = describeCause(err);
      // Refused settings are refused before any slot is asked for: there is nothing to give back.
      if (step === 'acquireSession' && (NEVER_RETRY_INPUT as string[]).includes(cause.type)) compensations.splice(0);
      await CancellationScope.nonCancellable(async () => {
        setStep('compensating', `undoing ${compensations.map((c) => c.name).join(', ') || 'nothing'}`);
        for (const c of compensations) {
          try {
            await c.run();
          } catch (cerr) {
            warn(`compensation ${c.name} failed: ${describeCause(cerr).message}`);
          }
        }
      });
      if (mode === 'start') runtime = undefined;
      if (cancelledByClose && mode === 'start') {
        info.closedAt = new Date().toISOString();
        setStatus('STOPPED');
        setStep('done', `closed while starting${closeReason ? `: ${closeReason}` : ''}`);
        failPending(closedFailure());
        return 'closed';
      }
      if (mode === 'resume') {
        // Closed while resuming: the close path removes the (stopped) sandbox. Failed: stay PAUSED, resumable.
        info.pausedAt = new Date().toISOString();
        setStatus('PAUSED');
        if (cancelledByClose) return 'closed';
        info.lastError = { type: cause.type, step, message: cause.message };
        info.pauseReason = `resume failed at ${step}`;
        resumeFailure = ApplicationFailure.create({
          message: `resume failed: ${step} failed: ${cause.message}`,
          type: ErrorType.ResumeFailed,
          nonRetryable: true,
          details: [{ conversationId, step, causeType: cause.type }],
        });
        resumeFailures++;
        metrics.resumeFailures.add(1, { step });
        log.warn('resume failed', { step, error: cause });
        resumeRequested = false;
        setStep('paused', `resume failed at ${step}`);
        failPending(resumeFailure);
        return 'paused';
      }
      info.lastError = { type: cause.type, step, message: cause.message };
      startFailure = ApplicationFailure.create({
        message: `${step} failed: ${cause.message}`,
        type: ErrorType.StartFailed,
        nonRetryable: true,
        details: [{ conversationId, step, causeType: cause.type }],
      });
      metrics.startFailures.add(1, { step });
      log.warn('start failed', { step, error: cause });
      setStatus('ERROR');
      setStep('done', `${mode} failed at ${step}`);
      failPending(startFailure);
      await condition(allHandlersFinished);
      throw startFailure;
    } finally {
      bringUpScope = undefined;
    }
    info.readyAt = new Date().toISOString();
    if (mode === 'start') {
      info.timings = { ...info.timings, startToRunningMs: Date.parse(info.readyAt) - Date.parse(info.startedAt) };
      metrics.timeToReady.record(info.timings.startToRunningMs!);
    }
    info.pausedAt = undefined;
    info.pauseReason = undefined;
    resumeRequested = false;
    setStatus('RUNNING');
    setStep('running', 'waiting for messages');
    await touch(true);
    return 'running';
  };

  /**
   * Deliver the oldest undelivered message, at most once: the workflow counts the deliveries it scheduled for it, so
   * any delivery after the first (a retry after a sandbox recovery, or of any kind) looks for an earlier post of it
   * after the cursor taken before its first one.
   */
  const deliver = async (next: PendingMessage) => {
    setStep('running', `delivering message ${next.id}`);
    const target = { url: runtime!.url, sessionApiKey: runtime!.sessionApiKey, conversationId };
    try {
      if (next.lookFrom === undefined) {
        next.lookFrom = patched(DELIVERY_CURSOR_PATCH) ? (await acts.markDeliveryCursor(target)).newestEventId : cursor;
      }
      const mayHavePosted = next.posts > 0;
      next.posts++;
      const res = await acts.sendEvent({
        ...target,
        content: next.input.content,
        imageUrls: next.input.imageUrls,
        afterEventId: next.lookFrom,
        mayHavePosted,
      });
      cursor = Math.max(cursor, res.newestEventId ?? res.eventId ?? cursor);
      next.ack = { messageId: next.id, eventId: res.eventId };
      remember(acks, next.id, next.ack);
      info.messagesDelivered++;
      metrics.messagesDelivered.add(1);
    } catch (err) {
      const cause = describeCause(err);
      // The sandbox stopped answering, or another answers at its address with another key: its container was
      // restarted (e.g. with the Docker daemon) and got a new port. Bring it back as a resume would (which reads the
      // address and key again), then deliver this message again. Once per message.
      const lost = cause.type === ErrorType.NestedUnavailable || cause.type === ErrorType.NestedUnauthorized;
      if (lost && !next.recovered && patched(RECOVER_SANDBOX_PATCH)) {
        next.recovered = true;
        sandboxLost = cause.message;
        log.warn('sandbox unreachable; recovering it', { step: 'sendEvent', error: cause });
        return;
      }
      const failure = { type: cause.type, message: `sendMessage failed: ${cause.message}` };
      remember(failed, next.id, failure);
      next.error = deliveryFailure(failure);
    }
    next.done = true;
    queue.shift();
    setStep('running', 'waiting for messages');
    // After `done`, so the sender's update completes in this same workflow task, not one signal later.
    if (next.ack) await touch();
  };

  /** End the conversation in ERROR: status and search attribute, every waiting handler answered, the typed failure. */
  const endInError = async (
    step: string,
    cause: { type: string; message: string },
    failure: ApplicationFailure,
  ): Promise<never> => {
    info.lastError = { type: cause.type, step, message: cause.message };
    setStatus('ERROR');
    setStep('done', failure.message);
    failPending(failure);
    await condition(allHandlersFinished);
    throw failure;
  };

  /**
   * Give the slot back while pausing or closing. If that fails after its retries the conversation cannot be sure
   * it holds no slot: it removes its sandbox (nothing outlives it) and ends in ERROR, naming the cause.
   */
  const releaseOrFail = async (step: 'pausing' | 'closing'): Promise<true> => {
    try {
      await acts.releaseSession({ conversationId, userId });
      return true;
    } catch (err) {
      const cause = describeCause(err);
      log.warn('releaseSession failed', { step, error: cause });
      await CancellationScope.nonCancellable(() =>
        acts
          .removeRuntime({ conversationId })
          .catch((rerr) => warn(`removeRuntime failed: ${describeCause(rerr).message}`)),
      );
      return endInError(
        step,
        cause,
        ApplicationFailure.create({
          message: `${step} failed: releaseSession: ${cause.message}; check that the workflow ${userSessionsWorkflowId(userId)} runs and its worker polls the task queue`,
          type: ErrorType.SessionReleaseFailed,
          nonRetryable: true,
          details: [{ conversationId, step, causeType: cause.type }],
        }),
      );
    }
  };

  const pause = async (reason: string) => {
    setStep('pausing', reason);
    try {
      await acts.pauseRuntime({ conversationId });
    } catch (err) {
      const cause = describeCause(err);
      warn(`pause failed, still running: ${cause.message}`);
      pauseFailure = ApplicationFailure.create({
        message: `pause failed: ${cause.message}`,
        type: cause.type,
        nonRetryable: true,
      });
      pauseFailures++;
      pauseReason = undefined;
      setStep('running', 'waiting for messages');
      return;
    }
    if (!(await releaseOrFail('pausing'))) return;
    info.pausedAt = new Date().toISOString();
    info.pauseReason = reason;
    pauseReason = undefined;
    metrics.pauses.add(1);
    setStatus('PAUSED');
    setStep('paused', reason);
  };

  /**
   * Tell the user's slot registry this conversation is active (or now running); it may not exist, which is fine.
   * Fire and forget: waiting for the signal's delivery held the next message back by a server round trip. Runs
   * recorded before this change waited, and replay the same way (patch ASYNC_TOUCH_PATCH).
   */
  const touch = async (running?: boolean) => {
    const sent = getExternalWorkflowHandle(userSessionsWorkflowId(userId))
      .signal(touchSlotSignal, { conversationId, running })
      .catch(() => {
        /* no registry (slots disabled): nothing to tell */
      });
    if (!patched(ASYNC_TOUCH_PATCH)) await sent;
  };

  /** How long the idle timer waits next; a message, a pause or a resume set it back to the full idle timeout. */
  let idleLeftMs = idleTimeoutMs;
  /**
   * The idle timer ran out: idle only if the agent is not at work and wrote nothing lately. Returns how long to wait
   * still (0 or less: pause now). A nested server that cannot say counts as idle: pausing it loses nothing.
   */
  const stillIdle = async (): Promise<number> => {
    if (!runtime || !patched(IDLE_COUNTS_AGENT_PATCH)) return 0;
    try {
      const a = await acts.conversationActivity({
        url: runtime.url,
        sessionApiKey: runtime.sessionApiKey,
        conversationId,
      });
      if (a.agentState === 'running') return idleTimeoutMs;
      if (a.lastEventAgoMs !== undefined && a.lastEventAgoMs < idleTimeoutMs)
        return Math.max(1000, idleTimeoutMs - a.lastEventAgoMs);
    } catch (err) {
      log.warn('idle check failed; pausing', { error: describeCause(err) });
    }
    return 0;
  };

  const continueAsNewDue = () => {
    const wi = workflowInfo();
    return (
      wi.continueAsNewSuggested ||
      (input.continueAsNewAfterEvents !== undefined && wi.historyLength >= input.continueAsNewAfterEvents)
    );
  };

  // ---- a start input the schema refuses: nothing is created, every caller is told each bad field ----
  // Only a new conversation is judged: a continued run carries on with what its first run accepted, and a run begun
  // before the worker checked inputs replays as it ran (patch VALIDATE_INPUT_PATCH).
  if (invalid && !carried && patched(VALIDATE_INPUT_PATCH)) {
    startFailure = invalid;
    await endInError('input', { type: invalid.type ?? ErrorType.InvalidInput, message: invalid.message }, invalid);
  }

  // ---- start, or carry on from the previous run ----
  if (!carried) {
    metrics.starts.add(1);
    if ((await bringUp('start')) === 'closed') {
      await condition(allHandlersFinished);
      return publicInfo();
    }
  } else {
    setStatus(info.status);
    setStep(info.status === 'PAUSED' ? 'paused' : 'running', `continued as new (run ${info.runNumber})`);
  }

  // ---- life: deliver in order, pause when idle or asked, resume on demand, continue-as-new when long ----
  for (;;) {
    if (closeRequested) break;
    // Hand over to a new run: turn new messages away (the client sends them again, to the new run), deliver what was
    // accepted, let every handler finish, then continue as new with the state that matters.
    switching = continueAsNewDue();
    if (switching && !pending() && pauseReason === undefined && !resumeRequested) {
      if (allHandlersFinished()) {
        await continueAsNew<typeof StartConversation>(input, {
          info,
          runtime,
          tokens,
          acks: [...acks],
          failed: [...failed],
          cursor,
        });
      }
      await condition(
        () => allHandlersFinished() || pending() || closeRequested || pauseReason !== undefined || resumeRequested,
      );
      continue;
    }
    if (info.status === 'RUNNING') {
      if (sandboxLost !== undefined) {
        warn(`sandbox unreachable (${sandboxLost}); recovered it`);
        sandboxLost = undefined;
        metrics.recoveries.add(1);
        if ((await bringUp('resume')) === 'closed') break;
        continue;
      }
      if (pauseReason !== undefined) {
        await pause(pauseReason);
        continue;
      }
      if (pending()) {
        await deliver(queue[0]);
        continue;
      }
      const woke = await condition(
        () => closeRequested || pauseReason !== undefined || pending() || continueAsNewDue(),
        idleLeftMs,
      );
      idleLeftMs = woke ? idleTimeoutMs : await stillIdle();
      if (idleLeftMs <= 0) {
        idleLeftMs = idleTimeoutMs;
        requestPause(`idle for ${idleTimeoutMs} ms`);
      }
      continue;
    }
    // PAUSED: a message, a resume or a waitReady brings it back.
    pauseReason = undefined;
    if (pending() || resumeRequested) {
      const outcome = await bringUp('resume');
      if (outcome === 'closed') break;
      // Counted here, not in bringUp: a recovered sandbox (above) is no resume of a paused conversation.
      if (outcome === 'running') metrics.resumes.add(1);
      continue;
    }
    await condition(() => closeRequested || pending() || resumeRequested || continueAsNewDue());
  }

  // ---- close: stop the nested conversation, remove the runtime, release the session ----
  if (!terminal()) {
    const wasRunning = info.status === 'RUNNING';
    const closeFailure = await CancellationScope.nonCancellable(async () => {
      setStep('closing', `closing${closeReason ? `: ${closeReason}` : ''}`);
      if (wasRunning && runtime) {
        try {
          await acts.stopConversation({ url: runtime.url, sessionApiKey: runtime.sessionApiKey, conversationId });
        } catch (err) {
          warn(`stopConversation failed: ${describeCause(err).message}`);
        }
      }
      let removeFailure: { type: string; message: string } | undefined;
      try {
        await acts.removeRuntime({ conversationId });
      } catch (err) {
        removeFailure = describeCause(err);
      }
      // A paused conversation already gave its session back.
      if (wasRunning) await releaseOrFail('closing');
      // Nothing may resume a closed conversation later.
      if (patched(CLOSE_DELETES_SCHEDULES_PATCH)) {
        await acts
          .deleteResumeSchedules({ conversationId })
          .catch((err) => warn(`deleteResumeSchedules failed: ${describeCause(err).message}`));
      }
      return removeFailure;
    });
    failPending(closedFailure());
    if (closeFailure) {
      // The container may still exist: say so loudly rather than report a clean STOPPED.
      await endInError(
        'closing',
        { type: closeFailure.type, message: `removeRuntime: ${closeFailure.message}` },
        ApplicationFailure.create({
          message: `close failed: removeRuntime: ${closeFailure.message}; remove the container labelled nestor.conversation-id=${conversationId} by hand`,
          type: ErrorType.CloseFailed,
          nonRetryable: true,
          details: [{ conversationId, runtimeId: info.runtimeId }],
        }),
      );
    }
    info.closedAt = new Date().toISOString();
    setStatus('STOPPED');
    setStep('done', 'closed');
  }
  await condition(allHandlersFinished);
  return publicInfo();
}
