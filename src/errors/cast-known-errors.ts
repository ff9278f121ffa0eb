// One place where what an activity throws becomes a typed failure: nestor's own NestorErrors and the providers' known
// errors leave every activity as ApplicationFailures with a stable type, the step's name, the cause and what to check
// (the hint of the adapter that knows it). Registered as an activity interceptor by every worker.
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import { NestorError, type Hint } from '.';
import { NESTED_HINTS } from '../nested/hints';
import { RUNTIME_HINTS, castDockerError } from '../runtime/hints';

const HINTS: Partial<Record<string, Hint>> = { ...RUNTIME_HINTS, ...NESTED_HINTS };

/** What an operator should look at for a failure of this type, or undefined when the message already says it. */
export function whatToCheck(type: string, conversationId?: string): string | undefined {
  return HINTS[type]?.(conversationId);
}

/**
 * Turn any thrown value into an ApplicationFailure with a stable type; unknown errors stay as they are (retryable).
 * The message says the step, the cause and what to check.
 */
export function toApplicationFailure(err: unknown, step?: string, conversationId?: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  const known = castDockerError(err) ?? err;
  if (!(known instanceof NestorError)) return err;
  const hint = whatToCheck(known.type, conversationId);
  return ApplicationFailure.create({
    message: (step ? `${step}: ` : '') + known.message + (hint ? `; check ${hint}` : ''),
    type: known.type,
    nonRetryable: !known.retryable,
    details: [known.details],
  });
}

/** The activity interceptor: every failure an activity throws leaves it through toApplicationFailure. */
export function castKnownErrorsInterceptor(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          const conversationId = (input.args[0] as { conversationId?: unknown } | undefined)?.conversationId;
          throw toApplicationFailure(
            err,
            ctx.info.activityType,
            typeof conversationId === 'string' ? conversationId : undefined,
          );
        }
      },
    },
  };
}
