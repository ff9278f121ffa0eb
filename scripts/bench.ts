// `npm run bench`: nestor's cost measured against the physical limit (the container's own start), on this machine.
// Prints a table, writes bench/results.json and draws bench/results.svg. Reports; never asserts.
//
// 1. time to ready, 20 sequential and 20 concurrent (5 at a time), next to a baseline making the same Docker and HTTP
//    calls in one process without Temporal; orchestration overhead and readiness-detection lag
// 2. starts per second at concurrency 1, 4, 8 next to bare Docker create → start → remove of the same image
// 3. message relay latency over 200 messages
// 4. worker RSS with 100 idle running conversations
// 5. the workflow machinery alone (a runtime provider that creates nothing): starts per second at 8, 32, 64
//
// Phases 1–4 run the real `nestor worker` as a child process against the dev server `npm start` runs (file
// database); phase 5 runs a worker in this process with SharedServerProvider and an in-process emulator.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tsToMs } from '@temporalio/common/lib/time';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime } from '@temporalio/worker';
import Docker from 'dockerode';
import { ConversationClient } from '../src/conversation/client';
import { generateKeySpec, parseEncryptionKeys } from '../src/codec/encryption';
import { nestorDataConverter } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { startDevServer, type DevServer } from '../src/dev/server';
import { NestedClient } from '../src/nested/client';
import { JsonLogger } from '../src/observability/log';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { SharedServerProvider } from '../src/runtime/shared-server';
import { createNestedActivities } from '../src/conversation/activities/nested';
import { createRuntimeActivities } from '../src/conversation/activities/runtime';
import { DEFAULT_MODEL_CAPABILITIES, resolveSession } from '../src/user-sessions/session';
import { LABELS, conversationWorkflowId } from '../src/shared/constants';
import type { AgentLoopInfo, StartConversationRequest } from '../src/shared/schemas';
import { createWorker } from '../src/worker';
import { configFromEnv, createEmulator } from '../emulator/src/server';
import { freePort } from '../test/helpers/net';
import { runtimeFigures, runtimeTable } from './bench-runtimes';
import { stats, type Stats } from './stats';

// The emulator's fault knobs and quick boots are what this script measures against; the real image has its own runs.
process.env.NESTOR_RUNTIME ??= 'emulator';

const OUT_DIR = join(PROJECT_ROOT, 'bench');
const CLI = join(PROJECT_ROOT, 'dist/src/cli.js');
const N_LATENCY = Number(process.env.BENCH_STARTS ?? 20);
const N_THROUGHPUT = Number(process.env.BENCH_THROUGHPUT_STARTS ?? 16);
const N_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200);
const N_IDLE = Number(process.env.BENCH_IDLE ?? 100);

// ---------- small helpers ----------

const median = (xs: number[]) => stats(xs).p50;

/** Run fn over items with at most `concurrency` at once; resolves to the results in order. */
async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
/** Per-process CPU use over fn: seconds, and cores busy on average. */
async function cpuOver<T>(
  pids: Record<string, number>,
  fn: () => Promise<T>,
): Promise<{ result: T; wallS: number; cpu: Record<string, { seconds: number; cores: number }> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const t0 = performance.now();
  const result = await fn();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => {
      const seconds = Math.round((cpuSeconds(pid) - before[k]) * 100) / 100;
      return [k, { seconds, cores: Math.round((seconds / wallS) * 100) / 100 }];
    }),
  );
  return { result, wallS: Math.round(wallS * 100) / 100, cpu };
}

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
let seq = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;

