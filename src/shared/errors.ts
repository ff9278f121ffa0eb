// Every failure a caller can see, by stable type name. Retry policies reference these names.
import { ApplicationFailure } from '@temporalio/common';

export const ErrorType = {
  /** The start input or a message failed validation. Never retried. */
  InvalidInput: 'InvalidInput',
  /** Unknown agent, missing LLM key, or an agent/model pair that cannot work. Never retried. */
  InvalidSettings: 'InvalidSettings',
  /** The runtime image is not present locally. Never retried. */
  RuntimeImageNotFound: 'RuntimeImageNotFound',
  /** The container could not be created or exited before answering /alive. Retried a few times. */
  RuntimeStartFailed: 'RuntimeStartFailed',
  /** The nested server rejected the session API key (401/403). Never retried. */
  NestedUnauthorized: 'NestedUnauthorized',
  /**
   * The nested server checked a git provider token live and rejected it (`add-git-providers` 401 with the server's
   * reason). Never retried; whether the start fails depends on whether it needs that provider (README: Git tokens).
   */
  GitProviderRejected: 'GitProviderRejected',
  /** The nested server rejected a request as malformed (400/422). Never retried. */
  NestedBadRequest: 'NestedBadRequest',
  /** The nested server answered 404 for a conversation it should know. */
  NestedNotFound: 'NestedNotFound',
  /** 5xx, 429, timeout or connection failure. Retried with backoff. */
  NestedUnavailable: 'NestedUnavailable',
  /** The nested conversation did not become ready within its bound. Never retried. */
  NotReady: 'NotReady',
  /** A resume failed; details name the step. The conversation stays PAUSED with its data and can be resumed again. */
  ResumeFailed: 'ConversationResumeFailed',
  /** The conversation failed to start; details name the step. Workflow-level failure. */
  StartFailed: 'ConversationStartFailed',
  /** Closing could not remove the runtime after its retries; the details name what is left. */
  CloseFailed: 'ConversationCloseFailed',
  /**
   * Giving the conversation's slot back to the user's registry (UserSessions) failed after its retries, while pausing
   * or closing: the conversation ends in ERROR rather than hold a slot it may not have given back.
   */
  SessionReleaseFailed: 'ConversationSessionReleaseFailed',
  /** A start (or waitReady) named a user other than the one the live conversation belongs to. Never retried. */
  WrongUser: 'ConversationOwnedByAnotherUser',
  /**
   * The client and the worker share no encryption key: one cannot read what the other sealed. The message names the
   * step and both sides' key IDs. Never retried.
   */
  EncryptionKeyMismatch: 'EncryptionKeyMismatch',
  /** A resume (e.g. by a schedule) found no running conversation with that ID. Never retried. */
  ConversationNotFound: 'ConversationNotFound',
  /** The conversation is switching to a new run (continue-as-new); the client sends the message again. */
  ContinuingAsNew: 'ContinuingAsNew',
  /** The conversation is closed or closing. */
  ConversationClosed: 'ConversationClosed',
} as const;
export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** Error raised by nestor's own code outside workflows; `type` maps 1:1 onto an ApplicationFailure type. */
export class NestorError extends Error {
  constructor(
    readonly type: ErrorTypeName,
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = type;
  }
}

/** What an operator should look at for a failure of this type, or undefined when the message already says it. */
export function whatToCheck(type: ErrorTypeName, conversationId?: string): string | undefined {
  const logs = conversationId ? `'docker logs nestor-conv-${conversationId}'` : "the sandbox container's logs";
  switch (type) {
    case ErrorType.RuntimeStartFailed:
      return `${logs}, that the Docker engine answers ('docker info'), and NESTOR_RUNTIME_IMAGE`;
    case ErrorType.NestedUnauthorized:
      return 'that the container was not recreated under the conversation (its session key changes)';
    case ErrorType.GitProviderRejected:
      return "the git provider token in gitProviderTokens (the nested server checks it against the provider's API, so it also needs egress)";
    case ErrorType.NestedBadRequest:
      return "the field the nested server names against the start input's settings (README: Workflow contract)";
    case ErrorType.NestedNotFound:
      return `that the nested conversation exists (GET /api/conversations/<id> on the sandbox) and ${logs}`;
    case ErrorType.NestedUnavailable:
      return `${logs} (the agent server may be overloaded or crashed) and NESTOR_NESTED_TIMEOUT_MS`;
    case ErrorType.NotReady:
      return `${logs} for the agent's start-up and timeouts.readyTimeoutMs`;
    default:
      return undefined;
  }
}

/**
 * Turn any thrown value into an ApplicationFailure with a stable type; plain errors stay retryable. The message says
 * the step, the cause and what to check.
 */
export function toApplicationFailure(err: unknown, step?: string, conversationId?: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  // The Docker client's own connection errors: name them, and say what to check, like nestor's.
  if (!(err instanceof NestorError) && err instanceof Error && /docker\.sock/.test(err.message)) {
    err = new NestorError(ErrorType.RuntimeStartFailed, `the Docker engine does not answer (${err.message})`, true);
  }
  const prefix = step ? `${step}: ` : '';
  if (err instanceof NestorError) {
    const hint = whatToCheck(err.type, conversationId);
    return ApplicationFailure.create({
      message: prefix + err.message + (hint ? `; check ${hint}` : ''),
      type: err.type,
      nonRetryable: !err.retryable,
      details: [err.details],
    });
  }
  return err;
}
