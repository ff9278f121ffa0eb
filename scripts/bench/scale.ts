// The measurements of `npm run bench:scale` (scripts/bench-scale.ts), one function per phase; nothing here prints a
// table. Processes are read from /proc: CPU seconds and RSS of the two temporal-server processes, PostgreSQL (its
// postmaster and every backend), each worker process and this one (the clients and the emulator's driver).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import type { ConversationClient } from '../../src/conversation/client';
import type { LocalCluster } from '../../src/dev/cluster';
import { messagesSaid } from '../../src/nested/said';
import { conversationWorkflowId } from '../../src/shared/constants';
import type { AgentLoopInfo, StartConversationRequest } from '../../src/shared/schemas';
import { stats, type Stats } from '../stats';
import { SETTINGS, cpuSeconds, log, pool, rssMb } from './measure';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A start as the benchmark sends it: three conversations per user (the default per-user limit), never idle-paused. */
export function scaleStart(id: string, i: number, prefix: string): StartConversationRequest {
  return {
    conversationId: id,
    userId: `${prefix}-user-${Math.floor(i / 3)}`,
    settings: { ...SETTINGS, sandbox: { env: {} } },
    // Live for the whole run: an idle pause would be work of its own in the middle of a measure.
    timeouts: { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000, idleTimeoutMs: 6 * 3600_000 },
  };
}

// ---------- processes ----------

/** PostgreSQL's processes: the postmaster and its children (one backend per server connection). */
function postgresPids(cluster: LocalCluster): number[] {
  const master = Number(readFileSync(join(cluster.o.dir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const kids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === master;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [master, ...kids];
}

const safe = (f: () => number) => {
  try {
    return f();
  } catch {
    return 0;
  }
};

export interface Processes {
  cluster: LocalCluster;
  workers: Record<string, ChildProcess>;
  /** The emulator every conversation's sandbox is (the provider that creates nothing points there). */
  emulator: ChildProcess;
}

/** CPU seconds so far per part of the system; PostgreSQL's backends summed. */
export function cpuNow(p: Processes): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, child] of p.cluster.servers) out[`temporal-server ${name}`] = safe(() => cpuSeconds(child.pid!));
  out.postgresql = postgresPids(p.cluster).reduce((s, pid) => s + safe(() => cpuSeconds(pid)), 0);
  for (const [name, child] of Object.entries(p.workers)) out[name] = safe(() => cpuSeconds(child.pid!));
  out.emulator = safe(() => cpuSeconds(p.emulator.pid!));
  out['bench (clients)'] = cpuSeconds(process.pid);
  return out;
}

/** Cores each part kept busy between two cpuNow readings `wallS` apart. */
export function coresBetween(a: Record<string, number>, b: Record<string, number>, wallS: number) {
  return Object.fromEntries(Object.keys(b).map((k) => [k, Math.round(((b[k] - (a[k] ?? 0)) / wallS) * 100) / 100]));
}

/**
 * A worker process (scale-worker.ts) with its own environment; resolves once it polls. BENCH_WORKER_NODE_ARGS adds
 * Node options (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where a worker's CPU goes).
 */
export async function spawnWorker(env: Record<string, string>): Promise<ChildProcess> {
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, join(__dirname, 'scale-worker.js')], {
    env: { ...process.env, NESTOR_LOG_LEVEL: 'WARN', NESTOR_REAPER_INTERVAL_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`bench worker exited (${code}) before polling`)));
  });
  return child;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await gone;
  clearTimeout(t);
}

