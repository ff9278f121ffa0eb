// Visibility (lists, search attributes) is eventually consistent: try an assertion again for a while before failing.
import retry from 'async-retry';

/** Run `check` until it stops throwing (about 10 s at most), returning its value; the last error is the failure. */
export function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  return retry(() => check(), { retries: Math.ceil(timeoutMs / 250), minTimeout: 50, maxTimeout: 250, factor: 1.5, randomize: false });
}
