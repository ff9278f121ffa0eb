// What a workflow's history says it ran: activities scheduled (regular) and run locally (a marker naming each).
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export function activitiesRun(events: HistoryEvent[]): { scheduled: string[]; local: string[] } {
  const scheduled: string[] = [];
  const local: string[] = [];
  for (const e of events) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) scheduled.push(name);
    const m = e.markerRecordedEventAttributes;
    const data = m?.markerName === 'core_local_activity' ? m.details?.data?.payloads?.[0]?.data : undefined;
    if (data) local.push(JSON.parse(Buffer.from(data).toString()).activity_type);
  }
  return { scheduled, local };
}
