// Visibility (lists, search attributes) is eventually consistent: try an assertion again for a while before failing.
import retry from 'async-retry';

/** Run `check` until it stops throwing (about 10 s at most), returning its value; the last error is the failure. */
export function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  return retry(() => check(), {
    retries: Math.ceil(timeoutMs / 250),
    minTimeout: 50,
    maxTimeout: 250,
    factor: 1.5,
    randomize: false,
  });
}

/**
 * Wait until `check` holds, polling every `everyMs`: the way to wait for a state change without guessing how long it
 * takes. Fails naming `what` only after `timeoutMs` (generous: fresh machines are slow), never after a fixed sleep.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  o: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 50));
  }
}
