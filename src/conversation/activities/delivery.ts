// conversationActivity / markDeliveryCursor / sendEvent: what delivering a message, at most once, and the idle check
// ask of the nested agent server.
import { DEFAULT_NESTED_TIMEOUT_MS, isUserMessage, type NestedEvent } from '../../nested/client';
import { attempt, cancellationSignal, sleep } from '../../shared/activity-context';
import { ErrorType, NestorError } from '../../errors';
import { client, type NestedDeps, type NestedTarget } from './nested-target';
import { activityV1, markCursorV1, sendV1 } from './agent-server';

export interface SendEventInput extends NestedTarget {
  content: string;
  imageUrls?: string[];
  /**
   * Newest event ID the workflow knew before it first tried to deliver this message: an earlier post of it, if any,
   * is after this. V1: the number of user messages the conversation held then.
   */
  afterEventId: number;
  /**
   * The workflow scheduled a delivery of this message before (an earlier activity, before a sandbox recovery or a
   * caller's retry): it may have been posted, so look for it before posting. Retries of one activity look anyway.
   */
  mayHavePosted?: boolean;
}

export interface SentEvent {
  eventId?: number;
  /** The V1 agent server's ID of the message event (a UUID). */
  nestedEventId?: string;
  /** True when an earlier post of this message was found and it was not posted again. */
  recovered: boolean;
  /** Newest event ID this delivery saw: the workflow's next cursor, so later looks skip what the agent said since. */
  newestEventId?: number;
}

/** First poll after this; then ×1.5 up to POLL_MAX_MS. Short so readiness is noticed quickly. */
export function createDeliveryActivities(deps: NestedDeps) {
  return {
    /**
     * What the conversation itself has been doing, for the idle timer: how long ago its newest event was (the agent's
     * too, not only the user's messages) and the agent's latest state. OpenHands' event timestamps carry no zone: the
     * sandbox runs in UTC.
     */
    async conversationActivity(input: NestedTarget): Promise<{ lastEventAgoMs?: number; agentState?: string }> {
      if (input.protocol === 'v1') return activityV1(input, deps);
      const page = await client(input, deps, cancellationSignal()).getEvents(input.conversationId, {
        reverse: true,
        limit: 20,
      });
      const stamp = page.events[0]?.timestamp;
      const at = stamp ? Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(stamp) ? stamp : `${stamp}Z`) : NaN;
      const state = page.events.find((e) => e.observation === 'agent_state_changed')?.extras?.agent_state;
      return {
        lastEventAgoMs: Number.isFinite(at) ? Math.max(0, Date.now() - at) : undefined,
        agentState: typeof state === 'string' ? state : undefined,
      };
    },

    /**
     * The newest event ID, taken just before a message's first delivery: an earlier post of that message can only be
     * after it, and another writer's message before it is never taken for ours. Run as a local activity (no round trip
     * through the server).
     */
    async markDeliveryCursor(input: NestedTarget): Promise<{ newestEventId: number }> {
      if (input.protocol === 'v1') return markCursorV1(input, deps);
      return { newestEventId: await client(input, deps, cancellationSignal()).newestEventId(input.conversationId) };
    },

    /**
     * Post one user message, at most once, and report the event ID the nested server gave it. The nested server keeps
     * no ID of ours with an event, so a post whose outcome is unknown (an earlier attempt or delivery the workflow
     * knows of) is looked for before posting again: the first user message with the same content and images after
     * the cursor marked before its first delivery (markDeliveryCursor). Not found at once, it is given `settleMs` to land (a post slower than its caller) and looked
     * for again. What remains ambiguous is in docs/lifecycle.md (messages, exactly once).
     */
    async sendEvent(input: SendEventInput): Promise<SentEvent> {
      if (input.protocol === 'v1') return sendV1(input, deps);
      const c = client(input, deps, cancellationSignal());
      const isMine = (e: NestedEvent) => isUserMessage(e, input.content, input.imageUrls);
      let before: number | undefined;
      if (input.mayHavePosted || attempt() > 1) {
        const look = async () => {
          const r = await c.findAfter(input.conversationId, input.afterEventId, isMine);
          before = r.newestId;
          return r.found;
        };
        const earlier =
          (await look()) ??
          (await sleep(deps.settleMs ?? deps.requestTimeoutMs ?? DEFAULT_NESTED_TIMEOUT_MS).then(look));
        if (earlier) return { eventId: earlier.id, recovered: true, newestEventId: before };
      }
      // Only what comes after the mark can be our post: another writer's identical message before it is not ours.
      before ??= input.afterEventId;
      try {
        await c.postEvent(input.conversationId, {
          action: 'message',
          args: { content: input.content, image_urls: input.imageUrls ?? [], file_urls: [], wait_for_response: false },
        });
      } catch (err) {
        // The real server answers a plain-text 500 when the conversation is not running there (e.g. its sandbox was
        // restarted): retrying the post cannot help, so say so at once and let the workflow bring it back (a resume).
        if (err instanceof NestorError && err.details.status === 500) {
          const status = await c.getConversation(input.conversationId).then(
            (i) => i?.status ?? 'unknown',
            () => undefined,
          );
          if (status !== undefined && status !== 'RUNNING') {
            throw new NestorError(
              ErrorType.NestedUnavailable,
              `${err.message}: the nested conversation is ${status}, not running`,
              false,
              err.details,
            );
          }
        }
        throw err;
      }
      const after = await c.findAfter(input.conversationId, before, isMine);
      return { eventId: after.found?.id, recovered: false, newestEventId: after.newestId };
    },
  };
}
