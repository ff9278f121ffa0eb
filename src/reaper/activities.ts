// The orphan reaper's activities: find the labelled runtimes whose conversation workflow is closed or absent, and
// remove them. A conversation's workflow is the only owner of its runtime; without one, nothing will ever remove it.
import { WorkflowNotFoundError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { conversationWorkflowId, poolWorkflowId } from '../shared/constants';
import type { RuntimeProvider } from '../runtime/provider';
import { heartbeat } from '../shared/activity-context';

export interface FindOrphansInput {
  /** Runtimes younger than this are left alone (their conversation may be starting again). */
  graceMs: number;
}

export interface OrphanRuntime {
  /** The conversation it was made for ('' for an unclaimed pool member). */
  conversationId: string;
  /** An unclaimed member of a warm pool whose owner is gone (drained, terminated): its pool and ID. */
  pool?: { name: string; memberId: string };
  runtimeId: string;
  name: string;
  /** The conversation workflow's status, or NOT_FOUND. */
  workflowStatus: string;
  ageMs: number;
}

export interface FindOrphansResult {
  /** Labelled runtimes seen. */
  seen: number;
  /** Of those, owned by an open conversation workflow. */
  owned: number;
  /** Orphans younger than the grace period, kept for now. */
  young: number;
  orphans: OrphanRuntime[];
}

/** The owning workflow's status ('RUNNING' while open), or NOT_FOUND: the conversation's, or a pool member's pool's. */
async function workflowStatus(conversationId: string, pool?: { name: string }): Promise<string> {
  const id = pool ? poolWorkflowId(pool.name) : conversationWorkflowId(conversationId);
  try {
    return (await Context.current().client.workflow.getHandle(id).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw err;
  }
}

export function createReaperActivities(deps: { runtime: RuntimeProvider; now?: () => number }) {
  const now = deps.now ?? Date.now;
  return {
    async findOrphanRuntimes(input: FindOrphansInput): Promise<FindOrphansResult> {
      const runtimes = await deps.runtime.list();
      const result: FindOrphansResult = { seen: runtimes.length, owned: 0, young: 0, orphans: [] };
      for (const r of runtimes) {
        heartbeat(r.name);
        const status = r.conversationId || r.pool ? await workflowStatus(r.conversationId, r.pool) : 'NOT_FOUND';
        if (status === 'RUNNING') {
          result.owned++;
          continue;
        }
        const ageMs = now() - Date.parse(r.createdAt);
        if (ageMs < input.graceMs) {
          result.young++;
          continue;
        }
        result.orphans.push({
          conversationId: r.conversationId,
          ...(r.pool && { pool: r.pool }),
          runtimeId: r.runtimeId,
          name: r.name,
          workflowStatus: status,
          ageMs,
        });
      }
      return result;
    },

    /**
     * Remove one orphan, checking again first: a start of the same conversation since the scan owns it now. Returns
     * false when the runtime is gone already or has an owner again.
     */
    async removeOrphanRuntime(input: {
      conversationId: string;
      pool?: { name: string; memberId: string };
    }): Promise<boolean> {
      if ((await workflowStatus(input.conversationId, input.pool)) === 'RUNNING') return false;
      // An unclaimed pool member is retired by its pool's lock protocol: one claimed meanwhile is kept. A member of a
      // pool whose workflow is gone (an earlier image's, a renamed host's) too: no start claims from it any more.
      if (input.pool) return !!(await deps.runtime.pool?.sibling(input.pool.name).retire(input.pool.memberId));
      return deps.runtime.remove(input.conversationId);
    },
  };
}
