// The seam between the workflow and where sandboxes run.
import type { ImageManifest } from './image-manifest';

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
}

export interface RuntimeHandle {
  /** Provider-specific ID (the Docker container ID). */
  runtimeId: string;
  /** Base URL of the nested server, reachable from the worker. */
  url: string;
  /** Random per-runtime key the nested server checks on every /api route. */
  sessionApiKey: string;
  /** True when an existing runtime for this conversation was adopted instead of created. */
  adopted: boolean;
}

export interface RuntimeSummary {
  runtimeId: string;
  name: string;
  conversationId: string;
  userId: string;
  state: string;
  createdAt: string;
}

export interface RuntimeProvider {
  readonly kind: string;
  /** What the runtime image needs (port, memory floor and default, alive timeout), from its manifest. */
  requirements(): Promise<ImageManifest>;
  /** Create (or adopt) and start the runtime for spec.conversationId. Idempotent per conversation. */
  create(spec: RuntimeSpec): Promise<RuntimeHandle>;
  /** Stop the runtime but keep it (and its file store). */
  pause(conversationId: string): Promise<void>;
  /** Start a paused runtime again; the URL may change. A runtime of another incarnation is never resumed. */
  resume(conversationId: string, incarnation?: string): Promise<RuntimeHandle>;
  /** Remove the runtime for good. Returns false when there was none. */
  remove(conversationId: string): Promise<boolean>;
  inspect(conversationId: string): Promise<RuntimeSummary | undefined>;
  /** Every runtime this provider manages. */
  list(): Promise<RuntimeSummary[]>;
  /** Why a runtime that stopped answering stopped, for failure messages (e.g. its last log lines). */
  diagnose(conversationId: string): Promise<string>;
}
