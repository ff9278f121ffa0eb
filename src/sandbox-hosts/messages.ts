// Message definitions of SandboxHosts, the registry of the Docker hosts sandboxes run on: shared by the workflow, the
// host workers that register, the conversations that ask it for a placement, and the CLI that drains hosts.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** The registry's workflow ID (its first shard's): one per namespace and conversations task queue. */
export const SANDBOX_HOSTS_WORKFLOW_ID = 'sandbox-hosts';

/**
 * The registry as several workflows (NESTOR_HOST_REGISTRY_SHARDS): shard `index` of `of` places the conversations whose
 * IDs hash to it, on its share of every host's capacity. One shard (the default) is the registry as it always was.
 */
export interface RegistryShard {
  index: number;
  of: number;
}
export const ONE_SHARD: RegistryShard = { index: 0, of: 1 };
export const MAX_REGISTRY_SHARDS = 64;

/** A shard's workflow ID: the first keeps the registry's own, so a deployment that adds shards keeps its placements. */
export const registryWorkflowId = (index: number) =>
  index === 0 ? SANDBOX_HOSTS_WORKFLOW_ID : `${SANDBOX_HOSTS_WORKFLOW_ID}-${index}`;

/** Every shard of a registry of `of`. */
export const registryShards = (of: number): RegistryShard[] =>
  Array.from({ length: of }, (_, index) => ({ index, of }));

/** FNV-1a (32 bits): a stable spread of IDs, the same in a workflow, a worker and the CLI. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The shard that places a conversation (its release and its next placement go to the same one). */
export const shardOf = (conversationId: string, of: number): RegistryShard => ({
  index: hash(conversationId) % of,
  of,
});

/**
 * A shard's share of a host's capacity: an equal part, the remainder going one each to the shards after the host's
 * own starting point (so small hosts do not all give their spare room to shard 0). The shares add up to `capacity`.
 */
export function capacityShare(capacity: number, hostId: string, shard: RegistryShard): number {
  const base = Math.floor(capacity / shard.of);
  const turn = (shard.index - (hash(hostId) % shard.of) + shard.of) % shard.of;
  return base + (turn < capacity % shard.of ? 1 : 0);
}

/**
 * Why a shard refuses a caller that counts another number of shards (`shards`, its NESTOR_HOST_REGISTRY_SHARDS), or
 * undefined. A caller that says nothing (an earlier version) is not checked. Shard 0 of a registry started for one
 * would otherwise place on a host's whole capacity while the new shards place on their shares of it.
 */
export function shardsMismatch(shard: RegistryShard, shards: unknown): string | undefined {
  if (shards === undefined || shards === shard.of) return undefined;
  return (
    `shards: registry ${registryWorkflowId(shard.index)} runs as shard ${shard.index} of ${shard.of}, the caller has ` +
    `NESTOR_HOST_REGISTRY_SHARDS=${JSON.stringify(shards)}; every worker, host worker and CLI needs the same value. To ` +
    `change it, stop them, terminate the sandbox-hosts* workflows and start them with the new value (docs/hosts.md)`
  );
}

/** The task queue a host's worker polls: its sandbox's runtime and nested-server activities go there. */
export const hostTaskQueue = (hostId: string) => `sandbox-host-${hostId}`;

/** A host ID: what `NESTOR_HOST_ID` accepts (it becomes part of a task queue name and container labels). */
export const HOST_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface HostRecord {
  hostId: string;
  taskQueue: string;
  /**
   * Sandboxes (running or paused) this registry places on the host: what its worker declared, or with several
   * registry shards this shard's share of it (`declaredCapacity` is then the whole).
   */
  capacity: number;
  /** The capacity the host's worker declared, where a shard holds only a share of it (absent: `capacity`). */
  declaredCapacity?: number;
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
  /** Which shard of the registry this is (absent: the only one). */
  shard?: RegistryShard;
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

/** What every caller of the registry says: its number of shards (NESTOR_HOST_REGISTRY_SHARDS), checked by each shard. */
export interface ShardsSaid {
  shards?: number;
}

export const registerHostUpdate = defineUpdate<HostRecord, [{ hostId: string; capacity: number } & ShardsSaid]>(
  'registerHost',
);
/**
 * Place a conversation's sandbox (idempotent per conversation), avoiding the hosts in `exclude`; with `current`, the
 * sandbox exists on that host already (a resume): it is recorded there and the host's state returned, never moved.
 */
export const placeUpdate = defineUpdate<
  Placement,
  [{ conversationId: string; exclude?: string[]; current?: string } & ShardsSaid]
>('place');
export const releaseSignal = defineSignal<[{ conversationId: string }]>('release');
export const setDrainingUpdate = defineUpdate<HostRecord, [{ hostId: string; draining: boolean } & ShardsSaid]>(
  'setDraining',
);
export const hostLostSignal = defineSignal<[{ hostId: string; reason: string }]>('hostLost');
/** A host worker is there, with this capacity (every HOST_HEARTBEAT_MS); registers a host a fresh registry lacks. */
export const hostHeartbeatSignal =
  defineSignal<[{ hostId: string; capacity: number; sandboxes?: number } & ShardsSaid]>('hostHeartbeat');

/**
 * How full a host is: its placements, or the sandboxes its worker counted if more (a registry started afresh); a
 * shard counts its share of those sandboxes.
 */
export function hostLoad(h: Pick<HostRecord, 'placed' | 'sandboxes' | 'capacity' | 'declaredCapacity'>): number {
  const counted = h.sandboxes ?? 0;
  const share = h.declaredCapacity ? Math.ceil((counted * h.capacity) / h.declaredCapacity) : counted;
  return Math.max(h.placed.length, share);
}
export const hostsQuery = defineQuery<HostRecord[]>('hosts');
