// The benchmark's measurements: small helpers and one function per phase; nothing here prints or draws.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tsToMs } from '@temporalio/common/lib/time';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { ConversationClient } from '../../src/conversation/client';
import { type DevServer } from '../../src/dev/server';
import { NestedClient } from '../../src/nested/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { SharedServerProvider } from '../../src/runtime/shared-server';
import { createNestedActivities } from '../../src/conversation/activities/nested';
import { createRuntimeActivities } from '../../src/conversation/activities/runtime';
import { DEFAULT_MODEL_CAPABILITIES, resolveSession } from '../../src/user-sessions/session';
import { conversationWorkflowId } from '../../src/shared/constants';
import type { AgentLoopInfo, StartConversationRequest } from '../../src/shared/schemas';
import { createWorker } from '../../src/worker';
import { configFromEnv, createEmulator } from '../../emulator/src/server';
import { stats } from '../stats';



// ---------- small helpers ----------

export const median = (xs: number[]) => stats(xs).p50;

/** Run fn over items with at most `concurrency` at once; resolves to the results in order. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
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

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
/**
 * Core-seconds the whole machine has spent busy since boot (/proc/stat: every process, Docker's and the sandboxes'
 * included), the cost of a run that no process list covers.
 */
export function machineBusySeconds(): number {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [, , , idle, iowait] = v;
  return (v.reduce((a, b) => a + b, 0) - idle - iowait) / 100;
}

/** Per-process CPU use over fn: seconds, and cores busy on average. */
export async function cpuOver<T>(
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

export const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
let seq = 0;
export const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;

export const SETTINGS = { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk-bench' };
export const SANDBOX_ENV = { CONVERSATION_START_DELAY_MS: '0' };
export const startInput = (id: string): StartConversationRequest => ({
  conversationId: id,
  userId: `user-${id}`,
  settings: { ...SETTINGS, sandbox: { env: SANDBOX_ENV } },
  timeouts: { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000 },
});

/** When the nested server turned the conversation RUNNING: the first event after 'loading' carries that moment. */
export async function nestedReadyAt(info: AgentLoopInfo): Promise<number> {
  const nested = NestedClient.forConversation(info);
  const events = await nested.allEvents(info.conversationId);
  const after = events.find((e) => (e as { extras?: { agent_state?: string } }).extras?.agent_state !== 'loading');
  return Date.parse(String((after as { timestamp?: string } | undefined)?.timestamp));
}


// ---------- the phases ----------

export interface StartSample {
  ms: number;
  lagMs: number;
  id: string;
}

export async function nestorStarts(
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
export async function baselineStarts(n: number, concurrency: number, provider: DockerRuntimeProvider): Promise<number[]> {
  return (await baselineRun(n, concurrency, provider)).ms;
}

/**
 * The same calls a start makes (settings check, container create and /alive, nested set-up, readiness), in this
 * process without Temporal: each one's time to ready, and the wall time of all (removals after, untimed).
 */
async function baselineRun(n: number, concurrency: number, provider: DockerRuntimeProvider) {
  const runtime = createRuntimeActivities({ runtime: provider });
  const nested = createNestedActivities({});
  const ids = Array.from({ length: n }, () => newId('base'));
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  const ms = await pool(ids, concurrency, async (conversationId) => {
    const t = performance.now();
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
    return performance.now() - t;
  });
  const wallS = (performance.now() - t0) / 1000;
  const busyS = machineBusySeconds() - busy0;
  await pool(ids, 8, (id) => provider.remove(id));
  return { ms, wallS, busyS };
}

/** A rate, and the machine's busy core-seconds per start while it was measured (closes and removals not counted). */
export interface Throughput {
  perS: number;
  cpuPerStartS: number;
}

/** Wall-clock starts per second for n starts at a concurrency (closing after, untimed). */
export async function nestorThroughput(client: ConversationClient, n: number, concurrency: number): Promise<Throughput> {
  const ids = Array.from({ length: n }, () => newId(`rate${concurrency}`));
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  await pool(ids, concurrency, (id) => client.start(startInput(id)));
  const s = (performance.now() - t0) / 1000;
  const busyS = machineBusySeconds() - busy0;
  await pool(ids, 8, (id) => client.close(id));
  return { perS: n / s, cpuPerStartS: busyS / n };
}

/** Starts per second alone (nestorThroughput without the CPU). */
export const nestorRate = async (client: ConversationClient, n: number, concurrency: number): Promise<number> =>
  (await nestorThroughput(client, n, concurrency)).perS;

/** Starts per second of the same calls without Temporal (baselineRun), for the ratio of phase 2. */
export async function baselineThroughput(
  n: number,
  concurrency: number,
  provider: DockerRuntimeProvider,
): Promise<Throughput> {
  const run = await baselineRun(n, concurrency, provider);
  return { perS: n / run.wallS, cpuPerStartS: run.busyS / n };
}

/** Where the time of each sequential start went, from its history: activity execution by step, queue waits, workflow tasks. */
export async function profile(client: ConversationClient, ids: string[]) {
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
export async function relayProfile(client: ConversationClient, id: string) {
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

export interface MachineryRow {
  concurrency: number;
  starts: number;
  perS: number;
  /** Sequential starts only (concurrency 1): the p50 of client → RUNNING, the floor under any start's latency. */
  p50Ms?: number;
  cpu: Record<string, { seconds: number; cores: number }>;
}

/**
 * Starts per second with a provider that creates nothing (one in-process emulator) and a worker in this process, at
 * concurrency 8, 32 and 64, with the CPU the Temporal server and this process used meanwhile.
 */
export async function machineryAlone(server: DevServer, dataConverter: DataConverter): Promise<MachineryRow[]> {
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
    // One at a time, 24 in a row: a run longer than the server's burst credit (the dispatch limit, dev/server.ts).
    const seq = await cpuOver({ temporalServer: server.process.pid!, benchAndWorker: process.pid }, () =>
      nestorStarts(client, 24, 1, 'mseq'),
    );
    const seqMs = seq.result.map((x) => x.ms);
    rows.push({
      concurrency: 1,
      starts: seqMs.length,
      perS: Math.round((seqMs.length / (seqMs.reduce((a, b) => a + b, 0) / 1000)) * 100) / 100,
      p50Ms: stats(seqMs).p50,
      cpu: seq.cpu,
    });
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

