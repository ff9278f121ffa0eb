// Loaded by path in the workflow sandbox and by the client: failure messages and stack traces travel as an encoded
// payload (and so through the encryption codec) instead of in clear. The message Temporal stores is "Encoded failure".
// One exception: EncryptionKeyMismatch (key IDs only, no secret) stays in clear, since its reader is by definition a
// client that cannot decrypt the worker's payloads.
import { ApplicationFailure, DefaultFailureConverter, type PayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

const IN_CLEAR = new Set(['EncryptionKeyMismatch']);

class NestorFailureConverter extends DefaultFailureConverter {
  override errorToFailure(err: unknown, payloadConverter: PayloadConverter): temporal.api.failure.v1.IFailure {
    if (err instanceof ApplicationFailure && err.type && IN_CLEAR.has(err.type)) {
      return new DefaultFailureConverter({ encodeCommonAttributes: false }).errorToFailure(err, payloadConverter);
    }
    return super.errorToFailure(err, payloadConverter);
  }
}

export const failureConverter = new NestorFailureConverter({ encodeCommonAttributes: true });
