// `npm run bench`: nestor's cost measured against the physical limit (the container's own start), on this machine.
// Prints a table, writes bench/results.json and draws bench/results.svg. Reports; never asserts.
//
// 1. time to ready, 20 sequential and 20 concurrent (5 at a time), next to a baseline making the same Docker and HTTP
//    calls in one process without Temporal; orchestration overhead and readiness-detection lag
// 2. starts per second at concurrency 1, 4, 8 next to the same calls without Temporal
// 3. message relay latency over 200 messages
// 4. worker RSS with 100 idle running conversations
// 5. the workflow machinery alone (a runtime provider that creates nothing): starts per second at 8, 32, 64
// 6. cold starts of each runtime image without Temporal, split by segment
// 7. warm pools: time to ready from the pool beside cold, and a burst larger than the pool, on the emulator and on the
//    current OpenHands agent server's image; then the issues' goals, met or not (reported, never asserted)
//
// BENCH_PHASES picks phases (e.g. `1,2,7a`; default all): their figures replace those of bench/results.json, the
// others' stay, each phase's date in `phaseDates`.
//
// Phases 1–4 run the real `nestor worker` as a child process against the dev server `npm start` runs (file
// database); phase 5 runs a worker in this process with SharedServerProvider and an in-process emulator.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Runtime } from '@temporalio/worker';
import { PROJECT_ROOT } from '../src/config';
import { startDevServer } from '../src/dev/server';
import { NestedClient } from '../src/nested/client';
import { JsonLogger } from '../src/observability/log';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { freePort } from '../test/helpers/net';
import { runtimeFigures } from './bench-runtimes';
import { Lab } from './lab/lab';
import { stats } from './stats';
import * as m from './bench/measure';
import { drawChart, previousFigures } from './bench/chart';
import { printTable } from './bench/print';
import { poolFigures } from './bench/pools';
import { goals } from './bench/goals';
import { poolNameFor } from '../src/runtime/container-spec';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { startLlmStandIn } from '../src/llm-stand-in/server';

// The emulator's fault knobs and quick boots are what this script measures against; the real image has its own runs.
process.env.NESTOR_RUNTIME ??= 'emulator';

const OUT_DIR = join(PROJECT_ROOT, 'bench');
const N_LATENCY = Number(process.env.BENCH_STARTS ?? 20);
const N_THROUGHPUT = Number(process.env.BENCH_THROUGHPUT_STARTS ?? 16);
const N_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200);
const N_IDLE = Number(process.env.BENCH_IDLE ?? 100);
const POOL_SIZE = Number(process.env.BENCH_POOL_SIZE ?? 4);
const N_POOLED = Number(process.env.BENCH_POOLED_STARTS ?? 20);
const POOL_BURST = Number(process.env.BENCH_POOL_BURST ?? 12);
const PHASES = ['1', '2', '3', '4', '5', '6', '7a', '7b'];
const CHOSEN = (process.env.BENCH_PHASES ?? PHASES.join(',')).split(',').map((p) => p.trim());
const unknownPhase = CHOSEN.find((p) => !PHASES.includes(p));
if (unknownPhase)
  throw new Error(`BENCH_PHASES: unknown phase '${unknownPhase}'; expected some of ${PHASES.join(',')}`);
const want = (phase: string) => CHOSEN.includes(phase);

/** The previous run's headline figures (bench/results.json before this run overwrites it), for the chart. */
function previousRun(): Record<string, unknown> | undefined {
  try {
    const prev = JSON.parse(readFileSync(join(OUT_DIR, 'results.json'), 'utf8'));
    return { date: prev.date, ...previousFigures(prev) };
  } catch {
    return undefined;
  }
}

/** The figures each phase writes. */
const PHASE_KEYS: Record<string, string[]> = {
  '1': ['cpuSequentialStarts', 'timeToReady', 'profileSequential'],
  '2': ['throughput'],
  '3': ['relay'],
  '4': ['memory'],
  '5': ['machinery', 'machineryInMemory'],
  '6': ['runtimes'],
  '7a': ['poolEmulator'],
  '7b': ['poolOpenhands'],
};

/**
 * This run's figures over bench/results.json's: a run of every phase replaces the record; a run of some keeps the
 * others' figures (each phase's date in phaseDates), and the goals are checked again over the whole.
 */
