// The seam between the workflow and where sandboxes run.
import type { ImageManifest, NestedProtocol } from './image-manifest';

export interface RuntimeSpec {
  conversationId: string;
  userId: string;
  /** Which life of the conversation ID this is (label `nestor.incarnation`); only its own sandbox is adopted. */
  incarnation?: string;
  /** Extra environment for the nested server (e.g. the emulator's fault knobs). */
  env?: Record<string, string>;
  cpus?: number;
  memoryMb?: number;
  pidsLimit?: number;
  /** False puts the sandbox on a network with no way out (no egress). @default true */
  egress?: boolean;
  /** False never takes a sandbox from the warm pool (always a cold create). @default true */
  fromPool?: boolean;
}

/** How a start got its sandbox: claimed from the warm pool, or created for it (cold). */
export type StartPath = 'pool' | 'cold';

export interface RuntimeHandle {
  /** Provider-specific ID (the Docker container ID). */
  runtimeId: string;
  /** Base URL of the nested server, reachable from the worker. */
  url: string;
  /** Random per-runtime key the nested server checks on every /api route. */
  sessionApiKey: string;
  /** True when an existing runtime for this conversation was adopted instead of created. */
  adopted: boolean;
  /** Claimed from the warm pool or created cold (absent when adopted from an earlier attempt of either). */
  startPath?: StartPath;
  /** Why a cold start did not take a pooled sandbox (e.g. the request has extra env, the pool has none ready). */
  coldReason?: string;
  /** The protocol its server speaks (its image's kind). Absent in handles recorded before V1 existed: `v0`. */
  protocol?: NestedProtocol;
  /**
   * Whether its server waits for its conversation's keys (a claimed V1 pool member: `initialize` gives them). False:
   * nothing to give, `initialize` is not called. Absent (a provider that does not say): `initialize` decides.
   */
  deferredInit?: boolean;
}

export interface RuntimeSummary {
  runtimeId: string;
  name: string;
  conversationId: string;
  userId: string;
  state: string;
  createdAt: string;
  /** The warm pool it is an unclaimed member of (no conversation yet), if it is one, and its ID there. */
  pool?: { name: string; memberId: string };
}

/** An unclaimed member of a warm pool, by its state: booting (not yet alive) or ready (claimable). */
export interface PoolMember {
  /** The pool's own ID for it (stable across its renames). */
  memberId: string;
  name: string;
  runtimeId: string;
  state: 'booting' | 'ready';
  /** Docker's state: running, exited, … */
  containerState: string;
  createdAt: string;
}

/**
 * Warm pools of identity-free sandboxes for one image: created ahead of time, claimed atomically by a start (the
 * provider's create does that), tended by the SandboxPool workflow through these operations.
 */
export interface PoolOps {
  /** The pool's name for this provider's image: labels, workflow ID. */
  readonly poolName: string;
  /** Unclaimed members, every state. */
  members(): Promise<PoolMember[]>;
  /**
   * Create and start member `memberId` as booting (idempotent per ID); its URL answers /alive once it has booted.
   * `taken`: an earlier attempt made it ready and a start claimed it (or the pool is retiring it): nothing is made again.
   */
  createMember(memberId: string): Promise<{ member: PoolMember; url: string } | { taken: true }>;
  /** Make a booted member claimable. False when it is gone or not booting. */
  markReady(memberId: string): Promise<boolean>;
  /** Where a member's nested server answers (for its health check), or undefined when it is not running. */
  memberUrl(memberId: string): Promise<string | undefined>;
  /** Remove an unclaimed member. False when it was claimed meanwhile (then it is a conversation's, and kept). */
  retire(memberId: string): Promise<boolean>;
  /** The host's total memory (MB), for sizing pools by the image's declared needs. */
  hostMemoryMb(): Promise<number>;
  /** Why a request cannot take a pooled sandbox, or undefined when it can. */
  ineligible(spec: RuntimeSpec): string | undefined;
  /**
   * The pool of another name on the same engine and service (an earlier image's, or a renamed host's): what it left
   * is retired through it, with the same lock protocol.
   */
  sibling(poolName: string): PoolOps;
}

export interface RuntimeProvider {
  readonly kind: string;
  /** What the runtime image needs (port, memory floor and default, alive timeout), from its manifest. */
  requirements(): Promise<ImageManifest>;
  /** Create (or adopt) and start the runtime for spec.conversationId. Idempotent per conversation. */
  create(spec: RuntimeSpec): Promise<RuntimeHandle>;
  /**
   * Only from the warm pool: claim a ready member for spec.conversationId (or adopt the member an earlier attempt of
   * this start claimed); undefined when there is none or the request cannot take one. Never creates a sandbox, so a
   * start may ask for it before its user's slot is granted. Absent: the provider keeps no pools.
   */
  claim?(spec: RuntimeSpec): Promise<RuntimeHandle | undefined>;
  /** Stop the runtime but keep it (and its file store). */
  pause(conversationId: string): Promise<void>;
  /** Start a paused runtime again; the URL may change. A runtime of another incarnation is never resumed. */
  resume(conversationId: string, incarnation?: string): Promise<RuntimeHandle>;
  /**
   * Once the runtime answers /alive, after every create, adopt and resume: hand its server what it takes only then (a
   * claimed V1 pool member's keys, by the agent server's deferred init). Idempotent. Absent: nothing to do.
   */
  initialize?(conversationId: string): Promise<void>;
  /** Remove the runtime for good. Returns false when there was none. */
  remove(conversationId: string): Promise<boolean>;
  inspect(conversationId: string): Promise<RuntimeSummary | undefined>;
  /** Every runtime this provider manages. */
  list(): Promise<RuntimeSummary[]>;
  /** Warm-pool operations, when the provider keeps pools. */
  readonly pool?: PoolOps;
  /** Why a runtime that stopped answering stopped, for failure messages (e.g. its last log lines). */
  diagnose(conversationId: string): Promise<string>;
}
