// Where a nested activity sends its calls: the sandbox's address and key, and the client that speaks to it.
import type { Dispatcher } from 'undici';
import { NestedClient } from '../../nested/client';
import { AgentServerClient } from '../../nested/agent-server';
import type { NestedProtocol } from '../../runtime/image-manifest';

export interface NestedTarget {
  url: string;
  sessionApiKey: string;
  conversationId: string;
  /** The protocol the sandbox's server speaks (its image's kind). @default 'v0' (what histories before V1 hold) */
  protocol?: NestedProtocol;
}

export interface NestedDeps {
  dispatcher?: Dispatcher;
  /** Per-request timeout. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * How long a delivery that finds no trace of an earlier post of its message waits for that post to land before
   * posting. @default the request timeout (DEFAULT_NESTED_TIMEOUT_MS)
   */
  settleMs?: number;
}

export function client(t: NestedTarget, deps: NestedDeps, signal?: AbortSignal): NestedClient {
  return new NestedClient({
    baseUrl: t.url,
    sessionApiKey: t.sessionApiKey,
    dispatcher: deps.dispatcher,
    timeoutMs: deps.requestTimeoutMs,
    signal,
  });
}

export function agentServer(t: NestedTarget, deps: NestedDeps, signal?: AbortSignal): AgentServerClient {
  return new AgentServerClient({
    baseUrl: t.url,
    sessionApiKey: t.sessionApiKey,
    dispatcher: deps.dispatcher,
    timeoutMs: deps.requestTimeoutMs,
    signal,
  });
}
