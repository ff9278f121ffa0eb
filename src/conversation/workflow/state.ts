// The conversation's state in one class: what it holds (status, sandbox, tokens, messages), what has been asked of
// it (close, pause, resume), and the named operations and transitions that change it. The workflow (index.ts) drives
// it; the handlers only ask.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type CancellationScope,
} from '@temporalio/workflow';
import type { CreatedRuntime } from '../activities/runtime';
import type { NestedTarget } from '../activities/nested';
import { ConversationStatusKey, RECENT_MESSAGE_IDS, type ConversationStatus } from '../../shared/constants';
import type { AgentLoopInfo, MessageAck, ProviderTokens, SendMessageInput } from '../../shared/schemas';
import { MAX_WARNINGS } from '../../defaults';
import { closedFailure, deliveryFailure, type Cause, type DeliveryFailure } from './failures';

export type { DeliveryFailure };

/** A message accepted by its update and waiting for its delivery. */
export interface PendingMessage {
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

/** The last failure of one kind and how many there were: a waiter fails when one happens after it began waiting. */
export class FailureLog {
  private last?: ApplicationFailure;
  private count = 0;

  record(failure: ApplicationFailure): void {
    this.last = failure;
    this.count++;
  }

  /** A mark to compare against later with `since`. */
  mark(): number {
    return this.count;
  }

  /** The newest failure recorded after `mark`, if any. */
  since(mark: number): ApplicationFailure | undefined {
    return this.count > mark ? this.last : undefined;
  }
}

/** Keep `value` under `key`, forgetting the oldest once more than RECENT_MESSAGE_IDS are kept. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > RECENT_MESSAGE_IDS) map.delete(map.keys().next().value!);
}

export class Conversation {
  readonly info: AgentLoopInfo;
  runtime?: CreatedRuntime;
  tokens?: ProviderTokens;
  /** Newest event ID known to precede every message still to be delivered. */
  cursor: number;
  /** Recently delivered message IDs and their acknowledgements: the same ID again gets the same answer. */
  readonly acks: Map<string, MessageAck>;
  /** Recent message IDs whose delivery failed: the same ID never goes again, it gets the same failure. */
  readonly failed: Map<string, DeliveryFailure>;
  /** Messages still to deliver, oldest first: delivered ones move to `acks`, failed ones are dropped. */
  readonly queue: PendingMessage[] = [];
  /** Set when the start failed: every waiter gets it. */
  startFailure?: ApplicationFailure;
  readonly resumeFailures = new FailureLog();
  /** A pause update whose pause failed is answered with the failure instead of left waiting. */
  readonly pauseFailures = new FailureLog();
  closeRequested = false;
  closeReason?: string;
  pauseReason?: string;
  resumeRequested = false;
  /** Set when the sandbox stopped answering a delivery: the loop brings it back before anything else. */
  sandboxLost?: string;
  /** Set when the sandbox's host did not pick up a step (with the step): the loop pauses before anything else. */
  hostLost?: { step: string; cause: Cause };
  /** True while this run is handing over to the next: new messages are turned away for the client to retry there. */
  switching = false;
  /** The scope of the bring-up in progress (start or resume), cancelled by a close. */
  bringUpScope?: CancellationScope;
  /** The status last logged: each change is logged once (a continued run has logged its status already). */
  private loggedStatus?: ConversationStatus;

  constructor(
    readonly conversationId: string,
    readonly userId: string,
    initialTokens: ProviderTokens | undefined,
    carried?: CarriedState,
  ) {
    this.info = carried?.info ?? {
      conversationId,
      userId,
      status: 'STARTING',
      startedAt: new Date(workflowInfo().startTime).toISOString(),
      messagesDelivered: 0,
      warnings: [],
    };
    this.info.runNumber = (this.info.runNumber ?? 0) + 1;
    this.runtime = carried?.runtime;
    this.tokens = carried?.tokens ?? initialTokens;
    this.cursor = carried?.cursor ?? -1;
    this.acks = new Map(carried?.acks ?? []);
    this.failed = new Map(carried?.failed ?? []);
    this.loggedStatus = carried ? this.info.status : undefined;
    this.info.warnings = this.info.warnings.slice(-MAX_WARNINGS);
  }

  /** The status, logged once per change and written to the search attribute every time (as runs always did). */
  setStatus(status: ConversationStatus): void {
    if (status !== this.loggedStatus)
      log.info(`conversation ${status}`, { status, step: this.info.step ?? 'acquireSession' });
    this.loggedStatus = status;
    this.info.status = status;
    upsertSearchAttributes([{ key: ConversationStatusKey, value: status }]);
  }

  /** The step, and what it is doing, as the UI's current details. */
  setStep(step: AgentLoopInfo['step'], details: string): void {
    this.info.step = step;
    setCurrentDetails(`**${this.info.status}** · ${step}: ${details}`);
  }

