// How a bring-up that did not reach RUNNING ends: a start closed while starting (STOPPED) or failed (ERROR, its typed
// failure thrown), a resume back to PAUSED with its failure recorded for the callers that waited.
import { allHandlersFinished, condition, log } from '@temporalio/workflow';
import type { StartStep } from '../../shared/constants';
import { resumeFailed, startFailed, type Cause } from './failures';
import type { Run } from './run';

export type StepName = StartStep | 'prepareRepository' | 'resumeRuntime';
/** How a bring-up ended: RUNNING; interrupted by a close; or (a resume only) failed and back to PAUSED. */
export type Outcome = 'running' | 'closed' | 'paused';

/** A start that did not reach RUNNING: closed while starting (STOPPED), or failed (ERROR, the typed failure thrown). */
export async function startEnded(r: Run, step: StepName, cause: Cause, cancelledByClose: boolean): Promise<Outcome> {
  const { conv } = r;
  if (cancelledByClose) {
    conv.becameStopped(`closed while starting${conv.closeReason ? `: ${conv.closeReason}` : ''}`);
    conv.failPending(conv.closedFailure());
    return 'closed';
  }
  conv.info.lastError = { type: cause.type, step, message: cause.message };
  conv.startFailure = startFailed(conv.conversationId, step, cause);
  r.metrics.startFailures.add(1, { step });
  log.warn('start failed', { step, error: cause });
  conv.setStatus('ERROR');
  conv.setStep('done', `start failed at ${step}`);
  conv.failPending(conv.startFailure);
  await condition(allHandlersFinished);
  throw conv.startFailure;
}

/** A resume that did not reach RUNNING: PAUSED again (the close path removes the sandbox if a close interrupted it). */
export function resumeEnded(r: Run, step: StepName, cause: Cause, cancelledByClose: boolean): Outcome {
  const { conv } = r;
  conv.info.pausedAt = new Date().toISOString();
  conv.setStatus('PAUSED');
  if (cancelledByClose) return 'closed';
  conv.info.lastError = { type: cause.type, step, message: cause.message };
  conv.info.pauseReason = `resume failed at ${step}`;
  const failure = resumeFailed(conv.conversationId, step, cause);
  conv.resumeFailures.record(failure);
  r.metrics.resumeFailures.add(1, { step });
  log.warn('resume failed', { step, error: cause });
  conv.resumeRequested = false;
  conv.setStep('paused', `resume failed at ${step}`);
  conv.failPending(failure);
  return 'paused';
}