/** The worker's Temporal SDK metrics (Prometheus text), each summed over its labels. */
export async function workerMetrics(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(temporal_(?:sticky_cache_[a-z_]+|workflow_task_replay_latency_count))(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(
      line,
    );
    if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

// ---------- phase 1: the start rate, ramped ----------

export interface RampStep {
  targetPerS: number;
  achievedPerS: number;
  starts: number;
  failed: number;
  latencyMs: Stats;
  cores: Record<string, number>;
  machineCores: number;
  ok: boolean;
}

/** The machine's busy cores over a span, from /proc/stat's first line (every process, not only ours). */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

/**
 * Open loop: starts issued at `rate` per second for `seconds`, alternating the two frontends' clients, whatever the
 * answers do; the step holds when every start answered and p99 client → RUNNING ≤ 2 s.
 */
export async function rampStep(
  clients: ConversationClient[],
  p: Processes,
  rate: number,
  seconds: number,
  prefix: string,
): Promise<RampStep> {
  const n = Math.round(rate * seconds);
  const latencies: number[] = [];
  let failed = 0;
  const c0 = cpuNow(p);
  const m0 = machineBusy();
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const id = `${prefix}-${i}`;
    const s = performance.now();
    inflight.push(
      clients[i % clients.length].start(scaleStart(id, i, prefix)).then(
        () => void latencies.push(performance.now() - s),
        () => void failed++,
      ),
    );
  }
  const issuedS = (performance.now() - t0) / 1000;
  await Promise.all(inflight);
  const wallS = (performance.now() - t0) / 1000;
  const latencyMs = stats(latencies);
  return {
    targetPerS: rate,
    achievedPerS: Math.round((latencies.length / Math.max(wallS, issuedS)) * 10) / 10,
    starts: n,
    failed,
    latencyMs,
    cores: coresBetween(c0, cpuNow(p), wallS),
    machineCores: Math.round(((machineBusy() - m0) / wallS) * 100) / 100,
    ok: failed === 0 && latencyMs.p99 <= 2000,
  };
}

// ---------- phase 2: live conversations on one worker ----------

export interface LiveSample {
  live: number;
  rssMb: number;
  metrics: Record<string, number>;
}

/** Start `n` conversations (and send each one message) at `concurrency`, sampling the worker's RSS as they grow. */
export async function holdLive(
  client: ConversationClient,
  worker: { pid: number; metricsPort: number },
  n: number,
  concurrency: number,
  prefix: string,
): Promise<{ infos: AgentLoopInfo[]; samples: LiveSample[]; perS: number; failed: number }> {
  const infos: AgentLoopInfo[] = [];
  const samples: LiveSample[] = [
    { live: 0, rssMb: rssMb(worker.pid), metrics: await workerMetrics(worker.metricsPort) },
  ];
  const every = Math.max(1, Math.round(n / 10));
  let failed = 0;
  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async (i) => {
      try {
        const info = await client.start(scaleStart(`${prefix}-${i}`, i, prefix));
        await client.sendMessage(info.conversationId, { content: 'hello', messageId: `${prefix}-${i}-m0` });
        infos.push(info);
      } catch (err) {
        if (failed++ < 3) log(`live ${prefix}-${i}: ${String(err)}`);
      }
      const done = infos.length + failed;
      if (done % every === 0) {
        samples.push({ live: infos.length, rssMb: rssMb(worker.pid), metrics: await workerMetrics(worker.metricsPort) });
        log(`${infos.length} live, worker RSS ${samples.at(-1)!.rssMb} MB`);
      }
    },
  );
  return { infos, samples, perS: Math.round((n / ((performance.now() - t0) / 1000)) * 10) / 10, failed };
}

/** Messages to random live conversations; each must be acknowledged and then answered by the agent. */
export async function roundTrips(
  client: ConversationClient,
  infos: AgentLoopInfo[],
  n: number,
  concurrency: number,
): Promise<{ latencyMs: Stats; failed: number; unanswered: number }> {
  const picks = Array.from({ length: n }, (_, k) => ({ k, info: infos[Math.floor(Math.random() * infos.length)] }));
  const latencies: number[] = [];
  let failed = 0;
  let unanswered = 0;
  await pool(picks, concurrency, async ({ k, info }) => {
    const s = performance.now();
    try {
      await client.sendMessage(info.conversationId, { content: `round trip ${k}`, messageId: `rt-${k}-${s}` });
      latencies.push(performance.now() - s);
    } catch (err) {
      if (failed++ < 3) log(`round trip to ${info.conversationId}: ${String(err)}`);
      return;
    }
    // Answered: the agent's message after this one on the server (the emulator answers at once; allow it 10 s).
    for (let t = 0; ; t++) {
      const said = await messagesSaid(info);
      const mine = said.findIndex((m) => m.source === 'user' && m.text === `round trip ${k}`);
      if (mine >= 0 && said.slice(mine + 1).some((m) => m.source === 'agent')) return;
      if (t >= 100) return void unanswered++;
      await sleep(100);
    }
  });
  return { latencyMs: stats(latencies), failed, unanswered };
}

// ---------- phase 3: what a start and a message cost in history and in PostgreSQL ----------

/** Bytes of the two databases (history and visibility) on disk. */
export function postgresBytes(cluster: LocalCluster): number {
  return Number(
    cluster.postgres.psql(
      "select pg_database_size('temporal') + pg_database_size('temporal_visibility')",
    ).trim(),
  );
}

/** Every run of a workflow ID: events and bytes of each (a continued conversation has several). */
export async function runsOf(client: Client, workflowId: string): Promise<{ events: number; bytes: number }[]> {
  const runs: { events: number; bytes: number }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const d = await client.workflow.getHandle(workflowId, w.runId).describe();
    runs.push({ events: d.historyLength, bytes: d.historySize ?? 0 });
  }
  return runs;
}

/** Events and bytes of conversation `id`'s current run. */
export async function historyOf(client: Client, conversationId: string) {
  const d = await client.workflow.getHandle(conversationWorkflowId(conversationId)).describe();
  return { events: d.historyLength, bytes: d.historySize ?? 0 };
}
