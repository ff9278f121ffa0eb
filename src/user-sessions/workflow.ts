// UserSessions: one per user, the serial owner of that user's conversation slots. Starting (and resuming)
// conversations take a slot through the `acquire` update; STARTING ones count. At the limit, slots are first checked
// against their conversations' workflows (a closed, terminated or paused one holds none: self-healing), then the
// least recently active RUNNING conversation is paused with "too many conversations" and the new one waits for its
// slot. A registry started afresh (e.g. after being terminated) finds its slots from visibility.
import {
  allHandlersFinished,
  log,
  patched,
  proxyActivities,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { conversationWorkflowId } from '../shared/constants';
import type { Activities } from '../activities';
import { pauseSignal } from '../conversation/messages';
import {
  acquireSlotUpdate,
  releaseSlotSignal,
  slotsQuery,
  touchSlotSignal,
  type Slot,
  type SlotGrant,
  type UserSessionsInput,
} from './messages';

/** Patch ID: slots are checked against their conversations at the limit, and rebuilt when the registry starts afresh. */
export const SELF_HEALING_SLOTS_PATCH = 'self-healing-slots';

const { checkSlots, listLiveConversations } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** Reason a conversation is paused to make room, as OpenHands' AGENT_ERROR$TOO_MANY_CONVERSATIONS. */
export const TOO_MANY_CONVERSATIONS = 'too many conversations';
/** How long to wait for an evicted conversation to pause before choosing again. */
const EVICTION_WAIT_MS = 60_000;
/** How often a waiting acquire checks the slots against their conversations again. */
const HEAL_INTERVAL_MS = 5_000;

export async function UserSessions(input: UserSessionsInput): Promise<void> {
  const slots = new Map<string, Slot>((input.slots ?? []).map((s) => [s.conversationId, s]));
  let limit = input.limit;
  let acquiring = false;
  /** Whether this run heals its slots (runs recorded before it did not). */
  let healingOn: boolean | undefined;
  const healing = () => (healingOn ??= patched(SELF_HEALING_SLOTS_PATCH));
  /** False until a registry started afresh has found the user's live conversations. */
  let rebuilt = input.slots !== undefined;

  const victim = () =>
    [...slots.values()]
      .filter((s) => s.status === 'RUNNING' && !s.evicting)
      .sort((a, b) => a.lastActiveAt - b.lastActiveAt)[0];
  const evicting = () => [...slots.values()].some((s) => s.evicting);

  setHandler(slotsQuery, () => [...slots.values()]);
  setHandler(releaseSlotSignal, ({ conversationId }) => {
    slots.delete(conversationId);
  });
  setHandler(touchSlotSignal, ({ conversationId, running }) => {
    const s = slots.get(conversationId);
    // A conversation running on a slot this registry does not know (granted before it was started afresh) holds one.
    if (!s && running && healing())
      slots.set(conversationId, { conversationId, status: 'RUNNING', lastActiveAt: Date.now() });
    if (!s) return;
    s.lastActiveAt = Date.now();
    if (running) s.status = 'RUNNING';
  });
  /** Drop the slots whose conversations no longer hold one. */
  const heal = async () => {
    const others = [...slots.keys()];
    if (others.length === 0) return;
    const { stale } = await checkSlots({ conversationIds: others });
    for (const s of stale) {
      slots.delete(s.conversationId);
      log.warn('stale slot dropped', { conversationId: s.conversationId, why: s.why });
    }
  };

  setHandler(acquireSlotUpdate, async ({ conversationId, limit: requested }) => {
    await condition(() => rebuilt);
    // A conversation that holds a slot (e.g. bringing back a sandbox it lost) is answered at once: it must never
    // queue behind an acquire that waits for it to pause.
    const held = slots.get(conversationId);
    if (held) {
      held.lastActiveAt = Date.now();
      return { conversationId, evicted: [] };
    }
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
      const heals = healing();
      let waited = 0;
      while (slots.size >= limit) {
        if (heals) {
          await heal();
          if (slots.size < limit) break;
        }
        const v = victim();
        if (v && !evicting()) {
          v.evicting = true;
          evicted.push(v.conversationId);
          try {
            await getExternalWorkflowHandle(conversationWorkflowId(v.conversationId)).signal(pauseSignal, {
              reason: TOO_MANY_CONVERSATIONS,
            });
          } catch {
            slots.delete(v.conversationId); // the conversation is gone: its slot with it
          }
        }
        // Healing, look at the slots again every HEAL_INTERVAL_MS: a victim that paused but whose release was lost
        // frees its slot at the next look, not never.
        const waitMs = heals ? HEAL_INTERVAL_MS : EVICTION_WAIT_MS;
        const freed = await condition(() => slots.size < limit || (!evicting() && victim() !== undefined), waitMs);
        waited += freed ? 0 : waitMs;
        // A victim that did not pause in time (its pause failed) may be chosen again.
        if (!freed && waited >= EVICTION_WAIT_MS) {
          for (const s of slots.values()) s.evicting = false;
          waited = 0;
        }
      }
      slots.set(conversationId, { conversationId, status: 'STARTING', lastActiveAt: Date.now() });
      return { conversationId, evicted };
    } finally {
      acquiring = false;
    }
  });

  if (!rebuilt) {
    if (healing()) {
      // RUNNING ones only: a STARTING one may be waiting for this very registry's answer (counting it would grant it
      // a slot unasked); one that holds a slot from before says so when it runs (`touch`).
      const { conversations } = await listLiveConversations({ userId: input.userId });
      for (const c of conversations) {
        if (c.status === 'RUNNING' && !slots.has(c.conversationId))
          slots.set(c.conversationId, { ...c, lastActiveAt: Date.now() });
      }
    }
    rebuilt = true;
  }
  await condition(() => workflowInfo().continueAsNewSuggested && !acquiring);
  await condition(allHandlersFinished);
  await continueAsNew<typeof UserSessions>({ userId: input.userId, limit, slots: [...slots.values()] });
}
