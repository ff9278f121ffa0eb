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
  currentUpdateInfo,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CreatedRuntime } from '../activities/runtime';
import { ConversationStatusKey, MAX_MESSAGE_BYTES, type ConversationStatus, type StartStep } from '../shared/constants';
import { ErrorType } from '../shared/errors';
import type { AgentLoopInfo, MessageAck, ProviderTokens, SendMessageInput, StartConversationInput } from '../shared/schemas';
import { closeSignal, closeUpdate, sendMessageUpdate, statusQuery, waitReadyUpdate } from './definitions';

/** Bound on the container answering /alive. @default 120 s (OpenHands' Docker runtime waits 120 s). */
export const DEFAULT_ALIVE_TIMEOUT_MS = 120_000;
/** Bound on the nested conversation becoming ready. @default 120 s */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;

const NEVER_RETRY_INPUT = [ErrorType.InvalidInput, ErrorType.InvalidSettings, ErrorType.NestedUnauthorized, ErrorType.NestedBadRequest];

/** Each step's timeouts and retries, named so a reader sees every bound in one place; each activity gets a UI summary. */
function stepActivities(aliveTimeoutMs: number, readyTimeoutMs: number) {
  const SESSION: ActivityOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
  };
  const RUNTIME: ActivityOptions = {
    startToCloseTimeout: aliveTimeoutMs + 60_000,
    heartbeatTimeout: '20 seconds',
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
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRY_INPUT },
  };
  const READY: ActivityOptions = {
    startToCloseTimeout: readyTimeoutMs + 30_000,
    heartbeatTimeout: '20 seconds',
    // Retried only when the worker died mid-poll; exhausting the bound (NotReady) is final.
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [...NEVER_RETRY_INPUT, ErrorType.NotReady] },
  };
  const CLEANUP: ActivityOptions = {
    startToCloseTimeout: '60 seconds',
    // Cleanup must outlast a Docker hiccup (about 4 minutes of tries), but not forever.
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [ErrorType.InvalidInput] },
  };
  const one = <K extends keyof Activities>(name: K, options: ActivityOptions, summary: string): Activities[K] =>
    proxyActivities<Activities>({ ...options, summary: `${name}: ${summary}` })[name];
  return {
    acquireSession: one('acquireSession', SESSION, 'validate agent, model and key'),
    createRuntime: one('createRuntime', RUNTIME, 'create or adopt the container, wait for /alive'),
    refreshTokens: one('refreshTokens', TOKENS, 'refresh git tokens expiring within 4 h'),
    configureNestedServer: one('configureNestedServer', NESTED, 'settings, git providers, secrets, experiment config'),
    createConversation: one('createConversation', NESTED, 'POST /api/conversations'),
    waitForReady: one('waitForReady', READY, 'poll until the nested conversation runs'),
    sendEvent: one('sendEvent', NESTED, 'deliver a user message'),
    stopConversation: one('stopConversation', CLEANUP, 'stop the nested agent loop'),
    removeRuntime: one('removeRuntime', CLEANUP, 'remove the container'),
    releaseSession: one('releaseSession', CLEANUP, 'give the session back'),
  };
}

interface PendingMessage {
  id: string;
  input: SendMessageInput;
  ack?: MessageAck;
  error?: ApplicationFailure;
  done: boolean;
}

