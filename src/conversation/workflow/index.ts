// StartConversation: one run per live conversation; the workflow ID is the lock. This file is the conversation's life
// in order: handlers → bring-up (bring-up.ts: OpenHands' start steps) → life loop (deliver, pause, resume, continue
// as new) → close. The state and its transitions are the Conversation class (state.ts); activities say how.
import { allHandlersFinished, condition, continueAsNew, patched, workflowInfo } from '@temporalio/workflow';
import { ErrorType } from '../../errors';
import type { AgentLoopInfo, StartConversationInput } from '../../shared/schemas';
import { bringUp } from './bring-up';
import { deliver, stillIdle } from './delivery';
import { checkStartInput, installHandlers } from './handlers';
import { close, pause, pauseForLostHost } from './pause-and-close';
import { VALIDATE_INPUT_PATCH } from './patches';
import { newRun, type Run } from './run';
import type { CarriedState } from './state';

export type { CarriedState, DeliveryFailure } from './state';

export async function StartConversation(
  request: StartConversationInput,
  carried?: CarriedState,
): Promise<AgentLoopInfo> {
  const { input, invalid } = checkStartInput(request);
  const r = newRun(input, carried);
  const { conv } = r;
  installHandlers(conv);

  // A start input the schema refuses: nothing is created, every caller is told each bad field. Only a new
  // conversation is judged: a continued run carries on with what its first run accepted, and a run begun before the
  // worker checked inputs replays as it ran (patch VALIDATE_INPUT_PATCH).
  if (invalid && !carried && patched(VALIDATE_INPUT_PATCH)) {
    conv.startFailure = invalid;
    await conv.endInError('input', { type: invalid.type ?? ErrorType.InvalidInput, message: invalid.message }, invalid);
  }

  if (!carried) {
    r.metrics.starts.add(1);
    if ((await bringUp(r, 'start')) === 'closed') {
      await condition(allHandlersFinished);
      return conv.publicInfo();
    }
  } else {
    conv.setStatus(conv.info.status);
    conv.setStep(conv.info.status === 'PAUSED' ? 'paused' : 'running', `continued as new (run ${conv.info.runNumber})`);
  }

  await live(r);
  await close(r);
  await condition(allHandlersFinished);
  return conv.publicInfo();
}

/** Whether this run's history is long enough to hand over to a new run. */
function continueAsNewDue(input: StartConversationInput): boolean {
  const wi = workflowInfo();
  return (
    wi.continueAsNewSuggested ||
    (input.continueAsNewAfterEvents !== undefined && wi.historyLength >= input.continueAsNewAfterEvents)
  );
}

/** The life loop: until a close, one thing at a time. Returns when the conversation is to be closed. */
async function live(r: Run): Promise<void> {
  const { conv } = r;
  let idleLeftMs = r.idleTimeoutMs;
  for (;;) {
    if (conv.closeRequested) return;
    // Hand over to a new run: turn new messages away (the client sends them again, to the new run), deliver what was
    // accepted, let every handler finish, then continue as new with the state that matters.
    conv.switching = continueAsNewDue(r.input);
    // A pause owed to a lost host is made first: the next run would not know of it.
    const owesPause = conv.pauseReason !== undefined || conv.hostLost !== undefined;
    if (conv.switching && !conv.pending() && !owesPause && !conv.resumeRequested) {
      if (allHandlersFinished()) await continueAsNew<typeof StartConversation>(r.input, conv.toCarried());
      await condition(
        () =>
          allHandlersFinished() ||
          conv.pending() ||
          conv.closeRequested ||
          conv.pauseReason !== undefined ||
          conv.resumeRequested,
      );
      continue;
    }
    if (conv.info.status === 'RUNNING') {
      const next = await whileRunning(r, idleLeftMs);
      if (next === 'closed') return;
      idleLeftMs = next;
      continue;
    }
    if ((await whilePaused(r)) === 'closed') return;
  }
}

/**
 * One turn while RUNNING, in priority order: pause for a lost host, recover a lost sandbox, pause, deliver the oldest
 * message, or wait (for any of those, or for the idle timeout to run out). Returns how long the idle timer has left,
 * or 'closed'.
 */
async function whileRunning(r: Run, idleLeftMs: number): Promise<number | 'closed'> {
  const { conv } = r;
  if (conv.hostLost) {
    await pauseForLostHost(r, conv.hostLost);
    return idleLeftMs;
  }
  if (conv.sandboxLost !== undefined) {
    conv.warn(`sandbox unreachable (${conv.sandboxLost}); recovered it`);
    conv.sandboxLost = undefined;
    r.metrics.recoveries.add(1);
    return (await bringUp(r, 'resume')) === 'closed' ? 'closed' : idleLeftMs;
  }
  if (conv.pauseReason !== undefined) {
    await pause(r, conv.pauseReason);
    return idleLeftMs;
  }
  if (conv.pending()) {
    await deliver(r, conv.queue[0]);
    return idleLeftMs;
  }
  const woke = await condition(
    () => conv.closeRequested || conv.pauseReason !== undefined || conv.pending() || continueAsNewDue(r.input),
    idleLeftMs,
  );
  // A message, a pause or a resume sets the idle timer back to the full idle timeout.
  const left = woke ? r.idleTimeoutMs : await stillIdle(r);
  if (left > 0) return left;
  conv.requestPause(`idle for ${r.idleTimeoutMs} ms`);
  return r.idleTimeoutMs;
}

/** One turn while PAUSED: a message, a resume or a waitReady brings it back. Returns 'closed' on a close. */
async function whilePaused(r: Run): Promise<'closed' | undefined> {
  const { conv } = r;
  conv.pauseReason = undefined;
  if (conv.pending() || conv.resumeRequested) {
    const outcome = await bringUp(r, 'resume');
    if (outcome === 'closed') return 'closed';
    // Counted here, not in bringUp: a recovered sandbox (above) is no resume of a paused conversation.
    if (outcome === 'running') r.metrics.resumes.add(1);
    return undefined;
  }
  await condition(() => conv.closeRequested || conv.pending() || conv.resumeRequested || continueAsNewDue(r.input));
  return undefined;
}
