// The conversation's side of its user's slot registry (UserSessions): telling it of activity, and giving the slot
// back while pausing or closing.
import { CancellationScope, getExternalWorkflowHandle, log, patched } from '@temporalio/workflow';
import { touchSlotSignal, userSessionsWorkflowId } from '../../user-sessions/messages';
import { describeCause, sessionReleaseFailed } from './failures';
import { ASYNC_TOUCH_PATCH } from './patches';
import type { Run } from './run';

/**
 * Tell the user's slot registry this conversation is active (or now running); it may not exist, which is fine.
 * Fire and forget: waiting for the signal's delivery held the next message back by a server round trip. Runs
 * recorded before this change waited, and replay the same way (patch ASYNC_TOUCH_PATCH).
 */
export async function touch({ conv }: Run, running?: boolean): Promise<void> {
  const sent = getExternalWorkflowHandle(userSessionsWorkflowId(conv.userId))
    .signal(touchSlotSignal, { conversationId: conv.conversationId, running })
    .catch(() => {
      /* no registry (slots disabled): nothing to tell */
    });
  if (!patched(ASYNC_TOUCH_PATCH)) await sent;
}

/**
 * Give the slot back while pausing or closing. If that fails after its retries the conversation cannot be sure
 * it holds no slot: it removes its sandbox (nothing outlives it) and ends in ERROR, naming the cause.
 */
export async function releaseOrFail({ conv, acts }: Run, step: 'pausing' | 'closing'): Promise<true> {
  const { conversationId, userId } = conv;
  try {
    await acts.releaseSession({ conversationId, userId });
    return true;
  } catch (err) {
    const cause = describeCause(err);
    log.warn('releaseSession failed', { step, error: cause });
    await CancellationScope.nonCancellable(() =>
      acts
        .removeRuntime({ conversationId })
        .catch((rerr) => conv.warn(`removeRuntime failed: ${describeCause(rerr).message}`)),
    );
    return conv.endInError(step, cause, sessionReleaseFailed(conversationId, userId, step, cause));
  }
}
