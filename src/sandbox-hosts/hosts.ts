// The host registry from outside a workflow: a host worker registers its host at start; operators list hosts and
// drain or undrain one (`nestor host …`). With several registry shards each call goes to every shard, and a host is
// shown as one record: its shares and placements added up.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, NestorError, type ErrorTypeName } from '../errors';
import { WORKFLOW_TYPES } from '../shared/constants';
import { registryStart, registryStartOptions } from './activities';
import {
  hostHeartbeatSignal,
  hostsQuery,
  registerHostUpdate,
  registryShards,
  registryWorkflowId,
  setDrainingUpdate,
  type HostRecord,
} from './messages';

/**
 * Register (or register again) a host with its capacity with every shard of the registry; starts those that do not
 * run, on `taskQueue`.
 */
export async function registerHost(
  client: Client,
  o: { taskQueue: string; hostId: string; capacity: number; shards?: number },
): Promise<HostRecord> {
  const records = await everyShard(
    registryShards(o.shards ?? 1).map((shard) =>
      typed(() =>
        client.workflow.executeUpdateWithStart(registerHostUpdate, {
          args: [{ hostId: o.hostId, capacity: o.capacity, shards: shard.of }],
          startWorkflowOperation: registryStart(o.taskQueue, shard),
        }),
      ),
    ),
  );
  return merge(records);
}

/**
 * A host worker's heartbeat, to every shard of the registry (each places on its share of the host), by
 * signal-with-start: a registry started afresh is started again and learns the host from it.
 */
export async function sendHostHeartbeat(
  client: Client,
  o: { taskQueue: string; hostId: string; capacity: number; sandboxes?: number; shards?: number },
): Promise<void> {
  for (const shard of registryShards(o.shards ?? 1))
    await client.workflow.signalWithStart(WORKFLOW_TYPES.sandboxHosts, {
      ...registryStartOptions(o.taskQueue, shard),
      signal: hostHeartbeatSignal,
      signalArgs: [{ hostId: o.hostId, capacity: o.capacity, sandboxes: o.sandboxes, shards: shard.of }],
    });
}

/** Stop (or resume) placing new sandboxes on a host, in every shard. */
export async function setHostDraining(
  client: Client,
  hostId: string,
  draining: boolean,
  shards = 1,
): Promise<HostRecord> {
  const records = await everyShard(
    registryShards(shards).map((shard) =>
      typed(() =>
        client.workflow
          .getHandle(registryWorkflowId(shard.index))
          .executeUpdate(setDrainingUpdate, { args: [{ hostId, draining, shards: shard.of }] }),
      ),
    ),
  );
  return merge(records);
}

/** The registered hosts (each shard's records of a host added up), or none when no registry runs. */
export async function listHosts(client: Client, shards = 1): Promise<HostRecord[]> {
  const byShard = await Promise.all(
    registryShards(shards).map(async (shard) => {
      try {
        return await client.workflow.getHandle(registryWorkflowId(shard.index)).query(hostsQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return [];
        throw err;
      }
    }),
  );
  const byHost = new Map<string, HostRecord[]>();
  for (const h of byShard.flat()) byHost.set(h.hostId, [...(byHost.get(h.hostId) ?? []), h]);
  return [...byHost.values()].map(merge);
}

/**
 * One host as its shards see it: their shares of capacity and their placements added up; draining or lost if any
 * shard says so (a shard a host worker did not reach sees it lost). One record is returned as it is.
 */
function merge(records: HostRecord[]): HostRecord {
  if (records.length === 1) return records[0];
  const [first] = records;
  const lost = records.find((r) => r.lost)?.lost;
  const reported = records.find((r) => r.reported)?.reported;
  const { declaredCapacity: _, lost: __, reported: ___, ...rest } = first;
  return {
    ...rest,
    capacity: records.reduce((n, r) => n + r.capacity, 0),
    placed: records.flatMap((r) => r.placed),
    draining: records.some((r) => r.draining),
    registeredAt: records.map((r) => r.registeredAt).sort()[0],
    ...(lost && { lost }),
    ...(reported && { reported }),
  };
}

/**
 * Every shard's answer, or the refusal that explains the others: a shard of another count refuses with
 * RegistryShardsMismatch while the others may answer HostNotFound (a host they never saw), whichever comes first.
 */
async function everyShard<T>(calls: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (!failed.length) return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
  const mismatch = failed.find((e) => e instanceof NestorError && e.type === ErrorType.RegistryShardsMismatch);
  throw mismatch ?? failed[0];
}

/** The registry's own refusals, kept by type; any other is the caller's input. */
const REFUSALS: ErrorTypeName[] = [ErrorType.HostNotFound, ErrorType.RegistryShardsMismatch];

/**
 * The registry's refusals as NestorErrors with their type (HostNotFound, RegistryShardsMismatch, InvalidInput), not
 * update failures.
 */
async function typed<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new NestorError(ErrorType.HostNotFound, 'no sandbox host registry runs: no host worker has started', false);
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const said = err.cause.type;
      const type = REFUSALS.find((t) => t === said) ?? ErrorType.InvalidInput;
      throw new NestorError(type, err.cause.message, false);
    }
    throw err;
  }
}
