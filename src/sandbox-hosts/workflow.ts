// SandboxHosts: the registry of sandbox hosts (workflow ID `sandbox-hosts`). A host is a Docker engine with a nestor
// worker beside it polling `sandbox-host-<id>`; its worker registers it with its capacity. A conversation asks for a
// placement before it creates its sandbox: the registry picks the host with the most free room (capacity minus the
// conversations placed there), never a draining or lost one, and remembers the choice until the conversation
// releases it. Updates are handled one at a time, so concurrent placements never overfill a host.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { ErrorType } from '../errors';
import {
  HOST_ID_PATTERN,
  hostLostSignal,
  hostTaskQueue,
  hostsQuery,
  placeUpdate,
  registerHostUpdate,
  releaseSignal,
  setDrainingUpdate,
  type HostRecord,
  type Placement,
  type SandboxHostsInput,
} from './messages';

export async function SandboxHosts(input: SandboxHostsInput = {}): Promise<void> {
  const hosts = new Map<string, HostRecord>((input.hosts ?? []).map((h) => [h.hostId, h]));
  const show = () => showHosts([...hosts.values()]);
  const known = (hostId: string) => {
    const h = hosts.get(hostId);
    if (!h)
      throw ApplicationFailure.create({
        type: ErrorType.HostNotFound,
        message: `hostId: no sandbox host ${hostId}; registered: ${[...hosts.keys()].join(', ') || 'none'}`,
        nonRetryable: true,
      });
    return h;
  };

  setHandler(
    registerHostUpdate,
    ({ hostId, capacity }) => {
      const h = hosts.get(hostId);
      const record: HostRecord = {
        hostId,
        taskQueue: hostTaskQueue(hostId),
        capacity,
        placed: h?.placed ?? [],
        draining: h?.draining ?? false,
        registeredAt: new Date().toISOString(),
      };
      hosts.set(hostId, record);
      show();
      return record;
    },
    {
      validator: ({ hostId, capacity }) => {
        if (typeof hostId !== 'string' || !HOST_ID_PATTERN.test(hostId))
          throw new Error(`hostId: expected lower-case letters, digits and '-' (1-63), got ${JSON.stringify(hostId)}`);
        if (!Number.isInteger(capacity) || capacity < 1 || capacity > 10_000)
          throw new Error(`capacity: expected an integer from 1 to 10000, got ${JSON.stringify(capacity)}`);
      },
    },
  );

  setHandler(placeUpdate, ({ conversationId, exclude = [], current: where }): Placement => {
    if (where) {
      const h = known(where);
      if (!h.placed.includes(conversationId)) h.placed.push(conversationId);
      show();
      return { hostId: h.hostId, taskQueue: h.taskQueue, draining: h.draining, lost: h.lost };
    }
    const current = [...hosts.values()].find((h) => h.placed.includes(conversationId));
    if (current && !exclude.includes(current.hostId) && !current.lost)
      return { hostId: current.hostId, taskQueue: current.taskQueue };
    if (current) current.placed = current.placed.filter((c) => c !== conversationId);
    const chosen = choose([...hosts.values()], conversationId, exclude);
    chosen.placed.push(conversationId);
    show();
    return { hostId: chosen.hostId, taskQueue: chosen.taskQueue };
  });

  setHandler(releaseSignal, ({ conversationId }) => {
    for (const h of hosts.values()) h.placed = h.placed.filter((c) => c !== conversationId);
    show();
  });

  setHandler(setDrainingUpdate, ({ hostId, draining }) => {
    const h = known(hostId);
    h.draining = draining;
    show();
    return h;
  });

  setHandler(hostLostSignal, ({ hostId, reason }) => {
    const h = hosts.get(hostId);
    if (!h) return;
    h.lost = reason;
    show();
  });

  setHandler(hostsQuery, () => [...hosts.values()]);

  show();
  await condition(() => workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof SandboxHosts>({ hosts: [...hosts.values()] });
}

/**
 * The host with the most free room (as a share of its capacity; then the host ID, so a tie is decided the same way),
 * never an excluded, draining, lost or full one; else NoSandboxHost saying why each host was passed over.
 */
function choose(hosts: HostRecord[], conversationId: string, exclude: string[]): HostRecord {
  const why: string[] = [];
  const open = hosts.filter((h) => {
    const no = exclude.includes(h.hostId)
      ? 'excluded'
      : h.draining
        ? 'draining'
        : h.lost
          ? `lost (${h.lost})`
          : h.placed.length >= h.capacity
            ? `full (${h.capacity})`
            : undefined;
    if (no) why.push(`${h.hostId}: ${no}`);
    return !no;
  });
  const free = (h: HostRecord) => (h.capacity - h.placed.length) / h.capacity;
  open.sort((a, b) => free(b) - free(a) || (a.hostId < b.hostId ? -1 : 1));
  if (!open[0])
    throw ApplicationFailure.create({
      type: ErrorType.NoSandboxHost,
      message: `no sandbox host can take conversation ${conversationId}: ${why.join('; ') || 'none registered'}; start a host worker (nestor host-worker) or undrain one`,
      nonRetryable: true,
    });
  return open[0];
}

/** The hosts in the UI: one line each in the current details, and the memo (counts, not conversation IDs). */
function showHosts(rows: HostRecord[]): void {
  const line = (h: HostRecord) =>
    `${h.hostId}: ${h.placed.length}/${h.capacity}${h.draining ? ', draining' : ''}${h.lost ? `, lost (${h.lost})` : ''}`;
  setCurrentDetails(rows.length ? rows.map(line).join('\n') : 'no host registered');
  upsertMemo({ hosts: rows.map(({ placed, ...h }) => ({ ...h, placed: placed.length })) });
}
