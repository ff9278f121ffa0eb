// Every default nestor applies, stated once: the config's environment schema, the activities and the workflows read
// them from here. Safe to import from workflow code (plain values, no I/O).

/** Sandbox limits a start gets when it names none: 1 CPU, 512 processes; memory comes from the image's manifest. */
export const DEFAULT_SANDBOX_LIMITS = { cpus: 1, pidsLimit: 512 } as const;

/** Largest sandbox limits a conversation may ask for: 4 CPUs, 8192 MB, 4096 processes. */
export const DEFAULT_SANDBOX_MAXIMA = { cpus: 4, memoryMb: 8192, pidsLimit: 4096 } as const;

/** Most conversations per user at once (STARTING ones count): OpenHands' max_concurrent_conversations. @default 3 */
export const DEFAULT_MAX_CONVERSATIONS_PER_USER = 3;

/** Per-request timeout. OpenHands used httpx's 5 s default and no retry; we keep 10 s and let Temporal retry. @default 10000 */
export const DEFAULT_NESTED_TIMEOUT_MS = 10_000;

/**
 * How long posting an event may take. Far above the per-request timeout: a post given up on may still land on the
 * server, so a slow post is waited for rather than abandoned (and then perhaps made twice). Stays under the delivery
 * activity's 60 s start-to-close timeout. @default 40000
 */
export const DEFAULT_POST_EVENT_TIMEOUT_MS = 40_000;

/** How often the reaper's schedule runs; 0 creates no schedule. @default 60 s */
export const DEFAULT_REAPER_INTERVAL_MS = 60_000;

/** Grace period before an ownerless runtime is removed. @default 2 minutes */
export const DEFAULT_REAPER_GRACE_MS = 120_000;

/** Bound on the nested conversation becoming ready. @default 120 s */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;

/** Idle time before a conversation is paused. @default 20 min, as OpenHands' runtime API (RUNTIME_IDLE_SECONDS=1200). */
export const DEFAULT_IDLE_TIMEOUT_MS = 20 * 60_000;

/**
 * Longest a create or resume may take when the start input names no alive bound: the bound itself then comes from
 * the runtime image's manifest (`nestor.runtime.alive-timeout-ms`, e.g. 180 s for OpenHands, which the workflow
 * cannot know), and a dead worker is noticed by the heartbeat timeout long before this. @default 10 min
 */
export const RUNTIME_STEP_CEILING_MS = 10 * 60_000;

/** Most warnings a conversation's status keeps (the newest). @default 20 */
export const MAX_WARNINGS = 20;

/** Git providers' public OAuth token endpoints; each is overridable (NESTOR_<PROVIDER>_TOKEN_URL; tests point them at a local server). */
export const DEFAULT_TOKEN_URLS: Record<'github' | 'gitlab' | 'bitbucket', string> = {
  github: 'https://github.com/login/oauth/access_token',
  gitlab: 'https://gitlab.com/oauth/token',
  bitbucket: 'https://bitbucket.org/site/oauth2/access_token',
};

/** Warm pools: a member older than this is replaced (a fresh boot, nothing stale). @default 6 hours */
export const DEFAULT_POOL_MAX_AGE_MS = 6 * 3600_000;

/** Warm pools: how often members are health-checked when no claim wakes the pool. @default 30 s */
export const DEFAULT_POOL_TEND_INTERVAL_MS = 30_000;

/** Warm pools: members booted at once (each boot takes a CPU; the machines have 2). @default 2 */
export const DEFAULT_POOL_BOOT_BATCH = 2;

/** Warm pools: the share of the Docker host's memory all members of one pool may reserve. @default 0.5 */
export const DEFAULT_POOL_MEMORY_SHARE = 0.5;

/** Warm pools: members kept per image when a worker starts a pool (NESTOR_POOL_SIZE). @default 0, no pool */
export const DEFAULT_POOL_SIZE = 0;

/**
 * The least `history.maxInFlightUpdates` a namespace must allow for a worker to start (preflight.ts): every message
 * is an update until the nested server accepted it, so a burst to one conversation is that many updates in flight.
 * Temporal's default is 10; nestor's dynamic config sets 500.
 * @default 50
 */
export const REQUIRED_IN_FLIGHT_UPDATES = 50;

/**
 * With sandbox hosts: how long a task for a conversation's host may wait for that host's worker before the host
 * counts as lost (schedule-to-start timeout). Long enough for a worker restart, short enough that nothing hangs.
 * @default 30000
 */
export const DEFAULT_HOST_PICKUP_TIMEOUT_MS = 30_000;

/**
 * How long a starting host worker waits for a worker on the conversations' task queue (which serves the host
 * registry) before it stops and says so: the two may start together, but a host worker on the wrong queue must not
 * wait forever to register.
 * @default 30000
 */
export const HOST_REGISTRY_WAIT_MS = 30_000;

/** How often a host worker tells the registry it is there (a heartbeat signal with its capacity). */
export const HOST_HEARTBEAT_MS = 10_000;
/**
 * A host whose worker sent no heartbeat (nor registered) for this long is lost: no new sandbox goes there, and a
 * resume of one of its conversations fails at once. Its next heartbeat makes it live again.
 */
export const HOST_LOST_AFTER_MS = 45_000;
/** How often the registry gives back the placements of conversations whose workflow has closed (self-healing). */
export const HOST_PLACEMENTS_HEAL_MS = 5 * 60_000;

/** Sandboxes (running or paused) a sandbox host takes unless its worker declares otherwise (NESTOR_HOST_CAPACITY). @default 10 */
export const DEFAULT_HOST_CAPACITY = 10;
