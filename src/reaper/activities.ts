// The orphan reaper's activities: find the labelled runtimes whose conversation workflow is closed or absent, and
// remove them. A conversation's workflow is the only owner of its runtime; without one, nothing will ever remove it.
import { WorkflowNotFoundError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ConversationStatusKey, conversationWorkflowId, poolWorkflowId } from '../shared/constants';
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

/** What a sandbox's owner says of it: its workflow's status, and for an open conversation its status and host. */
interface OwnerView {
  /** The owning workflow's status ('RUNNING' while open), or NOT_FOUND: the conversation's, or a pool member's pool's. */
  status: string;
  /** The conversation's own status (search attribute ConversationStatus). */
  conversationStatus?: string;
  /** The host its sandbox is placed on (memo), with sandbox hosts. */
  sandboxHost?: string;
}

async function ownerOf(conversationId: string, pool?: { name: string }): Promise<OwnerView> {
  if (!conversationId && !pool) return { status: 'NOT_FOUND' };
  const id = pool ? poolWorkflowId(pool.name) : conversationWorkflowId(conversationId);
  try {
    const d = await Context.current().client.workflow.getHandle(id).describe();
    const host = d.memo?.sandboxHost;
    return {
      status: d.status.name,
      conversationStatus: d.typedSearchAttributes.get(ConversationStatusKey),
      ...(typeof host === 'string' && { sandboxHost: host }),
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND' };
    throw err;
  }
}

/**
 * What the reaper does with a sandbox: nothing (its open conversation owns it); remove it (no open conversation, or
 * its conversation's sandbox is on another host: a leftover of a placement moved away from this one); or stop it (its
 * conversation is PAUSED, yet it runs: a pause its host's worker never picked up, as when the host was lost).
 */
function verdict(o: OwnerView, r: { state: string }, hostId: string | undefined): 'keep' | 'remove' | 'stop' {
  if (o.status !== 'RUNNING') return 'remove';
  if (hostId && o.sandboxHost && o.sandboxHost !== hostId) return 'remove';
  if (o.conversationStatus === 'PAUSED' && r.state === 'running') return 'stop';
  return 'keep';
}

export function createReaperActivities(deps: { runtime: RuntimeProvider; hostId?: string; now?: () => number }) {
  const now = deps.now ?? Date.now;
  return {
    async findOrphanRuntimes(input: FindOrphansInput): Promise<FindOrphansResult> {
      const runtimes = await deps.runtime.list();
      const result: FindOrphansResult = { seen: runtimes.length, owned: 0, young: 0, orphans: [] };
      for (const r of runtimes) {
        heartbeat(r.name);
        const owner = await ownerOf(r.conversationId, r.pool);
        const action = verdict(owner, r, deps.hostId);
        if (action === 'keep') {
          result.owned++;
          continue;
        }
        const ageMs = now() - Date.parse(r.createdAt);
        if (action === 'remove' && ageMs < input.graceMs) {
          result.young++;
          continue;
        }
        result.orphans.push({
          conversationId: r.conversationId,
          ...(r.pool && { pool: r.pool }),
          runtimeId: r.runtimeId,
          name: r.name,
          workflowStatus: owner.status,
          ageMs,
        });
      }
      return result;
    },

    /**
     * Remove one orphan (or stop a PAUSED conversation's running sandbox), checking again first: a start of the same
     * conversation since the scan owns it now. Returns false when the runtime is gone already or has an owner again.
     */
    async removeOrphanRuntime(input: {
      conversationId: string;
      pool?: { name: string; memberId: string };
    }): Promise<boolean | 'stopped'> {
      // An unclaimed pool member is retired by its pool's lock protocol: one claimed meanwhile is kept. A member of a
      // pool whose workflow is gone (an earlier image's, a renamed host's) too: no start claims from it any more.
      if (input.pool) {
        if ((await ownerOf('', input.pool)).status === 'RUNNING') return false;
        return !!(await deps.runtime.pool?.sibling(input.pool.name).retire(input.pool.memberId));
      }
      // Gone meanwhile: still removed (its volume and lock may be left).
      const r = (await deps.runtime.inspect(input.conversationId)) ?? { state: 'gone' };
      const action = verdict(await ownerOf(input.conversationId), r, deps.hostId);
      if (action === 'keep') return false;
      if (action === 'stop') {
        await deps.runtime.pause(input.conversationId);
        return 'stopped';
      }
      return deps.runtime.remove(input.conversationId);
    },
  };
}
