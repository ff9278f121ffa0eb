// The benchmark's warm-pool phases: time to ready from the pool beside cold, a burst larger than the pool (how many
// starts it served, how the rest fared, how long the refill took), on the emulator and on the real OpenHands image.
import { performance } from 'node:perf_hooks';
import type { ConversationClient } from '../../src/conversation/client';
import { drainPool, poolStatus, resizePool } from '../../src/sandbox-pools/pools';
import type { PoolStatus } from '../../src/sandbox-pools/messages';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { stats, type Stats } from '../stats';
import { startBreakdown, medianParts } from './breakdown';
import { SETTINGS, log, newId, pool } from './measure';

export interface PoolFigures {
  image: string;
  size: number;
  /** Resize from nothing to `size` ready. */
  fillMs: number;
  cold: Stats;
  pooled: Stats;
  /** Starts the sequential run took from the pool (the rest went cold: the pool was still refilling). */
  pooledShare: string;
  /** Where a pooled start's time went, from its history (scripts/bench/breakdown.ts): each part's median. */
  pooledParts?: Array<{ part: string; p50Ms: number }>;
  burst?: {
    starts: number;
    fromPool: number;
    pooledMs: Stats;
    coldMs: Stats;
    /** From the burst's last answer until the pool was full again. */
    refillMs: number;
  };
}

/** A start a pooled sandbox can serve: no extra env (the emulator's pool env starts conversations at once). */
const input = (id: string, settings: StartConversationRequest['settings'], fromPool = true): StartConversationRequest => ({
  conversationId: id,
  userId: `user-${id}`,
  settings: { ...settings, sandbox: fromPool ? {} : { fromPool: false, env: { CONVERSATION_START_DELAY_MS: '0' } } },
  timeouts: { aliveTimeoutMs: 300_000, readyTimeoutMs: 300_000 },
});

async function until(client: ConversationClient, name: string, pred: (s: PoolStatus) => boolean, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await poolStatus(client.client, name);
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`pool ${name} never got there: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function timedStart(client: ConversationClient, req: StartConversationRequest) {
  const t0 = performance.now();
  const at = Date.now();
  const info = await client.start(req);
  const ms = performance.now() - t0;
  return { ms, path: info.startPath, id: req.conversationId, at, answeredAt: at + ms };
}

/**
 * The pool of the worker's image: fill it, `n` sequential starts from it (waiting for a ready member before each, so
 * each is a pooled start), `nCold` cold ones beside them, then (if `burst`) that many starts at once against a full
 * pool and the time it takes to fill again. Drained at the end.
 */
export async function poolFigures(
  client: ConversationClient,
  o: {
    pool: string;
    image: string;
    size: number;
    n: number;
    nCold: number;
    burst?: number;
    settings?: StartConversationRequest['settings'];
    bootMs: number;
  },
): Promise<PoolFigures> {
  const settings = o.settings ?? SETTINGS;
  const t0 = performance.now();
  await resizePool(client.client, { taskQueue: client.taskQueue, pool: o.pool, size: o.size });
  await until(client, o.pool, (s) => s.ready >= o.size, o.bootMs * o.size + 60_000);
  const fillMs = Math.round(performance.now() - t0);
  log(`  pool ${o.pool}: ${o.size} ready in ${fillMs} ms`);
  const seq = [];
  const parts = [];
  for (let i = 0; i < o.n; i++) {
    await until(client, o.pool, (s) => s.ready >= 1, o.bootMs + 60_000);
    const r = await timedStart(client, input(newId('pooled'), settings));
    log(`  from the pool ${i + 1}/${o.n}: ${Math.round(r.ms)} ms (${r.path})`);
    seq.push(r);
    if (r.path === 'pool') parts.push(await startBreakdown(client.client, r.id, r.at, r.answeredAt));
    await client.close(r.id);
  }
  const cold = [];
  for (let i = 0; i < o.nCold; i++) {
    const r = await timedStart(client, input(newId('cold'), settings, false));
    log(`  cold ${i + 1}/${o.nCold}: ${Math.round(r.ms)} ms`);
    cold.push(r);
    await client.close(r.id);
  }
  const out: PoolFigures = {
    image: o.image,
    size: o.size,
    fillMs,
    cold: stats(cold.map((r) => r.ms)),
    pooled: stats(seq.filter((r) => r.path === 'pool').map((r) => r.ms)),
    pooledShare: `${seq.filter((r) => r.path === 'pool').length}/${seq.length}`,
    ...(parts.length && { pooledParts: medianParts(parts) }),
  };
  if (o.burst) out.burst = await burstFigures(client, o.pool, o.size, o.burst, settings, o.bootMs);
  await drainPool(client.client, o.pool);
  return out;
}

async function burstFigures(
  client: ConversationClient,
  name: string,
  size: number,
  n: number,
  settings: StartConversationRequest['settings'],
  bootMs: number,
): Promise<NonNullable<PoolFigures['burst']>> {
  await until(client, name, (s) => s.ready >= size, bootMs * size + 60_000);
  const ids = Array.from({ length: n }, () => newId('burst'));
  const runs = await pool(ids, n, (id) => timedStart(client, input(id, settings)));
  const t0 = performance.now();
  await until(client, name, (s) => s.ready >= size, bootMs * size + 60_000);
  const refillMs = Math.round(performance.now() - t0);
  await pool(ids, 8, (id) => client.close(id));
  const pooled = runs.filter((r) => r.path === 'pool');
  log(`  burst of ${n} against ${size}: ${pooled.length} from the pool; refilled in ${refillMs} ms`);
  return {
    starts: n,
    fromPool: pooled.length,
    pooledMs: stats(pooled.map((r) => r.ms)),
    coldMs: stats(runs.filter((r) => r.path !== 'pool').map((r) => r.ms)),
    refillMs,
  };
}
