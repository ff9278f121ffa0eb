// The one error module: every failure a caller can see, by stable type name (retry policies reference these names),
// and the error classes callers catch. How a thrown error becomes a typed failure leaving an activity, and the hint of
// what to check, is errors/cast-known-errors.ts; the hints themselves come from the adapters that know them.

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
   * reason). Never retried; whether the start fails depends on whether it needs that provider (docs/runtimes.md: Git tokens).
   */
  GitProviderRejected: 'GitProviderRejected',
  /** The nested server rejected a request as malformed (400/422). Never retried. */
  NestedBadRequest: 'NestedBadRequest',
  /** The nested server answered 404 for a conversation it should know. */
  NestedNotFound: 'NestedNotFound',
  /** 5xx, 429, timeout or connection failure. Retried with backoff. */
  NestedUnavailable: 'NestedUnavailable',
  /**
   * Cloning or checking out the start's repository in the sandbox failed (V1: the agent server's bash). Never retried
   * when git says the repository or branch is missing or the token was refused; retried otherwise.
   */
  RepositoryCloneFailed: 'RepositoryCloneFailed',
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
  /** A warm pool was asked to keep more members than its share of the host's memory holds. Never retried. */
  PoolTooLarge: 'PoolTooLarge',
  /** No warm pool of that name is running (never started, or drained). */
  PoolNotFound: 'PoolNotFound',
  /** No sandbox host is registered under that ID (`nestor host drain`). Never retried. */
  HostNotFound: 'HostNotFound',
  /** Every registered sandbox host is full, draining or lost (or none is registered). Never retried by the step. */
  NoSandboxHost: 'NoSandboxHost',
  /**
   * A registry shard was started for another number of shards than the caller's NESTOR_HOST_REGISTRY_SHARDS (the
   * setting changed without terminating the `sandbox-hosts*` workflows): placing on it would count a host's capacity
   * twice. Refused, nothing changed; never retried.
   */
  RegistryShardsMismatch: 'RegistryShardsMismatch',
  /**
   * The host holding the conversation's sandbox did not pick up its task within the bound (its worker or engine is
   * gone). A start is placed again elsewhere; a running conversation becomes PAUSED with it as lastError (its data is
   * on that host and cannot move) and resumes once the host is back; a close meanwhile ends in ERROR.
   */
  SandboxHostLost: 'SandboxHostLost',
  /**
   * Temporal refused the caller (PERMISSION_DENIED, UNAUTHENTICATED): its API key or client certificate lacks the
   * permission the call needs on the namespace. Nothing was done. Raised by ConversationClient.
   */
  TemporalAccessDenied: 'TemporalAccessDenied',
} as const;
export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/**
 * Error raised by nestor's own code outside workflows; `type` maps 1:1 onto an ApplicationFailure type (the activity
 * interceptor in cast-known-errors.ts turns it into one, with the step and what to check).
 */
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

/** A failure the workflow reported, unwrapped by ConversationClient to its stable type name and message. */
export class ConversationError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = type;
  }
}

/** The environment (NESTOR_*, TEMPORAL_*) does not satisfy its schema; the message names each variable. */
export class ConfigError extends Error {}

/** A request the codec server refuses, with the HTTP status it answers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What an operator should check for a failure of one type, given the conversation (when the step knows it). */
export type Hint = (conversationId?: string) => string;