const SETTINGS = { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk-bench' };
const SANDBOX_ENV = { CONVERSATION_START_DELAY_MS: '0' };
const startInput = (id: string): StartConversationRequest => ({
  conversationId: id,
  userId: `user-${id}`,
  settings: { ...SETTINGS, sandbox: { env: SANDBOX_ENV } },
  timeouts: { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000 },
});

/** When the nested server turned the conversation RUNNING: the first event after 'loading' carries that moment. */
async function nestedReadyAt(info: AgentLoopInfo): Promise<number> {
  const nested = NestedClient.forConversation(info);
  const events = await nested.allEvents(info.conversationId);
  const after = events.find((e) => (e as { extras?: { agent_state?: string } }).extras?.agent_state !== 'loading');
  return Date.parse(String((after as { timestamp?: string } | undefined)?.timestamp));
}

// ---------- the phases ----------

interface StartSample {
  ms: number;
  lagMs: number;
  id: string;
}

async function nestorStarts(
  client: ConversationClient,
  n: number,
  concurrency: number,
  prefix: string,
): Promise<StartSample[]> {
  const ids = Array.from({ length: n }, () => newId(prefix));
  const samples = await pool(ids, concurrency, async (id) => {
    const t0 = performance.now();
    const info = await client.start(startInput(id));
    const ms = performance.now() - t0;
    return { ms, lagMs: Date.parse(info.readyAt!) - (await nestedReadyAt(info)), id };
  });
  await pool(ids, 8, (id) => client.close(id));
  return samples;
}

/** The same Docker and HTTP calls as a start, made directly: no Temporal, no workflow, no activity tasks. */
async function baselineStarts(n: number, concurrency: number, provider: DockerRuntimeProvider): Promise<number[]> {
  const runtime = createRuntimeActivities({ runtime: provider });
  const nested = createNestedActivities({});
  const ids = Array.from({ length: n }, () => newId('base'));
  const out = await pool(ids, concurrency, async (conversationId) => {
    const t0 = performance.now();
    resolveSession({ conversationId, userId: 'u', settings: SETTINGS } as never, DEFAULT_MODEL_CAPABILITIES);
    const rt = await runtime.createRuntime({
      conversationId,
      userId: `user-${conversationId}`,
      env: SANDBOX_ENV,
      aliveTimeoutMs: 60_000,
    });
    const target = { url: rt.url, sessionApiKey: rt.sessionApiKey, conversationId };
    await nested.configureNestedServer({ ...target, settings: SETTINGS as never });
    await nested.createConversation({ ...target });
    await nested.waitForReady({ ...target, readyTimeoutMs: 60_000 });
    return performance.now() - t0;
  });
  await pool(ids, 8, (id) => provider.remove(id));
  return out;
}

/** Wall-clock starts per second for n starts at a concurrency (closing after, untimed). */
async function nestorRate(client: ConversationClient, n: number, concurrency: number): Promise<number> {
  const ids = Array.from({ length: n }, () => newId(`rate${concurrency}`));
  const t0 = performance.now();
  await pool(ids, concurrency, (id) => client.start(startInput(id)));
  const s = (performance.now() - t0) / 1000;
  await pool(ids, 8, (id) => client.close(id));
  return n / s;
}

async function dockerRate(docker: Docker, image: string, n: number, concurrency: number): Promise<number> {
  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async () => {
      const c = await docker.createContainer({
        Image: image,
        Env: ['SESSION_API_KEY=bench'],
        Labels: { [LABELS.managed]: 'bench' },
      });
      await c.start();
      await c.remove({ force: true });
    },
  );
  return n / ((performance.now() - t0) / 1000);
}

/** Where the time of each sequential start went, from its history: activity execution by step, queue waits, workflow tasks. */
async function profile(client: ConversationClient, ids: string[]) {
  const perRun = await Promise.all(
    ids.map(async (id) => {
      const events = (await client.client.workflow.getHandle(conversationWorkflowId(id)).fetchHistory()).events ?? [];
      const t = (e: (typeof events)[number]) => tsToMs(e.eventTime);
      const byId = new Map(events.map((e) => [Number(e.eventId), e]));
      const status = (e: (typeof events)[number]) => {
        const data =
          e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.ConversationStatus?.data;
        return data ? Buffer.from(data).toString() : undefined;
      };
      const running = events.find((e) => status(e) === '"RUNNING"');
      const end = running ? t(running) : t(events[events.length - 1]);
      const start = t(events[0]);
      const steps: Record<string, number> = {};
      let activityQueue = 0;
      let workflowTasks = 0;
      for (const e of events) {
        if (t(e) > end) break;
        const done = e.activityTaskCompletedEventAttributes;
        if (done) {
          const scheduled = byId.get(Number(done.scheduledEventId))!;
          const started = byId.get(Number(done.startedEventId))!;
          const name = scheduled.activityTaskScheduledEventAttributes!.activityType!.name!;
          steps[name] = (steps[name] ?? 0) + (t(e) - t(started));
          activityQueue += t(started) - t(scheduled);
        }
        const wtDone = e.workflowTaskCompletedEventAttributes;
        if (wtDone) workflowTasks += t(e) - t(byId.get(Number(wtDone.scheduledEventId))!);
      }
      return { total: end - start, steps, activityQueue, workflowTasks };
    }),
  );
  const stepNames = [...new Set(perRun.flatMap((r) => Object.keys(r.steps)))];
  return {
    runs: perRun.length,
    workflowStartToRunningMs: median(perRun.map((r) => r.total)),
    activityExecutionMs: Object.fromEntries(stepNames.map((s) => [s, median(perRun.map((r) => r.steps[s] ?? 0))])),
    activityQueueWaitMs: median(perRun.map((r) => r.activityQueue)),
    workflowTaskMs: median(perRun.map((r) => r.workflowTasks)),
  };
}

