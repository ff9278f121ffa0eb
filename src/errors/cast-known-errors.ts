// One place where what an activity throws becomes a typed failure: nestor's own NestorErrors and the providers' known
// errors leave every activity as ApplicationFailures with a stable type, the step's name, the cause and what to check
// (the hint of the adapter that knows it, handed in as KnownErrors). Registered as an activity interceptor by every
// worker.
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import { NestorError, type Hint } from '.';

/**
 * What the adapters know of their failures, handed in by the composition root (activities.ts): the hint of what to
 * check per failure type, and casts that name a library's own errors (e.g. Docker's) as NestorErrors.
 */
export interface KnownErrors {
  hints: Partial<Record<string, Hint>>;
  casts: Array<(err: unknown) => NestorError | undefined>;
}

/**
 * Turn any thrown value into an ApplicationFailure with a stable type; unknown errors stay as they are (retryable).
 * The message says the step, the cause and what to check.
 */
export function toApplicationFailure(
  err: unknown,
  known: KnownErrors,
  step?: string,
  conversationId?: string,
): unknown {
  if (err instanceof ApplicationFailure) return err;
  const cast = err instanceof NestorError ? err : (known.casts.map((c) => c(err)).find(Boolean) ?? err);
  if (!(cast instanceof NestorError)) return err;
  const hint = known.hints[cast.type]?.(conversationId);
  return ApplicationFailure.create({
    message: (step ? `${step}: ` : '') + cast.message + (hint ? `; check ${hint}` : ''),
    type: cast.type,
    nonRetryable: !cast.retryable,
    details: [cast.details],
  });
}

/** The activity interceptor: every failure an activity throws leaves it through toApplicationFailure. */
export function castKnownErrors(known: KnownErrors): (ctx: Context) => ActivityInterceptors {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          const conversationId = (input.args[0] as { conversationId?: unknown } | undefined)?.conversationId;
          throw toApplicationFailure(
            err,
            known,
            ctx.info.activityType,
            typeof conversationId === 'string' ? conversationId : undefined,
          );
        }
      },
    },
  });
}
