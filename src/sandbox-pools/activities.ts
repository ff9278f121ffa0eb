// What the SandboxPool workflow asks of the Docker engine: survey its members (with a health check), boot one, retire
// one, and how many the machine holds. The pool's members are found in the engine by label every time, so the
// workflow never counts on a list that a claim, a crash or an operator may have changed.
import { NestedClient } from '../nested/client';
import type { PoolOps, RuntimeProvider } from '../runtime/provider';
import { ErrorType, NestorError } from '../errors';
import { heartbeat, sleep } from '../shared/activity-context';
import { DEFAULT_POOL_MEMORY_SHARE } from '../defaults';
import type { PoolCapacity, PoolSurvey } from './messages';

export interface PoolActivityDeps {
  runtime: RuntimeProvider;
  /** Docker's total memory, for the capacity check. @default the engine's `MemTotal` */
  hostMemoryMb?: () => Promise<number>;
  /** @default DEFAULT_POOL_MEMORY_SHARE */
  memoryShare?: number;
}

/** The provider's pool operations; a provider without pools (the shared-server one) cannot keep one. */
function poolOf(runtime: RuntimeProvider): PoolOps {
  if (!runtime.pool)
    throw new NestorError(
      ErrorType.InvalidInput,
      `the ${runtime.kind} runtime keeps no warm pools; use the docker runtime (NESTOR_RUNTIME)`,
      false,
    );
  return runtime.pool;
}

/** GET /alive answered within two seconds. */
async function alive(url: string): Promise<boolean> {
  return new NestedClient({ baseUrl: url, sessionApiKey: '', timeoutMs: 2000 }).alive();
}

export function createPoolActivities(deps: PoolActivityDeps) {
  return {
    /** Every unclaimed member with its age and what is wrong with it (not running, not answering /alive). */
    async surveyPool(input: { pool: string }): Promise<PoolSurvey> {
      const pool = poolOf(deps.runtime);
      checkPool(pool, input.pool);
      const now = Date.now();
      const members = await Promise.all(
        (await pool.members()).map(async (m) => {
          const ageMs = now - Date.parse(m.createdAt);
          if (m.containerState !== 'running')
            return { memberId: m.memberId, state: m.state, ageMs, problem: `container ${m.containerState}` };
          if (m.state !== 'ready') return { memberId: m.memberId, state: m.state, ageMs };
          const url = await pool.memberUrl(m.memberId);
          const ok = url !== undefined && (await alive(url));
          return { memberId: m.memberId, state: m.state, ageMs, ...(!ok && { problem: 'GET /alive did not answer' }) };
        }),
      );
      return { members };
    },

    /** Boot member `memberId` (idempotent per ID), wait until it answers /alive, then make it claimable. */
    async createPoolMember(input: { pool: string; memberId: string; aliveTimeoutMs?: number }): Promise<void> {
      const pool = poolOf(deps.runtime);
      checkPool(pool, input.pool);
      const made = await pool.createMember(input.memberId);
      // An earlier attempt made it ready and a start claimed it since: that boot is done; nothing is made again.
      if ('taken' in made) return;
      const { url } = made;
      const timeoutMs = input.aliveTimeoutMs ?? (await deps.runtime.requirements()).aliveTimeoutMs;
      const started = Date.now();
      for (let delay = 25; !(await alive(url)); delay = Math.min(500, Math.ceil(delay * 1.5))) {
        heartbeat({ memberId: input.memberId, waitedMs: Date.now() - started });
        if (Date.now() - started > timeoutMs)
          throw new NestorError(
            ErrorType.RuntimeStartFailed,
            `pool member ${input.memberId} did not answer GET /alive within ${timeoutMs} ms`,
            false,
          );
        await sleep(delay);
      }
      if (!(await pool.markReady(input.memberId)))
        throw new NestorError(
          ErrorType.RuntimeStartFailed,
          `pool member ${input.memberId} vanished while booting (removed by hand?)`,
          false,
        );
    },

    /** Remove an unclaimed member; false when a start claimed it meanwhile (then it is that conversation's). */
    async retirePoolMember(input: { pool: string; memberId: string }): Promise<boolean> {
      const pool = poolOf(deps.runtime);
      checkPool(pool, input.pool);
      return pool.retire(input.memberId);
    },

    /** How many members this machine holds: the pool's share of the engine's memory over one member's. */
    async poolCapacity(input: { pool: string }): Promise<PoolCapacity> {
      checkPool(poolOf(deps.runtime), input.pool);
      return capacityOf(deps.runtime, deps);
    },
  };
}

/** The pool's share of the host's memory (the engine's total) over one member's (the image's default memory limit). */
export async function capacityOf(
  runtime: RuntimeProvider,
  o: Pick<PoolActivityDeps, 'hostMemoryMb' | 'memoryShare'> = {},
): Promise<PoolCapacity> {
  const manifest = await runtime.requirements();
  const hostMemoryMb = await (o.hostMemoryMb ?? (() => poolOf(runtime).hostMemoryMb()))();
  const memberMemoryMb = manifest.defaultMemoryMb;
  const share = o.memoryShare ?? DEFAULT_POOL_MEMORY_SHARE;
  return { memberMemoryMb, hostMemoryMb, maxSize: Math.floor((hostMemoryMb * share) / memberMemoryMb) };
}

/** This worker keeps the pool of its own image only: a pool name of another image is a misrouted task. */
function checkPool(pool: PoolOps, asked: string): void {
  if (pool.poolName !== asked)
    throw new NestorError(
      ErrorType.InvalidInput,
      `pool '${asked}' is not this worker's (its image's pool is '${pool.poolName}'); check NESTOR_IMAGE on the workers of this task queue`,
      false,
    );
}
