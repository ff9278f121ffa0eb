// Loaded by path in the workflow sandbox and by the client: failure messages and stack traces travel as an encoded
// payload (and so through the encryption codec) instead of in clear. The message Temporal stores is "Encoded failure".
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
