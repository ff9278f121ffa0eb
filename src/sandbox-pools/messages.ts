// Message definitions of SandboxPool, the durable owner of one warm pool: shared by the workflow, the activities that
// claim from the pool (a claim wakes it to refill), the worker that starts it and the CLI that resizes and drains it.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export interface PoolCounters {
  /** Members made ready since the pool began. */
  created: number;
  /** Members taken by a conversation's start. */
  claimed: number;
  /** Members removed because they failed their health check, were older than the bound or got stuck booting. */
  replaced: number;
  /** Member creations that failed. */
  failed: number;
}

export interface SandboxPoolInput {
  /** The pool's name (from its image: `nestor-emulator-latest`). */
  pool: string;
  /** Members to keep ready. */
  size: number;
  /** A member older than this is replaced. @default DEFAULT_POOL_MAX_AGE_MS */
  maxAgeMs?: number;
  /** How often the pool is checked when nothing wakes it. @default DEFAULT_POOL_TEND_INTERVAL_MS */
  tendIntervalMs?: number;
  /** Members booted at once (booting is the expensive part). @default DEFAULT_POOL_BOOT_BATCH */
  bootBatch?: number;
  /** What a continue-as-new carries over. */
  carried?: { enabled: boolean; counters: PoolCounters; known: string[]; lastError?: string };
}

export interface PoolStatus {
  pool: string;
  /** Members the pool keeps ready (0 while disabled or draining). */
  target: number;
  size: number;
  enabled: boolean;
  draining: boolean;
  ready: number;
  booting: number;
  counters: PoolCounters;
  /** The last failure seen (a member that could not be created), for operators. */
  lastError?: string;
  lastTendedAt?: string;
}

export const poolStatusQuery = defineQuery<PoolStatus>('status');
/** Set the number of members kept ready; refused above what the machine holds (the image's declared memory). */
export const resizePoolUpdate = defineUpdate<PoolStatus, [{ size: number }]>('resize');
/** Disabled: members removed, none made, starts go cold; enabled again: refilled. */
export const setPoolEnabledUpdate = defineUpdate<PoolStatus, [{ enabled: boolean }]>('setEnabled');
/** Remove every unclaimed member and end the pool's workflow. */
export const drainPoolUpdate = defineUpdate<PoolStatus, []>('drain');
/** A start took a member: refill now rather than at the next check. */
export const memberClaimedSignal = defineSignal<[{ memberId?: string }]>('memberClaimed');

/** What the machine holds for this pool: from the image's declared memory and the engine's total memory. */
export interface PoolCapacity {
  memberMemoryMb: number;
  hostMemoryMb: number;
  /** Members the pool may keep: its share of the host's memory over one member's. */
  maxSize: number;
}

/** What one survey of the pool found, member by member. */
export interface PoolSurvey {
  members: Array<{ memberId: string; state: 'booting' | 'ready'; ageMs: number; problem?: string }>;
}
