// Where a new sandbox goes: the registry's choice among its hosts, from their records alone (the workflow holds the
// records and records the choice).
import { ApplicationFailure } from '@temporalio/workflow';
import { ErrorType } from '../errors';
import { hostLoad, type HostRecord, type RegistryShard } from './messages';

/**
 * The host with the most free room (as a share of its capacity; then the host ID, so a tie is decided the same way),
 * never an excluded, draining, lost or full one; else NoSandboxHost saying why each host was passed over.
 */
export function choose(
  hosts: HostRecord[],
  conversationId: string,
  exclude: string[],
  shard: RegistryShard,
): HostRecord {
  const why: string[] = [];
  const open = hosts.filter((h) => {
    const no = exclude.includes(h.hostId)
      ? 'excluded'
      : h.draining
        ? 'draining'
        : h.lost
          ? `lost (${h.lost})`
          : hostLoad(h) >= h.capacity
            ? `full (${h.capacity})`
            : undefined;
    if (no) why.push(`${h.hostId}: ${no}`);
    return !no;
  });
  const free = (h: HostRecord) => (h.capacity - hostLoad(h)) / h.capacity;
  open.sort((a, b) => free(b) - free(a) || (a.hostId < b.hostId ? -1 : 1));
  if (!open[0]) {
    // With several shards, the room counted is this shard's share; a shard no host worker registered with means the
    // host workers were started with fewer shards than the conversations' worker.
    const where =
      shard.of > 1
        ? ` (registry shard ${shard.index} of ${shard.of}: its share of each host; every worker, host worker and CLI needs NESTOR_HOST_REGISTRY_SHARDS=${shard.of})`
        : '';
    throw ApplicationFailure.create({
      type: ErrorType.NoSandboxHost,
      message: `no sandbox host can take conversation ${conversationId}${where}: ${why.join('; ') || 'none registered'}; start a host worker (nestor host-worker) or undrain one`,
      nonRetryable: true,
    });
  }
  return open[0];
}
