// Activity-context helpers that also work outside an activity (unit tests call activity functions directly).
import { Context } from '@temporalio/activity';

function current(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Heartbeat a regular activity; a local activity has none (the SDK would log a failed heartbeat for each). */
export function heartbeat(details?: unknown): void {
  const ctx = current();
  if (ctx && !ctx.info.isLocal) ctx.heartbeat(details);
}

/** Sleep that ends early with a CancelledFailure when the activity is cancelled. */
export function sleep(ms: number): Promise<void> {
  const ctx = current();
  return ctx ? ctx.sleep(ms) : new Promise((r) => setTimeout(r, ms));
}

/** Aborts in-flight HTTP requests when the activity is cancelled. */
export function cancellationSignal(): AbortSignal | undefined {
  return current()?.cancellationSignal;
}

export function activityLog(): Context['log'] | undefined {
  return current()?.log;
}

/** This activity's attempt number (1 outside an activity). */
export function attempt(): number {
  return current()?.info.attempt ?? 1;
}

/** The worker's Temporal client, inside an activity (undefined outside one, or on a worker built without a client). */
export function activityClient(): Context['client'] | undefined {
  const ctx = current();
  try {
    return ctx?.client;
  } catch {
    return undefined;
  }
}
