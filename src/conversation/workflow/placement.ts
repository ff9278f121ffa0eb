// Where a conversation's sandbox runs: with sandbox hosts, a start asks the host registry for a host, creates the
// sandbox there, and is placed again elsewhere if that host's worker never picks the create up. Without them, the
// placement answers "here" at once and nothing changes.
import { ApplicationFailure, patched } from '@temporalio/workflow';
import { HOST_BEFORE_SLOT_PATCH, UNPLACED_UNDOES_NOTHING_PATCH } from './patches';
import { ErrorType } from '../../errors';
import type { CreatedRuntime } from '../activities/runtime';
import { pickupTimedOut } from './failures';
import { placeOn, type Run } from './run';

/** Hosts a start tries before it gives up: each one that does not pick up its createRuntime is left for the next. */
const PLACEMENT_TRIES = 3;

/**
 * Ask where the sandbox goes (without sandbox hosts: here, at once), then create it there. A host whose worker does
 * not pick up the create within the bound is reported lost (the registry stops placing there) and the start is
 * placed again elsewhere: nothing was made on it, since no worker there ran the create.
 */
export async function placeAndCreate(r: Run, create: () => Promise<CreatedRuntime>): Promise<CreatedRuntime> {
  const { conversationId } = r.conv;
  const exclude: string[] = [];
  for (;;) {
    // Until the first answer, nothing can have been made anywhere (undoRuntime reads this).
    if (!exclude.length) r.placement = 'asking';
    const placement = await r.acts.placeSandbox({ conversationId, exclude });
    r.placement = 'answered';
    placeOn(r, placement);
    if (!placement) return create();
    r.conv.setStep('createRuntime', `creating the container on host ${placement.hostId}`);
    try {
      return await create();
    } catch (err) {
      if (!pickupTimedOut(err)) throw err;
      const reason = `its worker did not pick up createRuntime within ${r.pickupTimeoutMs} ms`;
      r.conv.warn(`sandbox host ${placement.hostId} lost: ${reason}; placing the sandbox again`);
      await r.acts.reportHostLost({ hostId: placement.hostId, reason });
      exclude.push(placement.hostId);
      if (exclude.length >= PLACEMENT_TRIES)
        throw ApplicationFailure.create({
          type: ErrorType.SandboxHostLost,
          message: `${exclude.length} sandbox hosts did not pick up createRuntime within ${r.pickupTimeoutMs} ms each (${exclude.join(', ')}); check their host workers (nestor host-worker) and engines`,
          nonRetryable: true,
        });
    }
  }
}

/** Undo the runtime step: remove or stop the sandbox; a removed one gives its host placement back. */
export async function undoRuntime(r: Run, undo: 'removeRuntime' | 'pauseRuntime'): Promise<void> {
  const { conversationId } = r.conv;
  // A start refused or closed before any host was chosen made no sandbox, here or on a host.
  if (r.placement === 'asking' && patched(UNPLACED_UNDOES_NOTHING_PATCH)) return;
  try {
    await r.acts[undo]({ conversationId });
  } finally {
    // Given back even when the removal failed (a lost host): what is left there is that host's reaper's.
    if (undo === 'removeRuntime' && r.conv.info.sandboxHost) await r.acts.releaseSandbox({ conversationId });
  }
}

/**
 * A resume goes where the sandbox is. The registry is told so (it may have been restarted) and says whether the host
 * is draining (the resume stays: the data is on that host's volume and cannot move, which the conversation says) or
 * lost (the resume will not be picked up there: it fails with SandboxHostLost and the conversation stays PAUSED).
 */
export async function confirmHost(r: Run, o: { failIfLost?: boolean } = {}): Promise<void> {
  const hostId = r.conv.info.sandboxHost;
  if (!hostId) return;
  const placement = await r.acts.placeSandbox({ conversationId: r.conv.conversationId, current: hostId });
  if (placement?.draining)
    r.conv.warn(
      `sandbox host ${hostId} is draining; resumed there anyway: the conversation's data is on that host's local volume and cannot move`,
    );
  if (placement?.lost && o.failIfLost)
    throw ApplicationFailure.create({
      type: ErrorType.SandboxHostLost,
      message: `sandbox host ${hostId} is lost (${placement.lost}); the conversation stays PAUSED with its data there until that host's worker (nestor host-worker) is back`,
      nonRetryable: true,
    });
  if (placement?.lost) r.conv.warn(`sandbox host ${hostId} was reported lost (${placement.lost}); trying it anyway`);
}

/**
 * A resume goes where its sandbox is: a lost host fails it now, before a slot is taken (and maybe another conversation
 * of the user paused for it). Returns whether the host was confirmed (runs recorded before the patch confirm later).
 */
export async function confirmHostFirst(r: Run): Promise<boolean> {
  if (!r.conv.info.sandboxHost || !patched(HOST_BEFORE_SLOT_PATCH)) return false;
  r.conv.setStep('resumeRuntime', `confirming sandbox host ${r.conv.info.sandboxHost}`);
  await confirmHost(r, { failIfLost: true });
  return true;
}