/** Where a message's time goes, from the history: update accepted → sendEvent scheduled → started → completed → update completed. */
async function relayProfile(client: ConversationClient, id: string) {
  const events = (await client.client.workflow.getHandle(conversationWorkflowId(id)).fetchHistory()).events ?? [];
  const t = (e: (typeof events)[number]) => tsToMs(e.eventTime);
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const acceptedAt = new Map<string, number>();
  const parts = {
    acceptedToScheduled: [] as number[],
    scheduledToStarted: [] as number[],
    startedToCompleted: [] as number[],
    completedToUpdateCompleted: [] as number[],
  };
  let lastAccepted: number | undefined;
  let pending: { scheduled: number; started: number; completed: number } | undefined;
  for (const e of events) {
    const acc = e.workflowExecutionUpdateAcceptedEventAttributes;
    if (acc?.acceptedRequest?.input?.name === 'sendMessage') {
      lastAccepted = t(e);
      acceptedAt.set(acc.protocolInstanceId ?? '', t(e));
    }
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const scheduled = byId.get(Number(done.scheduledEventId))!;
      if (scheduled.activityTaskScheduledEventAttributes?.activityType?.name === 'sendEvent') {
        const started = byId.get(Number(done.startedEventId))!;
        pending = { scheduled: t(scheduled), started: t(started), completed: t(e) };
        if (lastAccepted !== undefined) parts.acceptedToScheduled.push(t(scheduled) - lastAccepted);
        parts.scheduledToStarted.push(t(started) - t(scheduled));
        parts.startedToCompleted.push(t(e) - t(started));
      }
    }
    if (e.workflowExecutionUpdateCompletedEventAttributes && pending) {
      parts.completedToUpdateCompleted.push(t(e) - pending.completed);
      pending = undefined;
    }
  }
  return Object.fromEntries(Object.entries(parts).map(([k, v]) => [`${k}Ms`, v.length ? median(v) : null]));
}

interface MachineryRow {
  concurrency: number;
  starts: number;
  perS: number;
  cpu: Record<string, { seconds: number; cores: number }>;
}

/**
 * Starts per second with a provider that creates nothing (one in-process emulator) and a worker in this process, at
 * concurrency 8, 32 and 64, with the CPU the Temporal server and this process used meanwhile.
 */
async function machineryAlone(server: DevServer, dataConverter: DataConverter): Promise<MachineryRow[]> {
  const emu = createEmulator(
    configFromEnv({
      SESSION_API_KEY: 'bench-key',
      ALLOW_SET_CONVERSATION_ID: '1',
      FILE_STORE_PATH: mkdtempSync(join(tmpdir(), 'nestor-bench-emu-')),
      port: '0',
      HOST: '127.0.0.1',
      CONVERSATION_START_DELAY_MS: '0',
      AGENT_REPLY_DELAY_MS: '0',
    }),
  );
  const emuPort = await emu.listen();
  const connection = await NativeConnection.connect({ address: server.address });
  const client = await ConversationClient.connect({
    address: server.address,
    taskQueue: 'bench-machinery',
    dataConverter,
  });
  const worker = await createWorker({
    connection,
    taskQueue: 'bench-machinery',
    dataConverter,
    deps: {
      runtime: new SharedServerProvider({ url: `http://127.0.0.1:${emuPort}`, sessionApiKey: 'bench-key' }),
      maxConversationsPerUser: 1000,
    },
  });
  const running = worker.run();
  const rows: MachineryRow[] = [];
  try {
    await nestorStarts(client, 8, 8, 'mwarm');
    for (const k of [8, 32, 64]) {
      const n = Math.max(32, 2 * k);
      const run = await cpuOver({ temporalServer: server.process.pid!, benchAndWorker: process.pid }, () =>
        nestorRate(client, n, k),
      );
      rows.push({ concurrency: k, starts: n, perS: Math.round(run.result * 100) / 100, cpu: run.cpu });
    }
  } finally {
    worker.shutdown();
    await running;
    await client.closeConnection();
    await connection.close();
    await emu.close();
  }
  return rows;
}

