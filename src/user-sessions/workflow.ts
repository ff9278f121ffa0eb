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
  proxyLocalActivities,
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

/**
 * Patch ID: the slot checks (checkSlots, listLiveConversations) run as local activities. As activities they waited
 * for a slot of the worker's activity executor, which the acquireSession activities asking this very registry
 * could all hold: more concurrent first starts than slots (64 new users on one worker) deadlocked until their 3-min
 * timeout (found by the benchmark's phase 5).
 */
export const LOCAL_SLOT_CHECKS_PATCH = 'local-slot-checks';

const SLOT_CHECKS = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
} as const;
const remoteChecks = proxyActivities<Activities>(SLOT_CHECKS);
const localChecks = proxyLocalActivities<Activities>(SLOT_CHECKS);

/** Reason a conversation is paused to make room, as OpenHands' AGENT_ERROR$TOO_MANY_CONVERSATIONS. */
export const TOO_MANY_CONVERSATIONS = 'too many conversations';
/** How long to wait for an evicted conversation to pause before choosing again. */
const EVICTION_WAIT_MS = 60_000;
/** How often a waiting acquire checks the slots against their conversations again. */
const HEAL_INTERVAL_MS = 5_000;

/** One user's slots and the operations on them; UserSessions (below) wires its messages to these. */
class SlotRegistry {
  readonly slots: Map<string, Slot>;
  limit: number;
  /** True while an acquire is being decided: one at a time, so the limit holds. */
  acquiring = false;
  /** False until a registry started afresh has found the user's live conversations. */
  rebuilt: boolean;
  /** Whether this run heals its slots (runs recorded before it did not). */
  private healingOn?: boolean;
  private localChecksOn?: boolean;

  constructor(readonly input: UserSessionsInput) {
    this.slots = new Map((input.slots ?? []).map((s) => [s.conversationId, s]));
    this.limit = input.limit;
    this.rebuilt = input.slots !== undefined;
  }

  healing(): boolean {
    return (this.healingOn ??= patched(SELF_HEALING_SLOTS_PATCH));
  }

  /** The slot checks, as local activities (runs recorded before LOCAL_SLOT_CHECKS_PATCH: as activities). */
  private checks(): Pick<Activities, 'checkSlots' | 'listLiveConversations'> {
    this.localChecksOn ??= patched(LOCAL_SLOT_CHECKS_PATCH);
    return this.localChecksOn ? localChecks : remoteChecks;
  }

  /** The least recently active RUNNING conversation not already being evicted. */
  victim(): Slot | undefined {
    return [...this.slots.values()]
      .filter((s) => s.status === 'RUNNING' && !s.evicting)
      .sort((a, b) => a.lastActiveAt - b.lastActiveAt)[0];
  }

  evicting(): boolean {
    return [...this.slots.values()].some((s) => s.evicting);
  }

  release(conversationId: string): void {
    this.slots.delete(conversationId);
  }

  touch(conversationId: string, running: boolean | undefined): void {
    const s = this.slots.get(conversationId);
    // A conversation running on a slot this registry does not know (granted before it was started afresh) holds one.
    if (!s && running && this.healing())
      this.slots.set(conversationId, { conversationId, status: 'RUNNING', lastActiveAt: Date.now() });
    if (!s) return;
    s.lastActiveAt = Date.now();
    if (running) s.status = 'RUNNING';
  }

  /** Drop the slots whose conversations no longer hold one. */
  async heal(): Promise<void> {
    const others = [...this.slots.keys()];
    if (others.length === 0) return;
    const { stale } = await this.checks().checkSlots({ conversationIds: others });
    for (const s of stale) {
      this.slots.delete(s.conversationId);
      log.warn('stale slot dropped', { conversationId: s.conversationId, why: s.why });
    }
  }

  /** Ask the least recently active conversation to pause, unless one is already on its way out. */
  async evictOne(evicted: string[]): Promise<void> {
    const v = this.victim();
    if (!v || this.evicting()) return;
    v.evicting = true;
    evicted.push(v.conversationId);
    try {
      await getExternalWorkflowHandle(conversationWorkflowId(v.conversationId)).signal(pauseSignal, {
        reason: TOO_MANY_CONVERSATIONS,
      });
    } catch {
      this.slots.delete(v.conversationId); // the conversation is gone: its slot with it
    }
  }