/** Length of a string in UTF-8 bytes, without TextEncoder (not guaranteed in the workflow sandbox). */
function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The cause of a failed step, as a type name and a message, without stack or payloads. */
function describeCause(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

export async function StartConversation(input: StartConversationInput): Promise<AgentLoopInfo> {
  const { conversationId, userId } = input;
  const aliveTimeoutMs = input.timeouts?.aliveTimeoutMs ?? DEFAULT_ALIVE_TIMEOUT_MS;
  const readyTimeoutMs = input.timeouts?.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const acts = stepActivities(aliveTimeoutMs, readyTimeoutMs);

  const info: AgentLoopInfo = {
    conversationId,
    userId,
    status: 'STARTING',
    startedAt: new Date(workflowInfo().startTime).toISOString(),
    messagesDelivered: 0,
    warnings: [],
  };
  let runtime: CreatedRuntime | undefined;
  let startFailure: ApplicationFailure | undefined;
  let closeRequested = false;
  let closeReason: string | undefined;
  const queue: PendingMessage[] = [];
  const startScope = new CancellationScope();

  const setStatus = (status: ConversationStatus) => {
    info.status = status;
    upsertSearchAttributes([{ key: ConversationStatusKey, value: status }]);
  };
  const setStep = (step: AgentLoopInfo['step'], details: string) => {
    info.step = step;
    setCurrentDetails(`**${info.status}** · ${step}: ${details}`);
  };
  const requestClose = (reason?: string) => {
    if (closeRequested) return;
    closeRequested = true;
    closeReason = reason;
    // Closing while starting interrupts the step in flight; compensations then tear down what exists.
    if (info.status === 'STARTING') startScope.cancel();
  };
  const closedFailure = () =>
    ApplicationFailure.create({ message: `conversation ${conversationId} is ${info.status === 'ERROR' ? 'failed' : 'closed'}`, type: ErrorType.ConversationClosed, nonRetryable: true });

  // All handlers before the first await: update-with-start delivers its update before the main code proceeds.
  setHandler(statusQuery, () => ({ ...info, sessionApiKey: undefined }));
  setHandler(waitReadyUpdate, async () => {
    await condition(() => info.status !== 'STARTING');
    if (info.status === 'RUNNING') return { ...info, sessionApiKey: runtime?.sessionApiKey };
    throw startFailure ?? closedFailure();
  });
  setHandler(
    sendMessageUpdate,
    async (msg) => {
      const item: PendingMessage = { id: msg.messageId ?? currentUpdateInfo()?.id ?? uuid4(), input: msg, done: false };
      queue.push(item);
      await condition(() => item.done);
      if (item.error) throw item.error;
      return item.ack!;
    },
    {
      validator: (msg) => {
        if (typeof msg?.content !== 'string' || msg.content.trim() === '') {
          throw ApplicationFailure.nonRetryable('content: must be a non-empty string', ErrorType.InvalidInput);
        }
        if (utf8Length(msg.content) > MAX_MESSAGE_BYTES) {
          throw ApplicationFailure.nonRetryable(`content: must be at most ${MAX_MESSAGE_BYTES} bytes`, ErrorType.InvalidInput);
        }
        if (closeRequested || info.status === 'STOPPED' || info.status === 'ERROR') throw closedFailure();
      },
    },
  );
  setHandler(closeUpdate, async (c) => {
    requestClose(c?.reason);
    await condition(() => info.status === 'STOPPED' || info.status === 'ERROR');
    return { ...info, sessionApiKey: undefined };
  });
  setHandler(closeSignal, (c) => requestClose(c?.reason));

  // ---- start: six steps, compensations pushed as each resource comes to exist ----
  const compensations: Array<{ name: string; run: () => Promise<unknown> }> = [];
  let step: StartStep = 'acquireSession';
  const run = async <T>(s: StartStep, details: string, fn: () => Promise<T>): Promise<T> => {
    step = s;
    setStep(s, details);
    return fn();
  };
  try {
    await startScope.run(async () => {
      await run('acquireSession', 'validating settings', () =>
        acts.acquireSession({ conversationId, userId, settings: input.settings }),
      );
      compensations.unshift({ name: 'releaseSession', run: () => acts.releaseSession({ conversationId, userId }) });

      // Pushed before the create: a create that fails half-way may still have made the container.
      compensations.unshift({ name: 'removeRuntime', run: () => acts.removeRuntime({ conversationId }) });
      const sandbox = input.settings.sandbox;
      runtime = await run('createRuntime', 'waiting for the container to answer /alive', () =>
        acts.createRuntime({
          conversationId,
          userId,
          env: sandbox?.env,
          cpus: sandbox?.cpus,
          memoryMb: sandbox?.memoryMb,
          pidsLimit: sandbox?.pidsLimit,
          aliveTimeoutMs,
        }),
      );
      info.runtimeId = runtime.runtimeId;
      info.timings = { runtimeReadyMs: runtime.readyMs };
      info.url = `${runtime.url}/api/conversations/${conversationId}`;
      upsertMemo({ runtimeId: runtime.runtimeId, runtimeAdopted: runtime.adopted });

      let tokens: ProviderTokens | undefined = input.gitProviderTokens;
      if (tokens && Object.keys(tokens).length > 0) {
        const refreshed = await run('refreshTokens', 'refreshing git provider tokens', () => acts.refreshTokens({ tokens: tokens! }));
        tokens = refreshed.tokens;
        info.warnings.push(...refreshed.warnings);
        for (const w of refreshed.warnings) log.warn('token refresh', { conversationId, warning: w });
      } else {
        step = 'refreshTokens';
      }

      const target = { url: runtime.url, sessionApiKey: runtime.sessionApiKey, conversationId };
      await run('configureNestedServer', 'storing settings, git providers and secrets', () =>
        acts.configureNestedServer({ ...target, settings: input.settings, providerTokens: tokens, customSecrets: input.customSecrets }),
      );
      await run('createConversation', 'creating the nested conversation', () =>
        acts.createConversation({
          ...target,
          initialMessage: input.initialMessage,
          replayJson: input.replayJson,
          repository: input.repository,
          branch: input.branch,
          gitProvider: input.gitProvider,
          conversationInstructions: input.conversationInstructions,
          mcpConfig: input.mcpConfig,
        }),
      );
      await run('waitForReady', `waiting up to ${readyTimeoutMs} ms for the conversation to run`, () =>
        acts.waitForReady({ ...target, readyTimeoutMs }),
      );
    });
  } catch (err) {
    const cancelledByClose = closeRequested && isCancellation(err);
    const cause = describeCause(err);
    await CancellationScope.nonCancellable(async () => {
      setStep('compensating', `undoing ${compensations.map((c) => c.name).join(', ') || 'nothing'}`);
      for (const c of compensations) {
        try {
          await c.run();
        } catch (cerr) {
          info.warnings.push(`compensation ${c.name} failed: ${describeCause(cerr).message}`);
        }
      }
    });
    runtime = undefined;
    if (cancelledByClose) {
      info.closedAt = new Date().toISOString();
      setStatus('STOPPED');
      setStep('done', `closed while starting${closeReason ? `: ${closeReason}` : ''}`);
      failPending(closedFailure());
      await condition(allHandlersFinished);
      return { ...info };
    }
    info.lastError = { type: cause.type, step, message: cause.message };
    startFailure = ApplicationFailure.create({
      message: `${step} failed: ${cause.message}`,
      type: ErrorType.StartFailed,
      nonRetryable: true,
      details: [{ conversationId, step, causeType: cause.type }],
    });
    setStatus('ERROR');
    setStep('done', `start failed at ${step}`);
    failPending(startFailure);
    await condition(allHandlersFinished);
    throw startFailure;
  }

  // ---- running: deliver messages in order, one at a time, until closed ----
  const target = { url: runtime!.url, sessionApiKey: runtime!.sessionApiKey, conversationId };
  info.readyAt = new Date().toISOString();
  info.timings = { ...info.timings, startToRunningMs: Date.parse(info.readyAt) - Date.parse(info.startedAt) };
  setStatus('RUNNING');
  setStep('running', 'waiting for messages');
  for (;;) {
    await condition(() => closeRequested || queue.some((m) => !m.done));
    const next = queue.find((m) => !m.done);
    if (!next) break; // closeRequested and nothing left to deliver
    setStep('running', `delivering message ${next.id}`);
    try {
      const res = await acts.sendEvent({ ...target, content: next.input.content, imageUrls: next.input.imageUrls });
      next.ack = { messageId: next.id, eventId: res.eventId };
      info.messagesDelivered++;
    } catch (err) {
      const cause = describeCause(err);
      next.error = ApplicationFailure.create({ message: `sendMessage failed: ${cause.message}`, type: cause.type, nonRetryable: true });
    }
    next.done = true;
    setStep('running', 'waiting for messages');
  }

  // ---- close: stop the nested conversation, remove the runtime, release the session ----
  const closeFailure = await CancellationScope.nonCancellable(async () => {
    setStep('closing', `closing${closeReason ? `: ${closeReason}` : ''}`);
    try {
      await acts.stopConversation(target);
    } catch (err) {
      info.warnings.push(`stopConversation failed: ${describeCause(err).message}`);
    }
    try {
      await acts.removeRuntime({ conversationId });
    } catch (err) {
      return describeCause(err);
    } finally {
      await acts.releaseSession({ conversationId, userId });
    }
    return undefined;
  });
  if (closeFailure) {
    // The container may still exist: say so loudly rather than report a clean STOPPED.
    info.lastError = { type: closeFailure.type, step: 'closing', message: `removeRuntime: ${closeFailure.message}` };
    setStatus('ERROR');
    setStep('done', 'close failed: the runtime may still exist');
    await condition(allHandlersFinished);
    throw ApplicationFailure.create({
      message: `close failed: removeRuntime: ${closeFailure.message}; remove the container labelled nestor.conversation-id=${conversationId} by hand`,
      type: ErrorType.CloseFailed,
      nonRetryable: true,
      details: [{ conversationId, runtimeId: info.runtimeId }],
    });
  }
  info.closedAt = new Date().toISOString();
  setStatus('STOPPED');
  setStep('done', 'closed');
  await condition(allHandlersFinished);
  return { ...info };

  function failPending(failure: ApplicationFailure) {
    for (const m of queue) {
      if (!m.done) {
        m.error = failure;
        m.done = true;
      }
    }
  }
}