function mergeIntoRecord(results: Record<string, any>, phases: string[]): Record<string, any> {
  let before: Record<string, any> = {};
  try {
    before = JSON.parse(readFileSync(join(OUT_DIR, 'results.json'), 'utf8'));
  } catch {
    /* the first run here */
  }
  const kept = phases.length === PHASES.length ? {} : before;
  const dates = { ...(kept.phaseDates ?? {}) };
  for (const p of phases) dates[p] = results.date;
  const all: Record<string, any> = { ...kept, ...results, phaseDates: dates, previous: previousRun() };
  // A phase not run here and never recorded has no figures: drop its empty keys rather than print undefined.
  for (const p of PHASES) for (const k of PHASE_KEYS[p]) if (all[k] === undefined) delete all[k];
  return { ...all, goals: goals(all) };
}

/** Pooled and cold starts of the real image through a nestor worker of that image; the stand-in answers for the LLM. */
async function realImagePool(lab: Lab) {
  const image = RUNTIME_IMAGES.openhands;
  const gateway = await new DockerRuntimeProvider({ image }).sandboxGateway();
  const llm = await startLlmStandIn({ host: gateway });
  await lab.startWorker({ NESTOR_RUNTIME: 'openhands', NESTOR_RUNTIME_IMAGE: image });
  try {
    return await poolFigures(lab.client, {
      pool: poolNameFor(image),
      image,
      size: 1,
      n: 3,
      nCold: 2,
      settings: { ...m.SETTINGS, llmModel: 'openai/stand-in', llmBaseUrl: llm.baseUrl },
      bootMs: 180_000,
    });
  } finally {
    await lab.stopWorker('SIGINT');
    await llm.close();
  }
}

// ---------- main ----------

