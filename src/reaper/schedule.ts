// The reaper's schedule: every worker makes sure it exists and is up to date at start (one home for it, beside the
// workflow it runs).
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { Runtime, type Worker } from '@temporalio/worker';
import type { NestorConfig } from '../config';
import { REAPER_SCHEDULE_ID, WORKFLOW_TYPES } from '../shared/constants';

/**
 * Create the schedule that runs ReapOrphanRuntimes every intervalMs, or bring an existing one up to date (interval,
 * task queue, grace). Idempotent: every worker calls it at start.
 */
export async function ensureReaperSchedule(
  client: Client,
  o: { taskQueue: string; intervalMs: number; graceMs: number; hostId?: string },
): Promise<'created' | 'updated'> {
  const spec = { intervals: [{ every: o.intervalMs }] };
  const scheduleId = reaperScheduleId(o.hostId);
  const action = {
    type: 'startWorkflow' as const,
    workflowType: WORKFLOW_TYPES.reapOrphanRuntimes,
    // A sandbox host's reaper runs on that host's task queue: its activities list and remove in that host's engine.
    workflowId: o.hostId ? `nestor-reaper-${o.hostId}` : 'nestor-reaper',
    taskQueue: o.taskQueue,
    args: [{ graceMs: o.graceMs }],
    workflowExecutionTimeout: '10 minutes' as const,
    staticSummary: 'orphan reaper: remove sandboxes without an open conversation',
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      // One pass at a time; a pass missed while no worker ran is not made up (the next one sees everything anyway).
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      state: { note: 'removes sandboxes whose conversation is closed or absent (created by nestor worker)' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
    return 'updated';
  }
}

/** The reaper's schedule: one for the service's own engine, one per sandbox host. */
export function reaperScheduleId(hostId?: string): string {
  return hostId ? `${REAPER_SCHEDULE_ID}-${hostId}` : REAPER_SCHEDULE_ID;
}

/**
 * The reaper's schedule, unless turned off (NESTOR_REAPER_INTERVAL_MS=0); says what it did. A host worker passes its
 * host and task queue: each host's engine has a reaper of its own.
 */
export async function startReaper(
  worker: Worker,
  c: NestorConfig,
  host?: { hostId: string; taskQueue: string },
): Promise<void> {
  const log = Runtime.instance().logger;
  if (c.reaper.intervalMs === 0) return void log.info('orphan reaper off (NESTOR_REAPER_INTERVAL_MS=0)');
  const scheduleId = reaperScheduleId(host?.hostId);
  const what = await ensureReaperSchedule(worker.client!, {
    taskQueue: host?.taskQueue ?? c.taskQueue,
    hostId: host?.hostId,
    ...c.reaper,
  });
  log.info(
    `orphan reaper schedule ${scheduleId} ${what}: every ${c.reaper.intervalMs} ms, grace ${c.reaper.graceMs} ms`,
    { scheduleId },
  );
}
