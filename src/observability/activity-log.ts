// Activity interceptor: a log line when each step starts, completes or fails (with its duration), the conversation,
// the user and the step on every line the activity logs, and a heartbeat every second while it runs.
import { performance } from 'node:perf_hooks';
import type { Context } from '@temporalio/activity';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';
import { USER_ID_HEADER, conversationIdOf } from '../shared/constants';

export function activityLogInterceptor(ctx: Context): ActivityInterceptors {
  let attrs: Record<string, unknown> = { step: ctx.info.activityType };
  return {
    inbound: {
      async execute(input, next) {
        const arg = (input.args[0] ?? {}) as { conversationId?: unknown; userId?: unknown };
        let userId = typeof arg.userId === 'string' ? arg.userId : undefined;
        const header = input.headers[USER_ID_HEADER];
        if (!userId && header) {
          try {
            userId = defaultPayloadConverter.fromPayload<string>(header);
          } catch {
            /* an unreadable header only costs the log its user ID */
          }
        }
        attrs = {
          conversationId:
            typeof arg.conversationId === 'string'
              ? arg.conversationId
              : conversationIdOf(ctx.info.workflowExecution?.workflowId),
          ...(userId && { userId }),
          step: ctx.info.activityType,
          attempt: ctx.info.attempt,
        };
        const t0 = performance.now();
        ctx.log.info('step started');
        // Heartbeat while the step runs, so a worker that dies is noticed within the heartbeat timeout (seconds), not
        // the start-to-close timeout (a minute or more). The SDK throttles these to its heartbeat interval.
        const beat = ctx.info.heartbeatTimeoutMs ? setInterval(() => ctx.heartbeat(), 1000) : undefined;
        try {
          const result = await next(input);
          ctx.log.info('step completed', { durationMs: Math.round(performance.now() - t0) });
          return result;
        } catch (err) {
          const e = err as { type?: string; name?: string; message?: string };
          ctx.log.warn('step failed', {
            durationMs: Math.round(performance.now() - t0),
            error: { type: e.type ?? e.name, message: e.message },
          });
          throw err;
        } finally {
          clearInterval(beat);
        }
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next({ ...input, ...attrs }),
    },
  };
}
