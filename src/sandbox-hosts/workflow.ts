// SandboxHosts: the registry of sandbox hosts (workflow ID `sandbox-hosts`). A host is a Docker engine with a nestor
// worker beside it polling `sandbox-host-<id>`; its worker registers it with its capacity. A conversation asks for a
// placement before it creates its sandbox: the registry picks the host with the most free room (capacity minus the
// conversations placed there), never a draining or lost one, and remembers the choice until the conversation
// releases it. Updates are handled one at a time, so concurrent placements never overfill a host. Liveness is a
// heartbeat: each host worker signals every HOST_HEARTBEAT_MS, and a host is lost while its last one is older than
// HOST_LOST_AFTER_MS (a registry started afresh learns its hosts from those heartbeats). Every HOST_PLACEMENTS_HEAL_MS
// the placements of conversations whose workflow has closed (terminated, failed) are given back.
// With NESTOR_HOST_REGISTRY_SHARDS above 1 the registry is several such workflows (`sandbox-hosts`, `sandbox-hosts-1`,
// …): each places the conversations whose IDs hash to it on its share of every host's capacity, so neither its update
// queue nor its state (every placed ID) is one for the whole deployment.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { HOST_LOST_AFTER_MS, HOST_PLACEMENTS_HEAL_MS } from '../defaults';
import { ErrorType } from '../errors';
import { choose } from './workflow-choose';
import {
  HOST_ID_PATTERN,
  hostHeartbeatSignal,
  ONE_SHARD,
  capacityShare,
  hostLoad,
  hostLostSignal,
  hostTaskQueue,
  hostsQuery,
  placeUpdate,
  registerHostUpdate,
  releaseSignal,
  setDrainingUpdate,
  shardsMismatch,
  type HostRecord,
  type Placement,
  type RegistryShard,
  type SandboxHostsInput,
  type ShardsSaid,
} from './messages';

/** Patch ID: the registry gives back, every HOST_PLACEMENTS_HEAL_MS, the placements of closed conversations. */
export const HEAL_PLACEMENTS_PATCH = 'heal-placements';

const { closedConversations } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

/** Why a host counts as lost now (its worker silent past the bound), or undefined while it is live. */
function lostNow(h: HostRecord, lostAfterMs: number): string | undefined {
  const silentMs = Date.now() - Date.parse(h.seenAt ?? h.registeredAt);
  return silentMs > lostAfterMs ? `no heartbeat from its worker for ${Math.round(silentMs / 1000)} s` : undefined;
}

/** The registry's state: the hosts, and the placements asked for while a heal looks at the conversations. */
class Registry {
  readonly hosts: Map<string, HostRecord>;
  /** Placements made (or asked for) while a heal's look at the conversations was out: never given back by it. */
  readonly touched = new Set<string>();

  readonly lostAfterMs: number;
  readonly healEveryMs: number;
  readonly shard: RegistryShard;

  constructor(input: SandboxHostsInput) {
    this.hosts = new Map((input.hosts ?? []).map((h) => [h.hostId, h]));
    this.shard = input.shard ?? ONE_SHARD;
    this.lostAfterMs = input.lostAfterMs ?? HOST_LOST_AFTER_MS;
    this.healEveryMs = input.healEveryMs ?? HOST_PLACEMENTS_HEAL_MS;
  }

  /** Each host's `lost`, from its last heartbeat. */
  refresh(): void {
    for (const h of this.hosts.values()) {
      const lost = lostNow(h, this.lostAfterMs);
      if (lost) h.lost = lost;
      else delete h.lost;
    }
  }

  show(): void {
    this.refresh();
    showHosts([...this.hosts.values()]);
  }

  known(hostId: string): HostRecord {
    const h = this.hosts.get(hostId);
    if (!h)
      throw ApplicationFailure.create({
        type: ErrorType.HostNotFound,
        message: `hostId: no sandbox host ${hostId}; registered: ${[...this.hosts.keys()].join(', ') || 'none'}`,
        nonRetryable: true,
      });
    return h;
  }

  /** A registration (or a heartbeat, which keeps the registration's time): the host is there now, with this capacity. */
  register(hostId: string, capacity: number, beat?: { sandboxes?: number }): HostRecord {
    const h = this.hosts.get(hostId);
    const now = new Date().toISOString();
    const sharded = this.shard.of > 1;
    const record: HostRecord = {
      hostId,
      taskQueue: hostTaskQueue(hostId),
      capacity: sharded ? capacityShare(capacity, hostId, this.shard) : capacity,
      ...(sharded && { declaredCapacity: capacity }),
      placed: h?.placed ?? [],
      draining: h?.draining ?? false,
      registeredAt: beat && h ? h.registeredAt : now,
      seenAt: now,
      ...(h?.reported && { reported: h.reported }),
      ...(beat?.sandboxes !== undefined
        ? { sandboxes: beat.sandboxes }
        : h?.sandboxes !== undefined && { sandboxes: h.sandboxes }),
    };
    this.hosts.set(hostId, record);
    return record;
  }

  /** Give back the placements of conversations whose workflow has closed (none placed again meanwhile). */
  async heal(): Promise<void> {
    this.touched.clear();
    const placed = [...this.hosts.values()].flatMap((h) => h.placed);
    if (!placed.length) return;
    const { closed } = await closedConversations({ conversationIds: placed });
    const gone = new Set(closed.filter((c: string) => !this.touched.has(c)));
    for (const h of this.hosts.values()) h.placed = h.placed.filter((c) => !gone.has(c));
    if (gone.size) this.show();
  }
}

/** A heartbeat's count of sandboxes, if it is one (older workers send none). */
function countOf(n: unknown): number | undefined {
  return Number.isInteger(n) && (n as number) >= 0 ? (n as number) : undefined;
}