  /**
   * Where the nested steps send their calls: the sandbox's address, key and protocol (absent for V0, as in every
   * history recorded before V1).
   */
  nestedTarget(): NestedTarget {
    const r = this.runtime!;
    return {
      url: r.url,
      sessionApiKey: r.sessionApiKey,
      conversationId: this.conversationId,
      ...(r.protocol === 'v1' && { protocol: r.protocol }),
    };
  }

  terminal(): boolean {
    return this.info.status === 'STOPPED' || this.info.status === 'ERROR';
  }

  pending(): boolean {
    return this.queue.length > 0;
  }

  requestClose(reason?: string): void {
    if (this.closeRequested) return;
    this.closeRequested = true;
    this.closeReason = reason;
    // Closing while starting or resuming interrupts the step in flight; compensations then tear down what exists.
    this.bringUpScope?.cancel();
  }

  requestPause(reason: string): void {
    if (!this.closeRequested && !this.terminal()) this.pauseReason ??= reason;
  }

  closedFailure(): ApplicationFailure {
    return closedFailure(this.conversationId, this.info.status === 'ERROR');
  }

  rejectIfClosed(): void {
    if (this.closeRequested || this.terminal()) throw this.closedFailure();
  }

  /** The status as callers see it: never the session API key. */
  publicInfo(): AgentLoopInfo {
    return { ...this.info, sessionApiKey: undefined };
  }

  /**
   * Note something the conversation runs without or went through. Kept to the newest MAX_WARNINGS, each once (the
   * oldest go first), so a long life does not grow its status, and what continue-as-new carries, without bound.
   */
  warn(w: string): void {
    this.info.warnings = [...this.info.warnings.filter((x) => x !== w), w].slice(-MAX_WARNINGS);
  }

  /** Accept a message for delivery, or find the one already accepted under its ID. */
  enqueue(id: string, input: SendMessageInput): PendingMessage {
    let item = this.queue.find((m) => m.id === id);
    if (!item) {
      item = { id, input, done: false, posts: 0 };
      this.queue.push(item);
    }
    return item;
  }

  /** The oldest message was delivered: remembered under its ID, its sender answered. */
  delivered(m: PendingMessage, eventId: number | undefined, nestedEventId?: string): void {
    m.ack = { messageId: m.id, eventId, ...(nestedEventId && { nestedEventId }) };
    remember(this.acks, m.id, m.ack);
    this.info.messagesDelivered++;
    this.finish(m);
  }

  /** The oldest message's delivery failed: remembered under its ID, its sender answered with the failure. */
  deliveryFailed(m: PendingMessage, failure: DeliveryFailure): void {
    remember(this.failed, m.id, failure);
    m.error = deliveryFailure(failure);
    this.finish(m);
  }

  private finish(m: PendingMessage): void {
    m.done = true;
    this.queue.shift();
  }

  /** Answer every waiting message with `failure` (the conversation ends or cannot deliver them). */
  failPending(failure: ApplicationFailure): void {
    for (const m of this.queue.splice(0)) {
      m.error = failure;
      m.done = true;
    }
  }

  /** RUNNING after a start or resume: no pause pending from before, the resume asked for is done. */
  becameRunning(): void {
    this.info.pausedAt = undefined;
    this.info.pauseReason = undefined;
    this.resumeRequested = false;
    this.setStatus('RUNNING');
    this.setStep('running', 'waiting for messages');
  }

  /** PAUSED: the sandbox is stopped and kept. */
  becamePaused(reason: string): void {
    this.info.pausedAt = new Date().toISOString();
    this.info.pauseReason = reason;
    this.pauseReason = undefined;
    this.setStatus('PAUSED');
    this.setStep('paused', reason);
  }

  /**
   * PAUSED because the sandbox's host stopped picking up its steps: nothing there answers, so RUNNING would be a lie.
   * The cause stays as lastError; the sandbox and its data stay on that host for a resume once it is back.
   */
  pausedByLostHost(step: string, cause: Cause): void {
    this.hostLost = undefined;
    this.info.lastError = { type: cause.type, step, message: cause.message };
    this.becamePaused(`sandbox host ${this.info.sandboxHost} lost`);
  }

  /** STOPPED: closed, nothing left. */
  becameStopped(details: string): void {
    this.info.closedAt = new Date().toISOString();
    this.setStatus('STOPPED');
    this.setStep('done', details);
  }

  /** End in ERROR: status and search attribute, every waiting handler answered, the typed failure thrown. */
  async endInError(step: string, cause: Cause, failure: ApplicationFailure): Promise<never> {
    this.info.lastError = { type: cause.type, step, message: cause.message };
    this.setStatus('ERROR');
    this.setStep('done', failure.message);
    this.failPending(failure);
    await condition(allHandlersFinished);
    throw failure;
  }

  /** What the next run needs (continue-as-new). */
  toCarried(): CarriedState {
    return {
      info: this.info,
      runtime: this.runtime,
      tokens: this.tokens,
      acks: [...this.acks],
      failed: [...this.failed],
      cursor: this.cursor,
    };
  }
}
