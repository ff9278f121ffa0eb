// How ConversationClient reads what the server and the workflow answer: which update failures mean "not now, send
// again", and the failures a caller sees, unwrapped to their stable type and message.
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ConversationError, ErrorType } from '../errors';
import { temporalRefusal } from '../temporal-connection';

/** How often sendMessage tries again while a conversation continues as new or the server is busy (about 40 s in all). */
export const CONTINUE_AS_NEW_RETRIES = 100;

/**
 * An update the server aborted because its run was closing (continue-as-new) before the update completed: it did not
 * take effect in that run, and the same message ID sent again lands on the next run, which deduplicates it.
 */
function abortedByRunSwitch(err: unknown): boolean {
  return /update was aborted|workflow is closing/i.test(messagesOf(err));
}

/**
 * The workflow task that carried the update failed as the server completed it (e.g. the dev server's database busy
 * under load): the server aborts the update ("unexpected workflow task failure", WorkflowNotReady) without retrying it
 * itself. It took no effect (the task's effects are discarded), so the same message ID sent again is safe: the workflow
 * deduplicates by it. Seen once in a fresh-clone test run, in a test that sends an update right after continue-as-new.
 */
function workflowTaskFailed(err: unknown): boolean {
  return /unexpected workflow task failure|WorkflowNotReady/i.test(messagesOf(err));
}

/**
 * The server turned the update away because too many updates to this workflow are in flight
 * (`history.maxInFlightUpdates`; nestor's dev server raises it, other servers may not): nothing was admitted, so
 * sending it again later is safe.
 */
function tooManyInFlight(err: unknown): boolean {
  return /concurrent in-flight updates|maxInFlightUpdates|RESOURCE_EXHAUSTED/i.test(messagesOf(err));
}

function messagesOf(err: unknown): string {
  return [err, (err as { cause?: unknown })?.cause]
    .map((e) => (e instanceof Error ? `${e.name} ${e.message}` : ''))
    .join(' ');
}

/** Whether an update failure is the server's or the run's "not now" (docs/contract.md: what a caller must retry). */
export function retryableUpdateFailure(err: unknown): boolean {
  const continuing =
    err instanceof WorkflowUpdateFailedError &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === ErrorType.ContinuingAsNew;
  return continuing || abortedByRunSwitch(err) || tooManyInFlight(err) || workflowTaskFailed(err);
}

/** Unwrap update/workflow failures to the ApplicationFailure underneath, so callers see `type` and `message`. */
export function unwrapped<T>(call: Promise<T>): Promise<T> {
  return call.catch(unwrap);
}

export function unwrap(err: unknown): never {
  let e: unknown = err;
  if (e instanceof WorkflowUpdateFailedError || e instanceof WorkflowFailedError) e = e.cause;
  if (e instanceof ApplicationFailure) throw new ConversationError(e.type ?? 'Error', e.message, e.details?.[0]);
  // This client's codec could not open the worker's answer: name the keys, not "Workflow Update failed".
  const sealed = /payload encrypted with key '([^']*)', which is not among the configured keys \(([^)]*)\)/.exec(
    messagesOf(err),
  );
  const refused = temporalRefusal(err);
  if (refused)
    throw new ConversationError(
      ErrorType.TemporalAccessDenied,
      `Temporal refused the call (${refused}); check the permissions of this client's TEMPORAL_API_KEY (or client certificate) on the namespace: start, message, pause, resume and close need write, status and list need read`,
    );
  if (sealed) {
    throw new ConversationError(
      ErrorType.EncryptionKeyMismatch,
      `the worker's answer is encrypted with key '${sealed[1]}', which this client does not have (it has: ${sealed[2]}); give the client and the worker a shared key in NESTOR_ENCRYPTION_KEYS`,
      { workerKeyId: sealed[1], clientKeyIds: sealed[2].split(', ') },
    );
  }
  throw err;
}
