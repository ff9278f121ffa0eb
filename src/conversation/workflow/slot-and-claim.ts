// A start's slot and its pooled sandbox, asked for at once. A claim starts nothing new: the member already runs, with
// nothing of anyone in it until the nested set-up (after the slot), so it need not wait for the user's slot. A cold
// create does wait: it would run a new sandbox of the user before the slot has paused the user's oldest conversation.
import { isCancellation, patched } from '@temporalio/workflow';
import type { CreatedRuntime } from '../activities/runtime';
import { describeCause } from './failures';
import { CLAIM_BESIDE_SLOT_PATCH } from './patches';
import { runtimeSpec, type Run } from './run';

/**
 * Take the user's slot (`acquire`) and, on this worker's engine when a pool member can serve the request, claim one
 * beside it: both activities, scheduled by one workflow task. `undoClaim` is called before the claim is asked for (a
 * claim interrupted half-way may still have taken a member). Returns the claimed sandbox, or undefined (createRuntime
 * runs after the slot). A refused slot throws once the claim has settled; the bring-up's undo then removes what was
 * claimed (the pool refills). A claim that fails is left to createRuntime, which adopts a member it took or creates the
 * sandbox, and reports. The slot is never a local activity: it waits for the user's registry, another workflow whose
 * tasks need the worker's workflow task slots, which starts holding theirs open would starve.
 */
export async function slotAndClaim(
  r: Run,
  acquire: () => Promise<void>,
  undoClaim: () => void,
): Promise<CreatedRuntime | undefined> {
  if (!patched(CLAIM_BESIDE_SLOT_PATCH)) return void (await acquire());
  const spec = runtimeSpec(r);
  // A quick local look first: with sandbox hosts, as before; a request a member cannot serve claims nothing.
  const where = await r.acts.whereSandbox(spec);
  if (!where.here) return void (await acquire());
  r.here = true;
  if (!where.canClaim) return void (await acquire());
  undoClaim();
  r.conv.setStep('acquireSession', 'validating settings; claiming a pooled sandbox beside');
  const [slot, claim] = await Promise.allSettled([acquire(), r.acts.claimRuntime(spec)]);
  if (slot.status === 'rejected') throw slot.reason;
  if (claim.status === 'fulfilled') return claim.value ?? undefined;
  if (isCancellation(claim.reason)) throw claim.reason; // a close: the bring-up undoes both
  r.conv.warn(
    `claiming a pooled sandbox beside the slot failed (${describeCause(claim.reason).message}); creating it now`,
  );
  return undefined;
}
