// The patch IDs of StartConversation: each marks a change to its command sequence, so histories recorded before the
// change replay as they ran (test/service/replay.test.ts replays every recorded history and checks these markers).

/** Patch ID: a delivery that finds the sandbox unreachable recovers it (a resume) and tries again. */
export const RECOVER_SANDBOX_PATCH = 'recover-unreachable-sandbox';

/**
 * Patch ID: before a message's first delivery the workflow marks the newest event ID (a local activity), so a later
 * look for its earlier post starts there, not at the cursor of the previous delivery.
 */
export const DELIVERY_CURSOR_PATCH = 'delivery-cursor';

/** Patch ID: a start or resume whose slot request was interrupted (a close) gives back the slot it may be granted. */
export const RELEASE_UNFINISHED_ACQUIRE_PATCH = 'release-unfinished-acquire';

/** Patch ID: closing deletes the conversation's resume schedules. */
export const CLOSE_DELETES_SCHEDULES_PATCH = 'close-deletes-schedules';

/**
 * Patch ID: when the idle timer runs out, the conversation's own activity (its newest event, the agent's state) is
 * read first: an agent at work, or one that wrote lately, is not idle.
 */
export const IDLE_COUNTS_AGENT_PATCH = 'idle-counts-agent';

/** Patch ID: the worker checks a new conversation's start input against the published schema. */
export const VALIDATE_INPUT_PATCH = 'validate-start-input';

/** Patch ID: `touch` stopped waiting for its signal's delivery (histories recorded before still replay). */
export const ASYNC_TOUCH_PATCH = 'async-touch';

/**
 * Patch ID: the nested set-up steps (refreshTokens, configureNestedServer, createConversation) run as local
 * activities: three workflow tasks and three activity dispatches fewer between start and RUNNING.
 */
export const LEAN_START_PATCH = 'lean-start';

/**
 * Patch ID: a start asks where its sandbox goes (placeSandbox, a local activity) before createRuntime; with sandbox
 * hosts, the sandbox's steps run on the chosen host's task queue.
 */
export const SANDBOX_HOSTS_PATCH = 'sandbox-hosts';

/**
 * Patch ID: a running conversation whose host does not pick up a delivery or a pause (its worker or engine gone)
 * becomes PAUSED with that error, its slot given back, instead of staying RUNNING with nothing there answering.
 */
export const HOST_LOST_PAUSES_PATCH = 'host-lost-pauses';

/**
 * Patch ID: refreshTokens is an activity again under lean-start, not a local one. A local activity's result is only
 * kept once its whole workflow task completes, so a worker lost during the nested set-up that follows ran the refresh
 * again with the refresh token the provider had just revoked, and the rotated pair was lost.
 */
export const REFRESH_AS_ACTIVITY_PATCH = 'refresh-as-activity';

/**
 * Patch ID: a start whose placement was refused (NoSandboxHost) or interrupted undoes no sandbox: none was made, and
 * the conversations worker, which has no engine with sandbox hosts, spent minutes retrying a removal there.
 */
export const UNPLACED_UNDOES_NOTHING_PATCH = 'unplaced-undoes-nothing';

/**
 * Patch ID: a resume of a sandbox on a host asks the registry about that host before it takes a slot, and fails at
 * once (SandboxHostLost, still PAUSED) when the host is lost, instead of pausing another conversation of the user for
 * a slot and then waiting out two pickup bounds.
 */
export const HOST_BEFORE_SLOT_PATCH = 'host-before-slot';

/**
 * Patch ID: a start whose sandbox is on this worker's engine (no sandbox hosts: whereSandbox, a local activity) asks
 * for a pooled sandbox (claimRuntime: a claim or nothing) beside its slot when a pool member can serve the request
 * (removed if the slot is refused; a cold create still waits for the slot), goes straight to createRuntime without a
 * placement, and looks at readiness once locally after the nested set-up before the waitForReady activity.
 */
export const CLAIM_BESIDE_SLOT_PATCH = 'claim-beside-slot';
