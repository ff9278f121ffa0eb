// Names both sides of the wire agree on. Imported by workflows, so: no Node built-ins, no I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Task queue the worker polls. @default 'conversations' (override with NESTOR_TASK_QUEUE). */
export const DEFAULT_TASK_QUEUE = 'conversations';

/** Workflow type names, stable for callers in other languages. */
export const WORKFLOW_TYPES = {
  startConversation: 'StartConversation',
  resumeConversation: 'ResumeConversation',
  reapOrphanRuntimes: 'ReapOrphanRuntimes',
  userSessions: 'UserSessions',
  sandboxPool: 'SandboxPool',
  sandboxHosts: 'SandboxHosts',
} as const;

/** The workflow that keeps a warm pool: one per pool (per image, and later per host). */
export const poolWorkflowId = (pool: string) => `sandbox-pool-${pool}`;

/** The schedule that runs ReapOrphanRuntimes, created (or updated) by every worker at start. */
export const REAPER_SCHEDULE_ID = 'nestor-reap-orphan-runtimes';

/** Message names on the StartConversation workflow. */
export const MESSAGE_NAMES = {
  waitReady: 'waitReady',
  sendMessage: 'sendMessage',
  close: 'close',
  pause: 'pause',
  resume: 'resume',
  status: 'status',
} as const;

/** The workflow ID is the lock: one running StartConversation per conversation. */
export function conversationWorkflowId(conversationId: string): string {
  return `conversation-${conversationId}`;
}

/** The conversation a `conversation-<id>` workflow ID names, or undefined for other workflows. */
export function conversationIdOf(workflowId: string | undefined): string | undefined {
  return workflowId?.startsWith('conversation-') ? workflowId.slice('conversation-'.length) : undefined;
}

export const ConversationIdKey = defineSearchAttributeKey('ConversationId', SearchAttributeType.KEYWORD);
export const UserIdKey = defineSearchAttributeKey('UserId', SearchAttributeType.KEYWORD);
export const ConversationStatusKey = defineSearchAttributeKey('ConversationStatus', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTE_KEYS = [ConversationIdKey, UserIdKey, ConversationStatusKey];

/** Conversation statuses, in OpenHands' vocabulary plus PAUSED (OpenHands folds it into STOPPED). */
export const CONVERSATION_STATUSES = ['STARTING', 'RUNNING', 'PAUSED', 'STOPPED', 'ERROR'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];

/** The six start steps, in order. */
export const START_STEPS = [
  'acquireSession',
  'createRuntime',
  'refreshTokens',
  'configureNestedServer',
  'createConversation',
  'waitForReady',
] as const;
export type StartStep = (typeof START_STEPS)[number];

/**
 * Start steps that run only on some servers: the current agent server (V1) has the start's repository cloned before
 * its conversation is created (the V0 server clones it itself).
 */
export const OPTIONAL_START_STEPS = ['prepareRepository'] as const;

/** Container labels every nestor sandbox carries. */
export const LABELS = {
  managed: 'nestor.managed',
  conversationId: 'nestor.conversation-id',
  userId: 'nestor.user-id',
  /** `<temporal address>/<namespace>` of the service that made it: the reaper only sweeps its own. */
  owner: 'nestor.owner',
  /**
   * The conversation's life under its ID (its workflow's first run ID, the same across continue-as-new): a later
   * conversation reusing the ID never adopts a sandbox or volume of an earlier one.
   */
  incarnation: 'nestor.incarnation',
  /** The warm pool a sandbox was made for (identity-free until claimed; labels cannot change, so it stays). */
  pool: 'nestor.pool',
  /** The pool's own ID for a member, stable across the renames that claim or retire it. */
  poolMember: 'nestor.pool-member',
} as const;

/** The steps of a running conversation's life besides the start steps. */
export const LIFE_STEPS = ['resumeRuntime', 'running', 'pausing', 'paused', 'closing', 'compensating', 'done'] as const;

/** How many delivered message IDs a conversation remembers (across continue-as-new) to deduplicate repeats. */
export const RECENT_MESSAGE_IDS = 1000;

/** Largest message body accepted, far under Temporal's 2 MB payload limit. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/**
 * Bound on a whole start input as JSON (UTF-8 bytes). Temporal refuses payloads over 2 MB and warns over 512 KB; the
 * input travels again with every continue-as-new, so it stays at a quarter of the limit.
 */
export const MAX_START_INPUT_BYTES = 512 * 1024;

/** Activity header carrying the conversation's user ID to the activity's log lines (not a secret). */
export const USER_ID_HEADER = 'nestor-user-id';

/** nestor's own metrics, beside the SDK's `temporal_*` ones on the same Prometheus endpoint. */
export const METRICS = {
  starts: 'nestor_conversation_starts',
  startFailures: 'nestor_conversation_start_failures',
  timeToReady: 'nestor_conversation_time_to_ready',
  messagesDelivered: 'nestor_messages_delivered',
  pauses: 'nestor_conversation_pauses',
  resumes: 'nestor_conversation_resumes',
  resumeFailures: 'nestor_conversation_resume_failures',
  recoveries: 'nestor_sandbox_recoveries',
  poolTarget: 'nestor_pool_target_size',
  poolReady: 'nestor_pool_ready',
  poolBooting: 'nestor_pool_booting',
  poolCreated: 'nestor_pool_members_created',
  poolClaimed: 'nestor_pool_members_claimed',
  poolReplaced: 'nestor_pool_members_replaced',
} as const;

/** Length of a string in UTF-8 bytes, without TextEncoder (not guaranteed in the workflow sandbox). */
export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}