function validHost({ hostId, capacity }: { hostId: unknown; capacity: unknown }): void {
  if (typeof hostId !== 'string' || !HOST_ID_PATTERN.test(hostId))
    throw new Error(`hostId: expected lower-case letters, digits and '-' (1-63), got ${JSON.stringify(hostId)}`);
  if (!Number.isInteger(capacity) || (capacity as number) < 1 || (capacity as number) > 10_000)
    throw new Error(`capacity: expected an integer from 1 to 10000, got ${JSON.stringify(capacity)}`);
}

/** A placement: the host the conversation has (a resume's `where`, or one it was placed on), else the roomiest. */
function place(reg: Registry, conversationId: string, exclude: string[], where?: string): Placement {
  const { hosts } = reg;
  reg.refresh();
  reg.touched.add(conversationId);
  if (where) {
    const h = reg.known(where);
    if (!h.placed.includes(conversationId)) h.placed.push(conversationId);
    reg.show();
    return { hostId: h.hostId, taskQueue: h.taskQueue, draining: h.draining, lost: h.lost };
  }
  const current = [...hosts.values()].find((h) => h.placed.includes(conversationId));
  if (current && !exclude.includes(current.hostId) && !current.lost)
    return { hostId: current.hostId, taskQueue: current.taskQueue };
  if (current) current.placed = current.placed.filter((c) => c !== conversationId);
  const chosen = choose([...hosts.values()], conversationId, exclude, reg.shard);
  chosen.placed.push(conversationId);
  reg.show();
  return { hostId: chosen.hostId, taskQueue: chosen.taskQueue };
}

/** Refuse (before the update is accepted: nothing recorded) a caller counting another number of shards. */
function sameShards(reg: Registry, { shards }: ShardsSaid): void {
  const why = shardsMismatch(reg.shard, shards);
  if (why)
    throw ApplicationFailure.create({ type: ErrorType.RegistryShardsMismatch, message: why, nonRetryable: true });
}

function installHandlers(reg: Registry): void {
  const { hosts } = reg;
  setHandler(
    registerHostUpdate,
    ({ hostId, capacity }) => {
      const record = reg.register(hostId, capacity);
      reg.show();
      return record;
    },
    {
      validator: (a) => {
        sameShards(reg, a);
        validHost(a);
      },
    },
  );

  // A heartbeat that breaks the rules (a worker of another version) is ignored: a signal cannot be refused.
  setHandler(hostHeartbeatSignal, (beat) => {
    try {
      validHost(beat);
      sameShards(reg, beat); // a host worker of another count: its registration was refused at its start
    } catch {
      return;
    }
    const before = hosts.get(beat.hostId);
    reg.register(beat.hostId, beat.capacity, { sandboxes: countOf(beat.sandboxes) });
    // Shown in the UI only when something shows differently (each beat would otherwise add to history).
    const after = hosts.get(beat.hostId)!;
    const declared = (h: HostRecord) => h.declaredCapacity ?? h.capacity;
    if (!before || before.lost || declared(before) !== beat.capacity || hostLoad(before) !== hostLoad(after))
      reg.show();
    else reg.refresh();
  });

  setHandler(
    placeUpdate,
    ({ conversationId, exclude = [], current: where }): Placement => place(reg, conversationId, exclude, where),
    { validator: (a) => sameShards(reg, a) },
  );

  setHandler(releaseSignal, ({ conversationId }) => {
    for (const h of hosts.values()) h.placed = h.placed.filter((c) => c !== conversationId);
    reg.show();
  });

  setHandler(
    setDrainingUpdate,
    ({ hostId, draining }) => {
      const h = reg.known(hostId);
      h.draining = draining;
      reg.show();
      return h;
    },
    { validator: (a) => sameShards(reg, a) },
  );

  // One conversation's pickup timeout is its own: shown, while the heartbeat decides whether the host is lost.
  setHandler(hostLostSignal, ({ hostId, reason }) => {
    const h = hosts.get(hostId);
    if (!h) return;
    h.reported = reason;
    reg.show();
  });

  setHandler(hostsQuery, () => {
    reg.refresh();
    return [...hosts.values()];
  });
}

export async function SandboxHosts(input: SandboxHostsInput = {}): Promise<void> {
  const reg = new Registry(input);
  installHandlers(reg);
  // Runs recorded before the patch wait for continue-as-new only, as they did.
  const heals = patched(HEAL_PLACEMENTS_PATCH);
  let healedAt = Date.now();
  reg.show();
  for (;;) {
    const healDue = () => heals && reg.hosts.size > 0 && Date.now() - healedAt >= reg.healEveryMs;
    await condition(() => workflowInfo().continueAsNewSuggested || healDue());
    if (workflowInfo().continueAsNewSuggested) break;
    healedAt = Date.now();
    await reg.heal();
  }
  await condition(allHandlersFinished);
  await continueAsNew<typeof SandboxHosts>({
    hosts: [...reg.hosts.values()],
    ...(input.shard && { shard: input.shard }),
    lostAfterMs: input.lostAfterMs,
    healEveryMs: input.healEveryMs,
  });
}

/** The hosts in the UI: one line each in the current details, and the memo (counts, not conversation IDs). */
function showHosts(rows: HostRecord[]): void {
  const line = (h: HostRecord) =>
    `${h.hostId}: ${hostLoad(h)}/${h.capacity}${h.draining ? ', draining' : ''}${h.lost ? `, lost (${h.lost})` : ''}${h.reported ? `; last pickup timeout: ${h.reported}` : ''}`;
  setCurrentDetails(rows.length ? rows.map(line).join('\n') : 'no host registered');
  upsertMemo({ hosts: rows.map(({ placed, ...h }) => ({ ...h, placed: placed.length })) });
}
