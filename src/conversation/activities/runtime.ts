// createRuntime / removeRuntime: everything that touches containers goes through a RuntimeProvider.
import type { Dispatcher } from 'undici';
import { NestedClient } from '../../nested/client';
import { ErrorType, NestorError } from '../../errors';
import type { RuntimeHandle, RuntimeProvider, RuntimeSpec } from '../../runtime/provider';
import { activityClient, heartbeat, sleep } from '../../shared/activity-context';
import { poolWorkflowId } from '../../shared/constants';
import { memberClaimedSignal } from '../../sandbox-pools/messages';

/** First /alive poll after this, then ×1.5 up to ALIVE_POLL_MAX_MS. */
export const ALIVE_POLL_FIRST_MS = 25;
export const ALIVE_POLL_MAX_MS = 500;

export interface CreateRuntimeInput extends RuntimeSpec {
  /** Give up (RuntimeStartFailed) when /alive has not answered after this long. @default the image's alive timeout */
  aliveTimeoutMs?: number;
}

export interface CreatedRuntime extends RuntimeHandle {
  /** Time from the call to the container's first /alive answer. */
  readyMs: number;
}

export interface RuntimeDeps {
  runtime: RuntimeProvider;
  dispatcher?: Dispatcher;
  /** Sandboxes go to sandbox hosts: this worker's engine holds none, so it has no pool to look at. */
  sandboxHosts?: boolean;
}

/** Poll GET /alive with a short first interval, heartbeating, until it answers or the bound passes. */
export async function waitAlive(
  handle: RuntimeHandle,
  timeoutMs: number,
  deps: RuntimeDeps,
  conversationId: string,
): Promise<void> {
  const c = new NestedClient({
    baseUrl: handle.url,
    sessionApiKey: handle.sessionApiKey,
    dispatcher: deps.dispatcher,
    timeoutMs: 2000,
  });
  const started = Date.now();
  let delay = ALIVE_POLL_FIRST_MS;
  for (let polls = 1; ; polls++) {
    if (await c.alive()) return;
    heartbeat({ polls });
    const elapsed = Date.now() - started;
    if (polls % 10 === 0 || elapsed >= timeoutMs) {
      const state = await deps.runtime.inspect(conversationId);
      // 'restarting': it exited and Docker is bringing it back (restart policy): a crash loop, not a slow start.
      if (!state || state.state === 'exited' || state.state === 'dead' || state.state === 'restarting') {
        throw new NestorError(
          ErrorType.RuntimeStartFailed,
          `the runtime stopped before answering /alive: ${await deps.runtime.diagnose(conversationId)}`,
          true,
        );
      }
    }
    if (elapsed >= timeoutMs) {
      throw new NestorError(
        ErrorType.RuntimeStartFailed,
        `GET /alive did not answer within ${timeoutMs} ms: ${await deps.runtime.diagnose(conversationId)}`,
        true,
      );
    }
    await sleep(Math.min(delay, timeoutMs - elapsed));
    delay = Math.min(ALIVE_POLL_MAX_MS, Math.ceil(delay * 1.5));
  }
}

/**
 * Tell the pool's owner a member was taken, so it refills now rather than at its next check. Not awaited: the start
 * does not wait for it, and a signal that fails (no pool workflow, e.g. members left by a drained pool) changes nothing
 * (the owner counts claims from the engine anyway).
 */
function wakePool(runtime: RuntimeProvider): void {
  const client = activityClient();
  if (!runtime.pool || !client) return;
  client.workflow
    .getHandle(poolWorkflowId(runtime.pool.poolName))
    .signal(memberClaimedSignal, {})
    .catch(() => undefined);
}

/** A sandbox just made, adopted, claimed or resumed: the pool told of a claim, then /alive awaited and the server initialized. */
async function bringAlive(
  deps: RuntimeDeps,
  input: { conversationId: string; aliveTimeoutMs?: number },
  handle: RuntimeHandle,
  started: number,
): Promise<CreatedRuntime> {
  heartbeat({ runtimeId: handle.runtimeId, adopted: handle.adopted, startPath: handle.startPath });
  if (handle.startPath === 'pool' && !handle.adopted) wakePool(deps.runtime);
  await waitAlive(
    handle,
    input.aliveTimeoutMs ?? (await deps.runtime.requirements()).aliveTimeoutMs,
    deps,
    input.conversationId,
  );
  // A sandbox whose provider says its server took its keys at boot has nothing to be given (one engine call fewer).
  if (handle.deferredInit !== false) await deps.runtime.initialize?.(input.conversationId);
  return { ...handle, readyMs: Date.now() - started };
}

export function createRuntimeActivities(deps: RuntimeDeps) {
  return {
    /** Create or adopt the conversation's container, start it and wait until the nested server is alive. */
    async createRuntime(input: CreateRuntimeInput): Promise<CreatedRuntime> {
      const started = Date.now();
      const { aliveTimeoutMs: _, ...spec } = input;
      return bringAlive(deps, input, await deps.runtime.create(spec), started);
    },

    /**
     * Only from the warm pool (asked beside the user's slot): a claimed member, alive and initialized, or null when
     * there was none to take (the start then creates one after its slot). Never creates a sandbox.
     */
    async claimRuntime(input: CreateRuntimeInput): Promise<CreatedRuntime | null> {
      const started = Date.now();
      const { aliveTimeoutMs: _, ...spec } = input;
      const handle = await deps.runtime.claim?.(spec);
      return handle ? bringAlive(deps, input, handle, started) : null;
    },

    /**
     * Whether this worker's engine holds the start's sandbox (no sandbox hosts), and whether the request can take a
     * member of its warm pool (a pool here, the request eligible): a start on this engine claims beside its slot. No
     * engine call: a claim that finds no ready member costs one, beside the slot.
     */
    async whereSandbox(input: CreateRuntimeInput): Promise<{ here: boolean; canClaim: boolean }> {
      if (deps.sandboxHosts) return { here: false, canClaim: false };
      const pool = deps.runtime.pool;
      return { here: true, canClaim: !!deps.runtime.claim && !!pool && !pool.ineligible(input) };
    },

    /** Stop the conversation's container but keep it and its file store. Idempotent. */
    async pauseRuntime(input: { conversationId: string }): Promise<void> {
      await deps.runtime.pause(input.conversationId);
    },

    /** Start a paused container again and wait until the nested server is alive; the URL may change. */
    async resumeRuntime(input: {
      conversationId: string;
      incarnation?: string;
      aliveTimeoutMs?: number;
    }): Promise<CreatedRuntime> {
      const started = Date.now();
      return bringAlive(deps, input, await deps.runtime.resume(input.conversationId, input.incarnation), started);
    },

    /** Remove the conversation's container (and its anonymous volumes). Idempotent. */
    async removeRuntime(input: { conversationId: string }): Promise<{ removed: boolean }> {
      return { removed: await deps.runtime.remove(input.conversationId) };
    },
  };
}
