// ReapOrphanRuntimes: run by a Temporal Schedule (every 60 s by default). Lists the labelled runtimes and removes
// those whose conversation workflow is closed or absent and that are older than the grace period.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEFAULT_REAPER_GRACE_MS } from '../defaults';

const { findOrphanRuntimes } = proxyActivities<Activities>({
  summary: 'findOrphanRuntimes: list labelled runtimes, check their conversation workflows',
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
const { removeOrphanRuntime } = proxyActivities<Activities>({
  summary: 'removeOrphanRuntime: check the owner again, remove the container and its volume',
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});

export interface ReapInput {
  graceMs?: number;
}

export interface ReapResult {
  seen: number;
  owned: number;
  young: number;
  removed: string[];
  /** Sandboxes of PAUSED conversations that still ran (a pause their lost host never picked up): stopped, kept. */
  stopped?: string[];
  /** Orphans that got an owner again between the scan and the removal, or were gone already. */
  skipped: string[];
  failed: Array<{ conversationId: string; message: string }>;
}

export async function ReapOrphanRuntimes(input: ReapInput = {}): Promise<ReapResult> {
  const found = await findOrphanRuntimes({ graceMs: input.graceMs ?? DEFAULT_REAPER_GRACE_MS });
  const result: ReapResult = {
    seen: found.seen,
    owned: found.owned,
    young: found.young,
    removed: [],
    skipped: [],
    failed: [],
  };
  await Promise.all(
    found.orphans.map(async (o) => {
      try {
        const input = o.pool
          ? { conversationId: o.conversationId, pool: o.pool }
          : { conversationId: o.conversationId };
        const what = o.pool ? `pool ${o.pool.name} member ${o.pool.memberId}` : o.conversationId;
        const done = await removeOrphanRuntime(input);
        (done === 'stopped' ? (result.stopped ??= []) : done ? result.removed : result.skipped).push(what);
      } catch (err) {
        result.failed.push({
          conversationId: o.pool ? `pool ${o.pool.name} member ${o.pool.memberId}` : o.conversationId,
          message: err instanceof ApplicationFailure || err instanceof Error ? err.message : String(err),
        });
      }
    }),
  );
  result.removed.sort();
  result.skipped.sort();
  return result;
}
