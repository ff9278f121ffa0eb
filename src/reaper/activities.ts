// The orphan reaper's activities: find the labelled runtimes whose conversation workflow is closed or absent, and
// remove them. A conversation's workflow is the only owner of its runtime; without one, nothing will ever remove it.
import { WorkflowNotFoundError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { conversationWorkflowId } from '../shared/constants';
import type { RuntimeProvider } from '../runtime/provider';
import { heartbeat } from '../shared/activity-context';

export interface FindOrphansInput {
  /** Runtimes younger than this are left alone (their conversation may be starting again). */
  graceMs: number;
}

export interface OrphanRuntime {
  conversationId: string;
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

/** The conversation workflow's status ('RUNNING' while open), or NOT_FOUND. */
async function workflowStatus(conversationId: string): Promise<string> {
  try {
    return (await Context.current().client.workflow.getHandle(conversationWorkflowId(conversationId)).describe()).status
      .name;
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
        const status = r.conversationId ? await workflowStatus(r.conversationId) : 'NOT_FOUND';
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
    async removeOrphanRuntime(input: { conversationId: string }): Promise<boolean> {
      if ((await workflowStatus(input.conversationId)) === 'RUNNING') return false;
      return deps.runtime.remove(input.conversationId);
    },
  };
}
