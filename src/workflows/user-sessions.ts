// UserSessions: one per user, the serial owner of that user's conversation slots. Starting (and resuming)
// conversations take a slot through the `acquire` update; STARTING ones count. Over the limit, the least recently
// active RUNNING conversation is paused with "too many conversations" and the new one waits for its slot.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { conversationWorkflowId } from '../shared/constants';
import { pauseSignal } from './definitions';

/** Reason a conversation is paused to make room, as OpenHands' AGENT_ERROR$TOO_MANY_CONVERSATIONS. */
export const TOO_MANY_CONVERSATIONS = 'too many conversations';
/** How long to wait for an evicted conversation to pause before choosing again. */
const EVICTION_WAIT_MS = 60_000;

export function userSessionsWorkflowId(userId: string): string {
  return `user-sessions-${userId}`;
}

export interface Slot {
  conversationId: string;
  status: 'STARTING' | 'RUNNING';
  lastActiveAt: number;
  evicting?: boolean;
}

export interface UserSessionsInput {
  userId: string;
  /** Most conversations (STARTING or RUNNING) at once. */
  limit: number;
  slots?: Slot[];
}

export interface SlotGrant {
  conversationId: string;
  /** Conversations paused to make room. */
  evicted: string[];
}

export const acquireSlotUpdate = defineUpdate<SlotGrant, [{ conversationId: string; limit?: number }]>('acquire');
export const releaseSlotSignal = defineSignal<[{ conversationId: string }]>('release');
/** Marks activity (a delivered message) or readiness, so eviction picks the least recently active. */
export const touchSlotSignal = defineSignal<[{ conversationId: string; running?: boolean }]>('touch');
export const slotsQuery = defineQuery<Slot[]>('slots');

export async function UserSessions(input: UserSessionsInput): Promise<void> {
  const slots = new Map<string, Slot>((input.slots ?? []).map((s) => [s.conversationId, s]));
  let limit = input.limit;
  let acquiring = false;

  const victim = () =>
    [...slots.values()].filter((s) => s.status === 'RUNNING' && !s.evicting).sort((a, b) => a.lastActiveAt - b.lastActiveAt)[0];
  const evicting = () => [...slots.values()].some((s) => s.evicting);

  setHandler(slotsQuery, () => [...slots.values()]);
  setHandler(releaseSlotSignal, ({ conversationId }) => {
    slots.delete(conversationId);
  });
  setHandler(touchSlotSignal, ({ conversationId, running }) => {
    const s = slots.get(conversationId);
    if (!s) return;
    s.lastActiveAt = Date.now();
    if (running) s.status = 'RUNNING';
  });
  setHandler(acquireSlotUpdate, async ({ conversationId, limit: requested }) => {
    // One acquire at a time: the limit is enforced by a single serial owner.
    await condition(() => !acquiring);
    acquiring = true;
    try {
      if (requested !== undefined) limit = requested;
      const evicted: string[] = [];
      const mine = slots.get(conversationId);
      if (mine) {
        mine.lastActiveAt = Date.now();
        return { conversationId, evicted };
      }
      while (slots.size >= limit) {
        const v = victim();
        if (v && !evicting()) {
          v.evicting = true;
          evicted.push(v.conversationId);
          try {
            await getExternalWorkflowHandle(conversationWorkflowId(v.conversationId)).signal(pauseSignal, { reason: TOO_MANY_CONVERSATIONS });
          } catch {
            slots.delete(v.conversationId); // the conversation is gone: its slot with it
          }
        }
        const freed = await condition(() => slots.size < limit || (!evicting() && victim() !== undefined), EVICTION_WAIT_MS);
        // A victim that did not pause in time (its pause failed) may be chosen again.
        if (!freed) for (const s of slots.values()) s.evicting = false;
      }
      slots.set(conversationId, { conversationId, status: 'STARTING', lastActiveAt: Date.now() });
      return { conversationId, evicted };
    } finally {
      acquiring = false;
    }
  });

  await condition(() => workflowInfo().continueAsNewSuggested && !acquiring);
  await condition(allHandlersFinished);
  await continueAsNew<typeof UserSessions>({ userId: input.userId, limit, slots: [...slots.values()] });
}
