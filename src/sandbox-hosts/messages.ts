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
  /** Why the host counts as lost (a task waited for its worker past the bound); cleared when its worker registers. */
  lost?: string;
  registeredAt: string;
}

export interface SandboxHostsInput {
  hosts?: HostRecord[];
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
export const hostsQuery = defineQuery<HostRecord[]>('hosts');