async function main() {
  Runtime.install({ logger: new JsonLogger({ level: 'ERROR' }) });
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  m.log('dev server (file database) and a nestor worker process');
  const lab = await Lab.create({ name: 'bench', echoWorkerLog: true });
  const { client, server, dataConverter, c } = lab;
  const results: Record<string, unknown> = { machine, date: new Date().toISOString(), image: c.runtimeImage };
  try {
    const worker = await lab.startWorker();
    m.log('warm-up (bundle, image cache)');
    await m.nestorStarts(client, 3, 1, 'warm');
    const provider = new DockerRuntimeProvider({ image: c.runtimeImage, owner: 'bench-baseline' });
    await m.baselineStarts(2, 1, provider);

    if (want('1')) {
      // 1. time to ready
      m.log(`1. time to ready: ${N_LATENCY} sequential, ${N_LATENCY} concurrent (5 at a time), each with its baseline`);
      const seqRun = await m.cpuOver(
        { temporalServer: server.process.pid!, worker: worker.pid!, bench: process.pid },
        () => m.nestorStarts(client, N_LATENCY, 1, 'seq'),
      );
      const seqN = seqRun.result;
      results.cpuSequentialStarts = { wallS: seqRun.wallS, ...seqRun.cpu };
      const seqB = await m.baselineStarts(N_LATENCY, 1, provider);
      const conN = await m.nestorStarts(client, N_LATENCY, 5, 'con');
      const conB = await m.baselineStarts(N_LATENCY, 5, provider);
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
      results.profileSequential = await m.profile(
        client,
        seqN.map((s) => s.id),
      );
    }

    if (want('2')) {
      // 2. throughput
      m.log(
        `2. starts per second at 1, 4, 8 (${N_THROUGHPUT} starts each), nestor and the same calls without Temporal`,
      );
      const throughput: Array<Record<string, number>> = [];
      const r2 = (x: number) => Math.round(x * 100) / 100;
      for (const k of [1, 4, 8]) {
        const nestor = await m.nestorThroughput(client, N_THROUGHPUT, k);
        const baseline = await m.baselineThroughput(N_THROUGHPUT, k, provider);
        throughput.push({
          concurrency: k,
          nestorPerS: r2(nestor.perS),
          baselinePerS: r2(baseline.perS),
          ratio: r2(nestor.perS / baseline.perS),
          // The machine's busy core-seconds per start: where the machine is the bound, the ratio cannot pass
          // baseline / nestor (the work Temporal and the worker add to each start's Docker and HTTP work).
          nestorCpuPerStartS: r2(nestor.cpuPerStartS),
          baselineCpuPerStartS: r2(baseline.cpuPerStartS),
        });
      }
      results.throughput = throughput;
    }

    if (want('3')) {
      // 3. relay
      m.log(`3. relay latency over ${N_MESSAGES} messages`);
      const relayId = m.newId('relay');
      const info = await client.start(m.startInput(relayId));
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
        profile: await m.relayProfile(client, relayId),
      };
      await client.close(relayId);
    }

    if (want('4')) {
      // 4. memory with idle conversations
      m.log(`4. worker RSS with ${N_IDLE} idle running conversations`);
      const rssBefore = m.rssMb(worker.pid!);
      const idle = Array.from({ length: N_IDLE }, () => m.newId('idle'));
      await m.pool(idle, 8, (id) => client.start(m.startInput(id)));
      await new Promise((r) => setTimeout(r, 10_000));
      const rssIdle = m.rssMb(worker.pid!);
      await m.pool(idle, 8, (id) => client.close(id));
      results.memory = {
        conversations: N_IDLE,
        workerRssBeforeMb: rssBefore,
        workerRssWithIdleMb: rssIdle,
        perConversationKb: Math.round(((rssIdle - rssBefore) * 1024) / N_IDLE),
      };
    }

    if (want('7a')) {
      // 7a. warm pool of the emulator image, on the same worker
      m.log(`7a. warm pool (emulator): ${N_POOLED} starts from a pool of ${POOL_SIZE}, a burst of ${POOL_BURST}`);
      results.poolEmulator = await poolFigures(client, {
        pool: poolNameFor(c.runtimeImage),
        image: c.runtimeImage,
        size: POOL_SIZE,
        n: N_POOLED,
        nCold: N_POOLED,
        burst: POOL_BURST,
        bootMs: 5_000,
      });
    }

    await lab.stopWorker('SIGINT');

    if (want('5')) {
      // 5. machinery alone, on this dev server (file database) and on one without a database file
      m.log('5. the workflow machinery alone: starts per second at 8, 32, 64 (file database, then in memory)');
      results.machinery = await m.machineryAlone(server, dataConverter);
      const memServer = await startDevServer(
        { ...c, temporalPort: await freePort(), uiPort: await freePort() },
        { inMemory: true },
      );
      try {
        results.machineryInMemory = await m.machineryAlone(memServer, dataConverter);
      } finally {
        await memServer.stop();
      }
    }

    if (want('6')) {
      // 6. the real OpenHands image beside the emulator
      m.log(`6. cold starts of each runtime image, split by segment, and a live sandbox's memory`);
      results.runtimes = await runtimeFigures(m.log);
    }

    if (want('7b')) {
      // 7b. warm pool of the current agent server's image: a worker of that image, the LLM stand-in as its model
      m.log('7b. warm pool (OpenHands agent server image): pooled and cold starts through nestor');
      results.poolOpenhands = await realImagePool(lab);
    }

    mkdirSync(OUT_DIR, { recursive: true });
    const all = mergeIntoRecord(results, CHOSEN);
    writeFileSync(join(OUT_DIR, 'results.json'), `${JSON.stringify(all, null, 2)}\n`);
    drawChart(all);
    printTable(all);
  } finally {
    await lab.close();
  }
}

/** Phase 7b alone (`node dist/scripts/bench.js --pool-openhands`): its figures into bench/results.json. */
async function poolOpenhandsOnly(): Promise<void> {
  Runtime.install({ logger: new JsonLogger({ level: 'ERROR' }) });
  const lab = await Lab.create({ name: 'bench' });
  try {
    const poolOpenhands = await realImagePool(lab);
    const file = join(OUT_DIR, 'results.json');
    const results = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const next = { ...results, poolOpenhands, poolOpenhandsDate: new Date().toISOString() };
    writeFileSync(file, `${JSON.stringify({ ...next, goals: goals(next) }, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(poolOpenhands, null, 2)}\nWritten: bench/results.json (poolOpenhands)\n`);
  } finally {
    await lab.close();
  }
}

if (require.main === module && process.argv.includes('--pool-openhands')) {
  poolOpenhandsOnly().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else if (require.main === module && process.argv.includes('--chart')) {
  // Measures nothing: the goals judged again, the chart drawn and the tables printed from bench/results.json.
  const file = join(OUT_DIR, 'results.json');
  const results = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const judged = { ...results, goals: goals(results) };
  writeFileSync(file, `${JSON.stringify(judged, null, 2)}\n`);
  drawChart(judged);
  printTable(judged);
} else if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