  /** A slot for `conversationId`, once one is free: at the limit, heal, then evict and wait. */
  async acquire(conversationId: string, requested: number | undefined): Promise<SlotGrant> {
    await condition(() => this.rebuilt);
    // A conversation that holds a slot (e.g. bringing back a sandbox it lost) is answered at once: it must never
    // queue behind an acquire that waits for it to pause.
    const held = this.slots.get(conversationId);
    if (held) {
      held.lastActiveAt = Date.now();
      return { conversationId, evicted: [] };
    }
    // One acquire at a time: the limit is enforced by a single serial owner. Checked again after each wake-up:
    // acquires waiting together are all woken in one pass, and only the first may go on (three concurrent first
    // starts of one user all went on at once and got three slots under a limit of 2).
    while (this.acquiring) await condition(() => !this.acquiring);
    this.acquiring = true;
    try {
      if (requested !== undefined) this.limit = requested;
      const mine = this.slots.get(conversationId);
      if (mine) {
        mine.lastActiveAt = Date.now();
        return { conversationId, evicted: [] };
      }
      const evicted = await this.makeRoom();
      this.slots.set(conversationId, { conversationId, status: 'STARTING', lastActiveAt: Date.now() });
      return { conversationId, evicted };
    } finally {
      this.acquiring = false;
    }
  }

  /** Until a slot is free: heal, evict one, wait. Returns the conversations asked to pause. */
  private async makeRoom(): Promise<string[]> {
    const evicted: string[] = [];
    const heals = this.healing();
    let waited = 0;
    while (this.slots.size >= this.limit) {
      if (heals) {
        await this.heal();
        if (this.slots.size < this.limit) break;
      }
      await this.evictOne(evicted);
      // Healing, look at the slots again every HEAL_INTERVAL_MS: a victim that paused but whose release was lost
      // frees its slot at the next look, not never.
      const waitMs = heals ? HEAL_INTERVAL_MS : EVICTION_WAIT_MS;
      const freed = await condition(
        () => this.slots.size < this.limit || (!this.evicting() && this.victim() !== undefined),
        waitMs,
      );
      waited += freed ? 0 : waitMs;
      // A victim that did not pause in time (its pause failed) may be chosen again.
      if (!freed && waited >= EVICTION_WAIT_MS) {
        for (const s of this.slots.values()) s.evicting = false;
        waited = 0;
      }
    }
    return evicted;
  }

  /** A registry started afresh takes the user's RUNNING conversations from visibility. */
  async rebuild(): Promise<void> {
    if (this.rebuilt) return;
    if (this.healing()) {
      // RUNNING ones only: a STARTING one may be waiting for this very registry's answer (counting it would grant it
      // a slot unasked); one that holds a slot from before says so when it runs (`touch`).
      const { conversations } = await this.checks().listLiveConversations({ userId: this.input.userId });
      for (const c of conversations) {
        if (c.status === 'RUNNING' && !this.slots.has(c.conversationId))
          this.slots.set(c.conversationId, { ...c, lastActiveAt: Date.now() });
      }
    }
    this.rebuilt = true;
  }
}

export async function UserSessions(input: UserSessionsInput): Promise<void> {
  const registry = new SlotRegistry(input);
  setHandler(slotsQuery, () => [...registry.slots.values()]);
  setHandler(releaseSlotSignal, ({ conversationId }) => registry.release(conversationId));
  setHandler(touchSlotSignal, ({ conversationId, running }) => registry.touch(conversationId, running));
  setHandler(acquireSlotUpdate, ({ conversationId, limit }) => registry.acquire(conversationId, limit));
  await registry.rebuild();
  await condition(() => workflowInfo().continueAsNewSuggested && !registry.acquiring);
  await condition(allHandlersFinished);
  await continueAsNew<typeof UserSessions>({
    userId: input.userId,
    limit: registry.limit,
    slots: [...registry.slots.values()],
  });
}
