// Resume schedules: one home for how they are named and found, shared by the client (create, list, cancel) and the
// close path (a closed conversation's schedules are deleted with it).
import type { Client } from '@temporalio/client';

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
