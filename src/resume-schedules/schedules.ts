// Resume schedules: one home for how they are made, named and found, shared by the client (create, list, cancel) and
// the close path (a closed conversation's schedules are deleted with it).
import { randomUUID } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { z } from 'zod';
import { ErrorType, NestorError } from '../errors';
import { WORKFLOW_TYPES } from '../shared/constants';
import { ConversationIdSchema, parseInput } from '../shared/schemas';
import type { ResumeConversation } from './workflow';

/** Every resume schedule's ID starts with this, then the conversation ID and a random suffix. */
export const RESUME_SCHEDULE_PREFIX = 'resume-';

/** One resume schedule as the schedule list shows it. */
export interface ResumeScheduleEntry {
  scheduleId: string;
  conversationId: string;
  message?: string;
  nextActionTimes: Date[];
  paused: boolean;
}

/**
 * Resume schedules, of one conversation or all. Matched by the conversation ID in the schedule's memo, never by the
 * ID's prefix alone (conversation `a` must not take `a-b`'s schedules).
 */
export async function listResumeSchedules(client: Client, conversationId?: string): Promise<ResumeScheduleEntry[]> {
  const out: ResumeScheduleEntry[] = [];
  for await (const s of client.schedule.list()) {
    if (!s.scheduleId.startsWith(RESUME_SCHEDULE_PREFIX)) continue;
    const memo = (s.memo ?? {}) as { conversationId?: string; message?: string };
    if (!memo.conversationId || (conversationId !== undefined && memo.conversationId !== conversationId)) continue;
    out.push({
      scheduleId: s.scheduleId,
      conversationId: memo.conversationId,
      message: memo.message,
      nextActionTimes: s.info.nextActionTimes,
      paused: s.state.paused,
    });
  }
  return out;
}

/** When a scheduled resume fires: once at a time, on a cron expression, or every interval (e.g. '1h'). */
export const ScheduleResumeSchema = z
  .strictObject({
    at: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
    cron: z.string().min(9).max(200).optional(),
    every: z
      .union([
        z.string().regex(/^\d+\s*(ms|s|m|h|d)$/, "must look like '90s', '15m', '1h' or '1d'"),
        z.number().int().min(1000),
      ])
      .optional(),
    message: z.string().min(1).max(65536).optional(),
  })
  .refine((v) => [v.at, v.cron, v.every].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of at, cron, every',
  });
export type ScheduleResumeOptions = z.input<typeof ScheduleResumeSchema>;

/** Create a resume schedule of a conversation: once at a time, on a cron expression, or every interval. */
export async function createResumeSchedule(
  client: Client,
  taskQueue: string,
  conversationId: string,
  when: ScheduleResumeOptions,
): Promise<string> {
  parseInput(ConversationIdSchema, conversationId, 'conversation ID');
  const o = parseInput(ScheduleResumeSchema, when, 'schedule');
  const scheduleId = `${RESUME_SCHEDULE_PREFIX}${conversationId}-${randomUUID().slice(0, 8)}`;
  const at = o.at === undefined ? undefined : new Date(o.at);
  await client.schedule.create({
    scheduleId,
    spec: at
      ? {
          calendars: [
            {
              year: at.getUTCFullYear(),
              month: MONTHS[at.getUTCMonth()],
              dayOfMonth: at.getUTCDate(),
              hour: at.getUTCHours(),
              minute: at.getUTCMinutes(),
              second: at.getUTCSeconds(),
            },
          ],
        }
      : o.cron
        ? { cronExpressions: [o.cron] }
        : { intervals: [{ every: o.every as never }] },
    action: {
      type: 'startWorkflow',
      workflowType: WORKFLOW_TYPES.resumeConversation as unknown as typeof ResumeConversation,
      workflowId: `${RESUME_SCHEDULE_PREFIX}${conversationId}`,
      taskQueue: taskQueue,
      args: [{ conversationId, message: o.message }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    // A one-off schedule acts once.
    state: at ? { remainingActions: 1 } : undefined,
    memo: { conversationId, ...(o.message !== undefined && { message: o.message }) },
  });
  return scheduleId;
}

/** Delete one resume schedule. Unknown IDs are an InvalidInput error. */
export async function deleteResumeSchedule(client: Client, scheduleId: string): Promise<void> {
  if (!scheduleId.startsWith(RESUME_SCHEDULE_PREFIX)) {
    throw new NestorError(
      ErrorType.InvalidInput,
      `scheduleId: '${scheduleId}' is not a resume schedule (they start with '${RESUME_SCHEDULE_PREFIX}')`,
      false,
    );
  }
  try {
    await client.schedule.getHandle(scheduleId).delete();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new NestorError(ErrorType.InvalidInput, `scheduleId: no schedule '${scheduleId}'`, false);
    throw err;
  }
}

const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
] as const;
