// A start's slot and its pooled sandbox, asked for at once. A claim starts nothing new: the member already runs, with
// nothing of anyone in it until the nested set-up (after the slot), so it need not wait for the user's slot. A cold
// create does wait: it would run a new sandbox of the user before the slot has paused the user's oldest conversation.
import { isCancellation, patched } from '@temporalio/workflow';
import type { CreatedRuntime } from '../activities/runtime';
import { describeCause } from './failures';
import { ONE_TASK_START_PATCH } from './patches';
import { runtimeSpec, type Run } from './run';

/**
 * Take the user's slot (`acquire`, given the activities to call it with) and, when the pool has a ready sandbox this
 * start can take, claim one beside it. With the sandbox on this worker's engine (ONE_TASK_START_PATCH) both are local
 * activities (`r.here`). `undoClaim` is called before the claim is asked for (a claim interrupted half-way may still
 * have taken a member). Returns the claimed sandbox, or undefined (createRuntime runs after the slot, as before). A
 * refused slot throws once the claim has settled; the bring-up's undo then removes what was claimed (the pool refills).
 * A claim that fails is left to createRuntime, which adopts a member it took or creates the sandbox, and reports.
 */
export async function slotAndClaim(
  r: Run,
  acquire: (via: Pick<Run['acts'], 'acquireSession'>) => Promise<void>,
  undoClaim: () => void,
): Promise<CreatedRuntime | undefined> {
  if (!patched(ONE_TASK_START_PATCH)) return void (await acquire(r.acts));
  const spec = runtimeSpec(r);
  // A quick local look first: with sandbox hosts, as before; a request a member cannot serve claims nothing.
  const where = await r.acts.whereSandbox(spec);
  if (!where.here) return void (await acquire(r.acts));
  r.here = true;
  if (!where.canClaim) return void (await acquire(r.acts.here));
  undoClaim();
  r.conv.setStep('acquireSession', 'validating settings; claiming a pooled sandbox beside');
  const [slot, claim] = await Promise.allSettled([acquire(r.acts.here), r.acts.here.claimRuntime(spec)]);
  if (slot.status === 'rejected') throw slot.reason;
  if (claim.status === 'fulfilled') return claim.value ?? undefined;
  if (isCancellation(claim.reason)) throw claim.reason; // a close: the bring-up undoes both
  r.conv.warn(
    `claiming a pooled sandbox beside the slot failed (${describeCause(claim.reason).message}); creating it now`,
  );
  return undefined;
}
