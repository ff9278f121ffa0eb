// What the worker does with a payload sealed with a key it does not have (a client configured with other
// NESTOR_ENCRYPTION_KEYS). Throwing while decoding would fail the workflow task and wedge the conversation for every
// caller; instead the worker's codec hands the workflow this marker, and the workflow turns it away with a typed
// failure naming both sides' key IDs (never key material). Workflow-safe: no Node imports.
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors';

/** The marker's only property. */
export const UNDECRYPTABLE = '__nestorUndecryptable';

export interface Undecryptable {
  /** `plaintext`: not encrypted at all, where the worker requires encryption (NESTOR_REQUIRE_ENCRYPTION). */
  [UNDECRYPTABLE]: { keyId: string; workerKeyIds: string[]; plaintext?: boolean };
}

/** The marker, if `value` is one. */
export function undecryptable(value: unknown): Undecryptable[typeof UNDECRYPTABLE] | undefined {
  const v = value as Partial<Undecryptable> | null | undefined;
  return typeof v === 'object' && v !== null && typeof v[UNDECRYPTABLE] === 'object' ? v[UNDECRYPTABLE] : undefined;
}

/**
 * The failure for an input this worker cannot decrypt, or undefined when none of `values` is such an input. Its
 * message holds key IDs only, and stays readable to the client that cannot read the worker's payloads (the failure
 * converter leaves this type in clear).
 */
export function keyMismatch(step: string, ...values: unknown[]): ApplicationFailure | undefined {
  for (const v of values) {
    const u = undecryptable(v);
    if (!u) continue;
    return ApplicationFailure.create({
      message: u.plaintext
        ? `${step}: the input is not encrypted, and this worker accepts only encrypted input (NESTOR_REQUIRE_ENCRYPTION); use a client with nestor's codec and a key of NESTOR_ENCRYPTION_KEYS (it has: ${u.workerKeyIds.join(', ')})`
        : `${step}: the input is encrypted with key '${u.keyId}', which this worker does not have (it has: ${u.workerKeyIds.join(', ')}); give the client and the worker a shared key in NESTOR_ENCRYPTION_KEYS`,
      type: ErrorType.EncryptionKeyMismatch,
      // No details: they are payloads, sealed with the worker's key, which the reader cannot open.
      nonRetryable: true,
    });
  }
  return undefined;
}
