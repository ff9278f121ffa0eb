// Where a start's time goes, read from its workflow history (issue 24: "whatever else the histories show"). From the
// client's call to the start update's completion, every gap between two history events is charged to what ended it:
// a workflow task waiting for a worker, a workflow task running (with its local activities), an activity waiting, an
// activity running (by name). Overlapping activities (the slot and the claim) are charged where each gap ends, so the
// parts add up to the time the caller waited, along the path the history took. A workflow task's local activities are
// taken out of its running time (each one's runtime, from its marker), so what is left is the workflow code itself.
import { tsToMs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { conversationWorkflowId } from '../../src/shared/constants';
import { stats } from '../stats';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const T = (e: HistoryEvent) => tsToMs(e.eventTime!);

function partOf(e: HistoryEvent, names: Map<string, string>): string {
  if (e.workflowTaskScheduledEventAttributes) return 'workflow task: scheduled';
  if (e.workflowTaskStartedEventAttributes) return 'workflow task: waiting for a worker';
  if (e.activityTaskStartedEventAttributes) return 'activity: waiting for a worker';
  const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
  if (done) return `activity: ${names.get(String(done.scheduledEventId)) ?? '?'}`;
  return 'workflow task: running (workflow code)';
}

interface LocalActivityMarker {
  activity_type?: string;
  complete_time?: { seconds?: number | string; nanos?: number };
}

/**
 * Each local activity's runtime (ms) and its name. Core records a marker's `complete_time` as the workflow's time when
 * the activity was scheduled plus its runtime, and moves the workflow's time there: the first of a task's local
 * activities counts from the task's start, each next one from the one before (nestor runs them one after another).
 */
function localActivities(events: HistoryEvent[]): Array<{ name: string; ms: number }> {
  const out: Array<{ name: string; ms: number }> = [];
  let clock = 0;
  for (const e of events) {
    if (e.workflowTaskStartedEventAttributes) clock = T(e);
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName !== 'core_local_activity') continue;
    const data = m.details?.data?.payloads?.[0]?.data;
    if (!data) continue;
    const d = JSON.parse(Buffer.from(data).toString()) as LocalActivityMarker;
    if (!d.complete_time) continue;
    const done = Number(d.complete_time.seconds ?? 0) * 1000 + (d.complete_time.nanos ?? 0) / 1e6;
    out.push({ name: d.activity_type ?? '?', ms: Math.max(0, done - clock) });
    clock = done;
  }
  return out;
}

/** One start's parts (ms), from the client's call (`t0`, epoch ms) to its answer (`t1`). */
export async function startBreakdown(
  client: Client,
  conversationId: string,
  t0: number,
  t1: number,
): Promise<Record<string, number>> {
  const events = (await client.workflow.getHandle(conversationWorkflowId(conversationId)).fetchHistory()).events ?? [];
  const names = new Map<string, string>();
  for (const e of events)
    if (e.activityTaskScheduledEventAttributes)
      names.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
  const end = events.findIndex((e) => e.workflowExecutionUpdateCompletedEventAttributes);
  const upTo = (end < 0 ? events : events.slice(0, end + 1)).filter((e) => e.eventTime);
  upTo.sort((a, b) => T(a) - T(b));
  const parts: Record<string, number> = {};
  const add = (k: string, ms: number) => (parts[k] = (parts[k] ?? 0) + Math.max(0, ms));
  add('client → workflow started', T(upTo[0]) - t0);
  for (let i = 1; i < upTo.length; i++) add(partOf(upTo[i], names), T(upTo[i]) - T(upTo[i - 1]));
  add('start answered → client', t1 - T(upTo[upTo.length - 1]));
  for (const la of localActivities(upTo)) {
    add(`local activity: ${la.name}`, la.ms);
    const code = partOf({}, names);
    parts[code] = Math.max(0, (parts[code] ?? 0) - la.ms);
  }
  return parts;
}

/** The median of each part over several starts (a part a start did not have counts 0 for it), largest first. */
export function medianParts(all: Array<Record<string, number>>): Array<{ part: string; p50Ms: number }> {
  const keys = [...new Set(all.flatMap((p) => Object.keys(p)))];
  return keys
    .map((part) => ({ part, p50Ms: stats(all.map((p) => p[part] ?? 0)).p50 }))
    .sort((a, b) => b.p50Ms - a.p50Ms);
}