// ---------- the chart ----------

interface Bar {
  label: string;
  value: number;
  kind: 'nestor' | 'reference';
}
function svgChart(panels: Array<{ title: string; unit: string; bars: Bar[] }>, caption: string): string {
  const W = 760;
  const LABEL = 230;
  const BAR_H = 18;
  const GAP = 6;
  let y = 62;
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${p.title} (${p.unit})</text>`);
    y += 10;
    const max = Math.max(...p.bars.map((b) => b.value), 1e-9);
    for (const b of p.bars) {
      const w = Math.max(1, ((W - LABEL - 90) * b.value) / max);
      parts.push(
        `<text x="${LABEL - 6}" y="${y + BAR_H - 5}" text-anchor="end">${b.label}</text>`,
        `<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${b.kind === 'nestor' ? '#3b6fd4' : '#a0a6b0'}"/>`,
        `<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + BAR_H - 5}">${b.value}</text>`,
      );
      y += BAR_H + GAP;
    }
    y += 22;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 20}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">nestor benchmark — ${caption}</text>`,
    `<rect x="10" y="30" width="12" height="12" fill="#3b6fd4"/><text x="27" y="40">nestor</text>`,
    `<rect x="90" y="30" width="12" height="12" fill="#a0a6b0"/><text x="107" y="40">reference: the same calls without Temporal, or bare Docker</text>`,
    ...parts,
    '</svg>',
  ].join('\n');
}

// ---------- main ----------

