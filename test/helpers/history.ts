// What a workflow's history says it ran: activities scheduled (regular) and run locally (a marker naming each).
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export function activitiesRun(events: HistoryEvent[]): {
  scheduled: string[];
  local: string[];
  /** The workflow task (its completed event's ID) that scheduled each activity, by type. */
  scheduledBy: Record<string, number[]>;
} {
  const scheduled: string[] = [];
  const local: string[] = [];
  const scheduledBy: Record<string, number[]> = {};
  for (const e of events) {
    const a = e.activityTaskScheduledEventAttributes;
    const name = a?.activityType?.name;
    if (name) {
      scheduled.push(name);
      (scheduledBy[name] ??= []).push(Number(a.workflowTaskCompletedEventId));
    }
    const m = e.markerRecordedEventAttributes;
    const data = m?.markerName === 'core_local_activity' ? m.details?.data?.payloads?.[0]?.data : undefined;
    if (data) local.push(JSON.parse(Buffer.from(data).toString()).activity_type);
  }
  return { scheduled, local, scheduledBy };
}
