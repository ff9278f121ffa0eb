// Delivering messages, at most once, in order; and reading the agent's activity when the idle timer runs out.
import { ActivityFailure, log, patched } from '@temporalio/workflow';
import { ErrorType } from '../../errors';
import { describeCause } from './failures';
import { DELIVERY_CURSOR_PATCH, IDLE_COUNTS_AGENT_PATCH, RECOVER_SANDBOX_PATCH } from './patches';
import { noteLostHost } from './pause-and-close';
import type { Run } from './run';
import { touch } from './slot';
import type { PendingMessage } from './state';

/**
 * Deliver the oldest undelivered message, at most once: the workflow counts the deliveries it scheduled for it, so
 * any delivery after the first (a retry after a sandbox recovery, or of any kind) looks for an earlier post of it
 * after the cursor taken before its first one.
 */
export async function deliver(r: Run, next: PendingMessage): Promise<void> {
  const { conv, acts } = r;
  conv.setStep('running', `delivering message ${next.id}`);
  const target = conv.nestedTarget();
  try {
    if (next.lookFrom === undefined) {
      next.lookFrom = patched(DELIVERY_CURSOR_PATCH)
        ? (await acts.markDeliveryCursor(target)).newestEventId
        : conv.cursor;
    }
    const mayHavePosted = next.posts > 0;
    next.posts++;
    const res = await acts.sendEvent({
      ...target,
      content: next.input.content,
      imageUrls: next.input.imageUrls,
      afterEventId: next.lookFrom,
      mayHavePosted,
    });
    conv.cursor = Math.max(conv.cursor, res.newestEventId ?? res.eventId ?? conv.cursor);
    conv.delivered(next, res.eventId, res.nestedEventId);
    r.metrics.messagesDelivered.add(1);
  } catch (err) {
    const cause = describeCause(err);
    // The sandbox stopped answering, or another answers at its address with another key: its container was
    // restarted (e.g. with the Docker daemon) and got a new port. Bring it back as a resume would (which reads the
    // address and key again), then deliver this message again. Once per message.
    const lost = cause.type === ErrorType.NestedUnavailable || cause.type === ErrorType.NestedUnauthorized;
    if (lost && !next.recovered && patched(RECOVER_SANDBOX_PATCH)) {
      next.recovered = true;
      conv.sandboxLost = cause.message;
      log.warn('sandbox unreachable; recovering it', { step: 'sendEvent', error: cause });
      return;
    }
    // Its host's worker is gone: this message fails, and the conversation pauses next (nothing there answers).
    noteLostHost(r, err instanceof ActivityFailure ? err.activityType : 'sendEvent', cause);
    conv.deliveryFailed(next, { type: cause.type, message: `sendMessage failed: ${cause.message}` });
  }
  conv.setStep('running', 'waiting for messages');
  // After the sender's answer, so its update completes in this same workflow task, not one signal later.
  if (next.ack) await touch(r);
}

/**
 * The idle timer ran out: idle only if the agent is not at work and wrote nothing lately. Returns how long to wait
 * still (0 or less: pause now). A nested server that cannot say counts as idle: pausing it loses nothing.
 */
export async function stillIdle({ conv, acts, idleTimeoutMs }: Run): Promise<number> {
  const runtime = conv.runtime;
  if (!runtime || !patched(IDLE_COUNTS_AGENT_PATCH)) return 0;
  try {
    const a = await acts.conversationActivity(conv.nestedTarget());
    if (a.agentState === 'running') return idleTimeoutMs;
    if (a.lastEventAgoMs !== undefined && a.lastEventAgoMs < idleTimeoutMs)
      return Math.max(1000, idleTimeoutMs - a.lastEventAgoMs);
  } catch (err) {
    log.warn('idle check failed; pausing', { error: describeCause(err) });
  }
  return 0;
}