async function main() {
  Runtime.install({ logger: new JsonLogger({ level: 'ERROR' }) });
  const base = loadConfig();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'nestor-bench-'));
  const c = { ...base, dataDir, temporalPort: await freePort(), uiPort: await freePort() };
  log(`dev server (file database in ${dataDir})`);
  const server = await startDevServer(c);
  const keySpec = generateKeySpec('bench');
  const dataConverter = nestorDataConverter(parseEncryptionKeys(keySpec));
  const taskQueue = 'bench';
  const client = await ConversationClient.connect({ address: server.address, taskQueue, dataConverter });
  const docker = new Docker();
  let worker: ChildProcess | undefined;
  const results: Record<string, unknown> = { machine, date: new Date().toISOString(), image: base.runtimeImage };
  try {
    worker = spawn('node', [CLI, 'worker'], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: server.address,
        NESTOR_TASK_QUEUE: taskQueue,
        NESTOR_ENCRYPTION_KEYS: keySpec,
        NESTOR_METRICS_PORT: '0',
        NESTOR_REAPER_INTERVAL_MS: '0',
        NESTOR_MAX_CONVERSATIONS_PER_USER: '1000',
        NESTOR_LOG_LEVEL: 'WARN',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    log('warm-up (bundle, image cache)');
    await nestorStarts(client, 3, 1, 'warm');
    const provider = new DockerRuntimeProvider({ image: base.runtimeImage, owner: 'bench-baseline' });
    await baselineStarts(2, 1, provider);

    // 1. time to ready
    log(`1. time to ready: ${N_LATENCY} sequential, ${N_LATENCY} concurrent (5 at a time), each with its baseline`);
    const seqRun = await cpuOver({ temporalServer: server.process.pid!, worker: worker.pid!, bench: process.pid }, () =>
      nestorStarts(client, N_LATENCY, 1, 'seq'),
    );
    const seqN = seqRun.result;
    results.cpuSequentialStarts = { wallS: seqRun.wallS, ...seqRun.cpu };
    const seqB = await baselineStarts(N_LATENCY, 1, provider);
    const conN = await nestorStarts(client, N_LATENCY, 5, 'con');
    const conB = await baselineStarts(N_LATENCY, 5, provider);
    const ready = {
      sequential: { nestor: stats(seqN.map((s) => s.ms)), baseline: stats(seqB) },
      concurrent5: { nestor: stats(conN.map((s) => s.ms)), baseline: stats(conB) },
      detectionLagMs: stats([...seqN, ...conN].map((s) => s.lagMs)),
    };
    const overhead = (k: 'sequential' | 'concurrent5') => ({
      p50Ms: Math.round(ready[k].nestor.p50 - ready[k].baseline.p50),
      p99Ms: Math.round(ready[k].nestor.p99 - ready[k].baseline.p99),
      ratioP50: Math.round((ready[k].nestor.p50 / ready[k].baseline.p50) * 100) / 100,
    });
    results.timeToReady = {
      ...ready,
      overhead: { sequential: overhead('sequential'), concurrent5: overhead('concurrent5') },
    };
    results.profileSequential = await profile(
      client,
      seqN.map((s) => s.id),
    );

    // 2. throughput
    log(`2. starts per second at 1, 4, 8 (${N_THROUGHPUT} starts each) and bare Docker create → start → remove`);
    const throughput: Array<{ concurrency: number; nestorPerS: number; dockerPerS: number; ratio: number }> = [];
    for (const k of [1, 4, 8]) {
      const nestorPerS = await nestorRate(client, N_THROUGHPUT, k);
      const dockerPerS = await dockerRate(docker, base.runtimeImage, N_THROUGHPUT, k);
      throughput.push({
        concurrency: k,
        nestorPerS: Math.round(nestorPerS * 100) / 100,
        dockerPerS: Math.round(dockerPerS * 100) / 100,
        ratio: Math.round((nestorPerS / dockerPerS) * 100) / 100,
      });
    }
    results.throughput = throughput;

    // 3. relay
    log(`3. relay latency over ${N_MESSAGES} messages`);
    const relayId = newId('relay');
    const info = await client.start(startInput(relayId));
    const sentAt = new Map<string, number>();
    const rtt: number[] = [];
    for (let i = 0; i < N_MESSAGES; i++) {
      const messageId = `m-${i}`;
      const wall = Date.now();
      const t0 = performance.now();
      await client.sendMessage(relayId, { content: `message ${i}`, messageId });
      rtt.push(performance.now() - t0);
      sentAt.set(`message ${i}`, wall);
    }
    const nested = NestedClient.forConversation(info);
    const accepted = (await nested.allEvents(relayId))
      .filter((e) => e.source === 'user' && sentAt.has(String((e as { message?: string }).message)))
      .map(
        (e) =>
          Date.parse(String((e as { timestamp?: string }).timestamp)) -
          sentAt.get(String((e as { message?: string }).message))!,
      );
    results.relay = {
      roundTripMs: stats(rtt),
      sentToAcceptedMs: stats(accepted),
      profile: await relayProfile(client, relayId),
    };
    await client.close(relayId);

    // 4. memory with idle conversations
    log(`4. worker RSS with ${N_IDLE} idle running conversations`);
    const rssBefore = rssMb(worker.pid!);
    const idle = Array.from({ length: N_IDLE }, () => newId('idle'));
    await pool(idle, 8, (id) => client.start(startInput(id)));
    await new Promise((r) => setTimeout(r, 10_000));
    const rssIdle = rssMb(worker.pid!);
    await pool(idle, 8, (id) => client.close(id));
    results.memory = {
      conversations: N_IDLE,
      workerRssBeforeMb: rssBefore,
      workerRssWithIdleMb: rssIdle,
      perConversationKb: Math.round(((rssIdle - rssBefore) * 1024) / N_IDLE),
    };

    worker.kill('SIGINT');
    await new Promise((r) => worker!.once('exit', r));
    worker = undefined;

    // 5. machinery alone, on this dev server (file database) and on one without a database file
    log('5. the workflow machinery alone: starts per second at 8, 32, 64 (file database, then in memory)');
    results.machinery = await machineryAlone(server, dataConverter);
    const memServer = await startDevServer(
      { ...c, temporalPort: await freePort(), uiPort: await freePort() },
      { inMemory: true },
    );
    try {
      results.machineryInMemory = await machineryAlone(memServer, dataConverter);
    } finally {
      await memServer.stop();
    }

    // 6. the real OpenHands image beside the emulator
    log(`6. cold starts of each runtime image, split by segment, and a live sandbox's memory`);
    results.runtimes = await runtimeFigures(log);

    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(join(OUT_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    drawChart(results);
    printTable(results);
  } finally {
    worker?.kill('SIGKILL');
    await client.closeConnection();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** bench/results.svg from the results (`node dist/scripts/bench.js --chart` redraws it from bench/results.json). */
function drawChart(results: Record<string, any>): void {
  const machinery = results.machinery as MachineryRow[];
  const throughput = results.throughput as Array<{ concurrency: number; nestorPerS: number; dockerPerS: number }>;
  const machine = results.machine as string;
  const t = results.timeToReady as {
    sequential: { nestor: Stats; baseline: Stats };
    concurrent5: { nestor: Stats; baseline: Stats };
    detectionLagMs: Stats;
  };
  const relay = results.relay as { roundTripMs: Stats; sentToAcceptedMs: Stats };
  writeFileSync(
    join(OUT_DIR, 'results.svg'),
    svgChart(
      [
        {
          title: 'Time to ready',
          unit: 'ms',
          bars: [
            { label: 'sequential p50', value: t.sequential.nestor.p50, kind: 'nestor' },
            { label: 'sequential p50, no Temporal', value: t.sequential.baseline.p50, kind: 'reference' },
            { label: 'sequential p99', value: t.sequential.nestor.p99, kind: 'nestor' },
            { label: 'sequential p99, no Temporal', value: t.sequential.baseline.p99, kind: 'reference' },
            { label: '5 at a time p50', value: t.concurrent5.nestor.p50, kind: 'nestor' },
            { label: '5 at a time p50, no Temporal', value: t.concurrent5.baseline.p50, kind: 'reference' },
            { label: '5 at a time p99', value: t.concurrent5.nestor.p99, kind: 'nestor' },
            { label: '5 at a time p99, no Temporal', value: t.concurrent5.baseline.p99, kind: 'reference' },
          ],
        },
        {
          title: 'Starts per second',
          unit: '/s',
          bars: throughput.flatMap((r) => [
            { label: `nestor, concurrency ${r.concurrency}`, value: r.nestorPerS, kind: 'nestor' as const },
            { label: `bare Docker, concurrency ${r.concurrency}`, value: r.dockerPerS, kind: 'reference' as const },
          ]),
        },
        {
          title: 'Machinery alone (no containers)',
          unit: 'starts/s',
          bars: [
            ...machinery.map((m) => ({
              label: `concurrency ${m.concurrency}`,
              value: m.perS,
              kind: 'nestor' as const,
            })),
            ...(results.machineryInMemory as MachineryRow[]).map((m) => ({
              label: `concurrency ${m.concurrency}, no db file`,
              value: m.perS,
              kind: 'nestor' as const,
            })),
          ],
        },
        {
          title: `Message relay (${N_MESSAGES} messages) and readiness-detection lag`,
          unit: 'ms',
          bars: [
            { label: 'relay round trip p50', value: relay.roundTripMs.p50, kind: 'nestor' },
            { label: 'relay round trip p99', value: relay.roundTripMs.p99, kind: 'nestor' },
            { label: 'sent → accepted p50', value: relay.sentToAcceptedMs.p50, kind: 'nestor' },
            { label: 'sent → accepted p99', value: relay.sentToAcceptedMs.p99, kind: 'nestor' },
            { label: 'detection lag p50', value: t.detectionLagMs.p50, kind: 'nestor' },
            { label: 'detection lag p99', value: t.detectionLagMs.p99, kind: 'nestor' },
          ],
        },
      ],
      machine,
    ),
  );
}

function printTable(r: Record<string, any>) {
  const t = r.timeToReady;
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const lines = [
    `Machine: ${r.machine}; image ${r.image}; ${r.date}`,
    '',
    row(['measure', 'p50', 'p95', 'p99']),
    row(['---', '---', '---', '---']),
    row(['time to ready, sequential (ms)', t.sequential.nestor.p50, t.sequential.nestor.p95, t.sequential.nestor.p99]),
    row([
      '  same calls without Temporal (ms)',
      t.sequential.baseline.p50,
      t.sequential.baseline.p95,
      t.sequential.baseline.p99,
    ]),
    row([
      'time to ready, 5 at a time (ms)',
      t.concurrent5.nestor.p50,
      t.concurrent5.nestor.p95,
      t.concurrent5.nestor.p99,
    ]),
    row([
      '  same calls without Temporal (ms)',
      t.concurrent5.baseline.p50,
      t.concurrent5.baseline.p95,
      t.concurrent5.baseline.p99,
    ]),
    row(['readiness-detection lag (ms)', t.detectionLagMs.p50, t.detectionLagMs.p95, t.detectionLagMs.p99]),
    row(['relay round trip (ms)', r.relay.roundTripMs.p50, r.relay.roundTripMs.p95, r.relay.roundTripMs.p99]),
    row([
      'relay sent → accepted by nested server (ms)',
      r.relay.sentToAcceptedMs.p50,
      r.relay.sentToAcceptedMs.p95,
      r.relay.sentToAcceptedMs.p99,
    ]),
    '',
    `Orchestration overhead, sequential: p50 ${t.overhead.sequential.p50Ms} ms (×${t.overhead.sequential.ratioP50}), p99 ${t.overhead.sequential.p99Ms} ms; ` +
      `5 at a time: p50 ${t.overhead.concurrent5.p50Ms} ms (×${t.overhead.concurrent5.ratioP50}), p99 ${t.overhead.concurrent5.p99Ms} ms`,
    '',
    row(['concurrency', 'nestor starts/s', 'bare Docker create→start→remove /s', 'ratio']),
    row(['---', '---', '---', '---']),
    ...r.throughput.map((x: any) => row([x.concurrency, x.nestorPerS, x.dockerPerS, x.ratio])),
    '',
    row(['machinery alone, concurrency', 'starts', 'starts/s', 'CPU cores busy: Temporal server', 'bench + worker']),
    row(['---', '---', '---', '---', '---']),
    ...r.machinery.map((x: any) =>
      row([x.concurrency, x.starts, x.perS, x.cpu.temporalServer.cores, x.cpu.benchAndWorker.cores]),
    ),
    ...r.machineryInMemory.map((x: any) =>
      row([
        `${x.concurrency} (server without a database file)`,
        x.starts,
        x.perS,
        x.cpu.temporalServer.cores,
        x.cpu.benchAndWorker.cores,
      ]),
    ),
    '',
    `Worker RSS: ${r.memory.workerRssBeforeMb} MB idle, ${r.memory.workerRssWithIdleMb} MB with ${r.memory.conversations} running conversations (${r.memory.perConversationKb} KB each)`,
    '',
    `Where a sequential start's time goes (medians over ${r.profileSequential.runs} runs, from the histories): workflow start → RUNNING ${r.profileSequential.workflowStartToRunningMs} ms; ` +
      `activity execution ${JSON.stringify(r.profileSequential.activityExecutionMs)}; activity queue wait ${r.profileSequential.activityQueueWaitMs} ms; workflow tasks ${r.profileSequential.workflowTaskMs} ms`,
    '',
    `CPU during the sequential starts: Temporal server ${r.cpuSequentialStarts.temporalServer.cores} cores, worker ${r.cpuSequentialStarts.worker.cores}, bench client ${r.cpuSequentialStarts.bench.cores} (over ${r.cpuSequentialStarts.wallS} s)`,
    `Where a message's time goes (medians, from the history): ${JSON.stringify(r.relay.profile)}`,
    '',
    ...(r.runtimes ? ['Runtime images (phase 6):', '', runtimeTable(r.runtimes), ''] : []),
    `Written: bench/results.json, bench/results.svg`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (require.main === module && process.argv.includes('--chart')) {
  drawChart(JSON.parse(readFileSync(join(OUT_DIR, 'results.json'), 'utf8')));
} else if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
