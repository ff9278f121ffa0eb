// The failures StartConversation reports, built in one place from the catalogue (errors/): each says which step
// failed, why, and what to check, and carries the step and cause type in its details.
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { z } from 'zod';
import { ErrorType } from '../../errors';
import { workflowSchemas } from '../../shared/workflow-preload';
import { userSessionsWorkflowId } from '../../user-sessions/messages';

/** A failed step's cause, as a type name and a message, without stack or payloads. */
export interface Cause {
  type: string;
  message: string;
}

/** Why a message's delivery failed, kept so that the same message ID sent again gets the same answer. */
export type DeliveryFailure = Cause;

/** The cause of a failed step, as a type name and a message, without stack or payloads. */
export function describeCause(err: unknown): Cause {
  if (pickupTimedOut(err))
    return {
      type: ErrorType.SandboxHostLost,
      message: `the sandbox host's worker did not pick up ${(err as ActivityFailure).activityType} in time: the host's worker or its Docker engine is gone (nestor host list); the sandbox and its data are on that host`,
    };
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'Error', message: e.message };
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: 'Error', message: String(e) };
}

/** A host-bound step no worker picked up within its schedule-to-start bound: the host is gone. */
export function pickupTimedOut(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

/** The failure of an input that does not satisfy its schema: every bad field named, nothing done. */
export function invalidInput(what: string, error: z.ZodError): ApplicationFailure {
  return ApplicationFailure.create({
    message: `invalid ${what}: ${workflowSchemas().formatIssues(error)}`,
    type: ErrorType.InvalidInput,
    nonRetryable: true,
    details: [{ issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) }],
  });
}

/** The answer to a message whose delivery failed (again, for the same message ID). */
export function deliveryFailure(f: DeliveryFailure): ApplicationFailure {
  return ApplicationFailure.create({ message: f.message, type: f.type, nonRetryable: true });
}

/** The conversation is closed (or failed): nothing more can be asked of it. */
export function closedFailure(conversationId: string, failed: boolean): ApplicationFailure {
  return ApplicationFailure.create({
    message: `conversation ${conversationId} is ${failed ? 'failed' : 'closed'}`,
    type: ErrorType.ConversationClosed,
    nonRetryable: true,
  });
}

/** A start that failed at `step`. */
export function startFailed(conversationId: string, step: string, cause: Cause): ApplicationFailure {
  return ApplicationFailure.create({
    message: `${step} failed: ${cause.message}`,
    type: ErrorType.StartFailed,
    nonRetryable: true,
    details: [{ conversationId, step, causeType: cause.type }],
  });
}

/** A resume that failed at `step`: the conversation stays PAUSED and can be resumed again. */
export function resumeFailed(conversationId: string, step: string, cause: Cause): ApplicationFailure {
  return ApplicationFailure.create({
    message: `resume failed: ${step} failed: ${cause.message}`,
    type: ErrorType.ResumeFailed,
    nonRetryable: true,
    details: [{ conversationId, step, causeType: cause.type }],
  });
}

/** A pause that failed: the conversation stays RUNNING. */
export function pauseFailed(cause: Cause): ApplicationFailure {
  return ApplicationFailure.create({ message: `pause failed: ${cause.message}`, type: cause.type, nonRetryable: true });
}

/** The slot could not be given back while pausing or closing. */
export function sessionReleaseFailed(
  conversationId: string,
  userId: string,
  step: string,
  cause: Cause,
): ApplicationFailure {
  return ApplicationFailure.create({
    message: `${step} failed: releaseSession: ${cause.message}; check that the workflow ${userSessionsWorkflowId(userId)} runs and its worker polls the task queue`,
    type: ErrorType.SessionReleaseFailed,
    nonRetryable: true,
    details: [{ conversationId, step, causeType: cause.type }],
  });
}

/** Closing could not remove the sandbox: say so loudly rather than report a clean STOPPED. */
export function closeFailed(conversationId: string, runtimeId: string | undefined, cause: Cause): ApplicationFailure {
  return ApplicationFailure.create({
    message: `close failed: removeRuntime: ${cause.message}; remove the container named nestor-conv-${conversationId} (a sandbox from the warm pool carries its conversation only in that name and on its claim container nestor-pool-…--lock-…, labelled nestor.conversation-id=${conversationId}) by hand`,
    type: ErrorType.CloseFailed,
    nonRetryable: true,
    details: [{ conversationId, runtimeId }],
  });
}
