// Message definitions of SandboxHosts, the registry of the Docker hosts sandboxes run on: shared by the workflow, the
// host workers that register, the conversations that ask it for a placement, and the CLI that drains hosts.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** The registry's workflow ID: one per namespace and conversations task queue. */
export const SANDBOX_HOSTS_WORKFLOW_ID = 'sandbox-hosts';

/** The task queue a host's worker polls: its sandbox's runtime and nested-server activities go there. */
export const hostTaskQueue = (hostId: string) => `sandbox-host-${hostId}`;

/** A host ID: what `NESTOR_HOST_ID` accepts (it becomes part of a task queue name and container labels). */
export const HOST_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface HostRecord {
  hostId: string;
  taskQueue: string;
  /** Sandboxes (running or paused) the host takes, as its worker declared. */
  capacity: number;
  /** Conversations whose sandbox is on this host (placed and not yet released). */
  placed: string[];
  /** No new placements; its conversations stay until they close. */
  draining: boolean;
  /**
   * Why the host counts as lost: its worker sent no heartbeat for HOST_LOST_AFTER_MS. Derived from `seenAt` whenever
   * the registry answers (never a verdict one conversation's timeout can pass for everyone).
   */
  lost?: string;
  registeredAt: string;
  /** The worker's last heartbeat or registration (absent in records from before heartbeats: `registeredAt`). */
  seenAt?: string;
  /** The last pickup timeout a conversation reported for it (shown; the heartbeat decides whether it is lost). */
  reported?: string;
  /**
   * Sandboxes its worker counted on its engine at its last heartbeat: a registry started afresh (no placements yet)
   * still sees how full the host is. Its load is the larger of this and `placed`.
   */
  sandboxes?: number;
}

export interface SandboxHostsInput {
  hosts?: HostRecord[];
  /** @default HOST_LOST_AFTER_MS (tests start the registry with a shorter one) */
  lostAfterMs?: number;
  /** @default HOST_PLACEMENTS_HEAL_MS */
  healEveryMs?: number;
}

export interface Placement {
  hostId: string;
  taskQueue: string;
  /** The host takes no new sandboxes (a resume stays on it: the sandbox's data is on its local volume). */
  draining?: boolean;
  /** Why the host counts as lost, if it does. */
  lost?: string;
}

export const registerHostUpdate = defineUpdate<HostRecord, [{ hostId: string; capacity: number }]>('registerHost');
/**
 * Place a conversation's sandbox (idempotent per conversation), avoiding the hosts in `exclude`; with `current`, the
 * sandbox exists on that host already (a resume): it is recorded there and the host's state returned, never moved.
 */
export const placeUpdate = defineUpdate<Placement, [{ conversationId: string; exclude?: string[]; current?: string }]>(
  'place',
);
export const releaseSignal = defineSignal<[{ conversationId: string }]>('release');
export const setDrainingUpdate = defineUpdate<HostRecord, [{ hostId: string; draining: boolean }]>('setDraining');
export const hostLostSignal = defineSignal<[{ hostId: string; reason: string }]>('hostLost');
/** A host worker is there, with this capacity (every HOST_HEARTBEAT_MS); registers a host a fresh registry lacks. */
export const hostHeartbeatSignal =
  defineSignal<[{ hostId: string; capacity: number; sandboxes?: number }]>('hostHeartbeat');

/** How full a host is: its placements, or the sandboxes its worker counted if more (a registry started afresh). */
export function hostLoad(h: Pick<HostRecord, 'placed' | 'sandboxes'>): number {
  return Math.max(h.placed.length, h.sandboxes ?? 0);
}
export const hostsQuery = defineQuery<HostRecord[]>('hosts');
