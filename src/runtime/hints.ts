// What to check when the runtime (Docker) fails: supplied here, by the adapter that knows containers, and appended to
// the failure by the activity interceptor (errors/cast-known-errors.ts).
import { ErrorType, NestorError, type Hint } from '../errors';

/** The command that shows a conversation's sandbox logs, or a description when the conversation is unknown. */
export function sandboxLogs(conversationId?: string): string {
  return conversationId ? `'docker logs nestor-conv-${conversationId}'` : "the sandbox container's logs";
}

export const RUNTIME_HINTS: Partial<Record<string, Hint>> = {
  [ErrorType.RuntimeStartFailed]: (id) =>
    `${sandboxLogs(id)}, that the Docker engine answers ('docker info'), and NESTOR_RUNTIME_IMAGE`,
};

/** The Docker client's own connection errors (no engine at the socket), named as nestor's; anything else: undefined. */
export function castDockerError(err: unknown): NestorError | undefined {
  if (err instanceof NestorError || !(err instanceof Error) || !/docker\.sock/.test(err.message)) return undefined;
  return new NestorError(ErrorType.RuntimeStartFailed, `the Docker engine does not answer (${err.message})`, true);
}
