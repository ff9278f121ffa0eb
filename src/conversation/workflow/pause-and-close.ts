// Pausing (the sandbox stopped and kept, the slot given back) and closing (the nested conversation stopped, the
// sandbox removed, the slot given back, the resume schedules deleted).
import { CancellationScope, patched } from '@temporalio/workflow';
import { ErrorType } from '../../errors';
import { closeFailed, describeCause, pauseFailed, type Cause } from './failures';
import { CLOSE_DELETES_SCHEDULES_PATCH, HOST_LOST_PAUSES_PATCH } from './patches';
import type { Run } from './run';
import { releaseOrFail } from './slot';

/** Pause: RUNNING → PAUSED. A pause that fails leaves it RUNNING, and the pause update that asked gets the failure. */
export async function pause(r: Run, reason: string): Promise<void> {
  const { conv, acts } = r;
  conv.setStep('pausing', reason);
  try {
    await acts.pauseRuntime({ conversationId: conv.conversationId });
  } catch (err) {
    const cause = describeCause(err);
    conv.pauseReason = undefined;
    // Nothing on the host picked the pause up: the loop pauses the conversation without it (pauseForLostHost).
    if (noteLostHost(r, 'pauseRuntime', cause)) return;
    conv.warn(`pause failed, still running: ${cause.message}`);
    conv.pauseFailures.record(pauseFailed(cause));
    conv.setStep('running', 'waiting for messages');
    return;
  }
  if (!(await releaseOrFail(r, 'pausing'))) return;
  r.metrics.pauses.add(1);
  conv.becamePaused(reason);
}

/**
 * A running conversation's step was not picked up by its host (SandboxHostLost): remember it for the loop, which
 * then pauses (pauseForLostHost). Returns whether it did; runs recorded before patch HOST_LOST_PAUSES_PATCH stay
 * RUNNING as they did.
 */
export function noteLostHost({ conv }: Run, step: string, cause: Cause): boolean {
  if (cause.type !== ErrorType.SandboxHostLost || !patched(HOST_LOST_PAUSES_PATCH)) return false;
  conv.hostLost = { step, cause };
  return true;
}

/**
 * The host is gone: RUNNING → PAUSED with its error, the slot given back. The sandbox and its data stay on that host
 * (they cannot move): a message or a resume tries it again, and works once the host's worker is back.
 */
export async function pauseForLostHost(r: Run, lost: { step: string; cause: Cause }): Promise<void> {
  r.conv.warn(`sandbox host ${r.conv.info.sandboxHost} lost; paused: ${lost.cause.message}`);
  if (!(await releaseOrFail(r, 'pausing'))) return;
  r.conv.pausedByLostHost(lost.step, lost.cause);
}

/** Close: → STOPPED, or ERROR when the sandbox could not be removed. Nothing outlives the conversation. */
export async function close(r: Run): Promise<void> {
  const { conv } = r;
  if (conv.terminal()) return;
  const wasRunning = conv.info.status === 'RUNNING';
  const removeFailure = await CancellationScope.nonCancellable(() => tearDown(r, wasRunning));
  conv.failPending(conv.closedFailure());
  if (removeFailure) {
    // The container may still exist: say so loudly rather than report a clean STOPPED.
    await conv.endInError(
      'closing',
      { type: removeFailure.type, message: `removeRuntime: ${removeFailure.message}` },
      closeFailed(conv.conversationId, conv.info.runtimeId, removeFailure),
    );
  }
  conv.becameStopped('closed');
}

/** The close's steps; returns why the sandbox could not be removed, if it could not. */
async function tearDown(r: Run, wasRunning: boolean): Promise<Cause | undefined> {
  const { conv, acts } = r;
  const { conversationId, runtime } = conv;
  conv.setStep('closing', `closing${conv.closeReason ? `: ${conv.closeReason}` : ''}`);
  if (wasRunning && runtime) {
    try {
      await acts.stopConversation(conv.nestedTarget());
    } catch (err) {
      conv.warn(`stopConversation failed: ${describeCause(err).message}`);
    }
  }
  let removeFailure: Cause | undefined;
  try {
    await acts.removeRuntime({ conversationId });
  } catch (err) {
    removeFailure = describeCause(err);
  }
  // The host's room is given back either way: a sandbox left on a lost host is that host's reaper's (docs/hosts.md).
  if (conv.info.sandboxHost) {
    await acts
      .releaseSandbox({ conversationId })
      .catch((err) => conv.warn(`releaseSandbox failed: ${describeCause(err).message}`));
  }
  // A paused conversation already gave its session back.
  if (wasRunning) await releaseOrFail(r, 'closing');
  // Nothing may resume a closed conversation later.
  if (patched(CLOSE_DELETES_SCHEDULES_PATCH)) {
    await acts
      .deleteResumeSchedules({ conversationId })
      .catch((err) => conv.warn(`deleteResumeSchedules failed: ${describeCause(err).message}`));
  }
  return removeFailure;
}
