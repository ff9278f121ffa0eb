// `npm run bench:scale` (issue 24): nestor on a real Temporal cluster — the local one of `npm run start:cluster`
// (PostgreSQL, two temporal-server processes) — with the provider that creates no container, every conversation on
// one emulator process, so Docker is not what is measured. Phases:
//   1. the start rate, ramped (open loop) until p99 client → RUNNING passes 2 s or a start fails; two worker
//      processes, one per frontend, clients on both frontends; CPU of every process per step (what broke);
//   2. BENCH_SCALE_LIVE conversations held on ONE worker process with a bounded workflow cache (each started and sent
//      one message), its RSS as they grow, then round trips to random ones, cache evictions and replays;
//   3. history events and PostgreSQL bytes per start and per message, and a conversation of BENCH_SCALE_MESSAGES
//      messages across its continue-as-new runs;
//   4. the two workflows every start or claim may pass through, measured apart on the same cluster: the SandboxHosts
//      registry's placements per second, and one SandboxPool's updates and claim signals per second (its worker
//      lists its — empty — pool in the machine's Docker engine; nothing is created).
// Writes bench/scale.json and bench/scale.svg (`node dist/scripts/bench-scale.js --chart [name]` redraws bench/<name>.svg
// from its JSON). Reports; never asserts. Sizes: the BENCH_SCALE_* variables below (docs/scaling.md).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { ConversationClient } from '../src/conversation/client';
import { LocalCluster } from '../src/dev/cluster';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { SharedServerProvider } from '../src/runtime/shared-server';
import { registryStart } from '../src/sandbox-hosts/activities';
import { registerHost } from '../src/sandbox-hosts/hosts';
import { placeUpdate } from '../src/sandbox-hosts/messages';
import { memberClaimedSignal, resizePoolUpdate } from '../src/sandbox-pools/messages';
import { ensurePool } from '../src/sandbox-pools/pools';
import { conversationWorkflowId, poolWorkflowId } from '../src/shared/constants';
import { createWorker } from '../src/worker';
import { freePort } from '../test/helpers/net';
import { svgChart } from './bench/chart';
import { log, pool, rssMb } from './bench/measure';
import * as s from './bench/scale';
import { stats } from './stats';

const num = (name: string, d: number) => Number(process.env[name] ?? d);
/** Start rates tried, per second, in order; each for BENCH_SCALE_STEP_S seconds. */
const RATES = (process.env.BENCH_SCALE_RATES ?? '4,8,12,16,24,32').split(',').filter(Boolean).map(Number);
const STEP_S = num('BENCH_SCALE_STEP_S', 20);
/** Live conversations held on one worker, and the most workflows that worker keeps cached. */
const LIVE = num('BENCH_SCALE_LIVE', 3000);
const CACHE = num('BENCH_SCALE_CACHE', 2000);
const ROUND_TRIPS = num('BENCH_SCALE_ROUND_TRIPS', 300);
/** Messages of the long conversation (phase 3). */
const MESSAGES = num('BENCH_SCALE_MESSAGES', 1000);
const PLACEMENTS = num('BENCH_SCALE_PLACEMENTS', 300);

async function main() {
  const started = performance.now();
  const c = loadConfig();
  const dir = join(c.dataDir, 'bench-scale');
  rmSync(dir, { recursive: true, force: true });
  const cluster = new LocalCluster({
    dir,
    binDir: c.cluster.binDir,
    basePort: num('BENCH_SCALE_BASE_PORT', 28233),
    pgPort: await freePort(),
    namespace: 'default',
  });
  const emuPort = await freePort();
  const emulator = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/emulator/emulator.js')], {
    env: {
      ...process.env,
      PORT: String(emuPort),
      HOST: '127.0.0.1',
      SESSION_API_KEY: 'bench-key',
      ALLOW_SET_CONVERSATION_ID: '1',
      FILE_STORE_PATH: join(dir, 'emulator'),
      CONVERSATION_START_DELAY_MS: '0',
      AGENT_REPLY_DELAY_MS: '0',
    },
    stdio: 'ignore',
  });
  const workers: s.Processes['workers'] = {};
  const p: s.Processes = { cluster, workers, emulator };
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    settings: { RATES, STEP_S, LIVE, CACHE, ROUND_TRIPS, MESSAGES, PLACEMENTS },
  };
  const clients: ConversationClient[] = [];
  try {
    log('starting the cluster (PostgreSQL, two temporal-server processes)');
    await cluster.start();
    const workerEnv = (address: string, taskQueue: string, metricsPort: number, cache?: number) => ({
      TEMPORAL_ADDRESS: address,
      NESTOR_TASK_QUEUE: taskQueue,
      NESTOR_METRICS_PORT: String(metricsPort),
      BENCH_EMULATOR_URL: `http://127.0.0.1:${emuPort}`,
      ...(cache !== undefined && { NESTOR_WORKFLOW_CACHE_SIZE: String(cache) }),
    });

    // ---- 1. the start rate, ramped ----
    for (const [i, address] of cluster.addresses.entries()) {
      workers[`worker ${'ab'[i]}`] = await s.spawnWorker(workerEnv(address, 'bench-ramp', await freePort()));
      clients.push(await ConversationClient.connect({ address, taskQueue: 'bench-ramp' }));
    }
    if (RATES.length) await s.rampStep(clients, p, 4, 3, 'warm'); // the workers' first workflow tasks, unmeasured
    const ramp: s.RampStep[] = [];
    for (const rate of RATES) {
      const step = await s.rampStep(clients, p, rate, STEP_S, `r${rate}`);
      ramp.push(step);
      log(
        `${rate}/s: ${step.achievedPerS}/s answered, p50 ${step.latencyMs.p50} ms, p99 ${step.latencyMs.p99} ms, ` +
          `${step.failed} failed; cores ${JSON.stringify(step.cores)}, machine ${step.machineCores}`,
      );
      if (!step.ok) break;
    }
    results.ramp = ramp;
    for (const name of Object.keys(workers)) {
      await s.stopProcess(workers[name]);
      delete workers[name];
    }

    // ---- 2. live conversations on one worker ----
    const metricsPort = await freePort();
    workers['live worker'] = await s.spawnWorker(workerEnv(cluster.address('a'), 'bench-live', metricsPort, CACHE));
    const liveClient = await ConversationClient.connect({ address: cluster.address('a'), taskQueue: 'bench-live' });
    clients.push(liveClient);
    const livePid = workers['live worker'].pid!;
    const pgBefore = s.postgresBytes(cluster);
    const live = await s.holdLive(liveClient, { pid: livePid, metricsPort }, LIVE, 16, 'live');
    const pgAfter = s.postgresBytes(cluster);
    const before = await s.workerMetrics(metricsPort);
    const trips = await s.roundTrips(liveClient, live.infos, ROUND_TRIPS, 8);
    const after = await s.workerMetrics(metricsPort);
    const rss = rssMb(livePid);
    const idleRss = live.samples[0].rssMb;
    results.live = {
      held: live.infos.length,
      failed: live.failed,
      startsAndMessagesPerS: live.perS,
      cacheSize: CACHE,
      rssMb: rss,
      idleRssMb: idleRss,
      rssPerLiveKb: Math.round(((rss - idleRss) * 1024) / Math.max(1, live.infos.length)),
      samples: live.samples.map((x) => ({ live: x.live, rssMb: x.rssMb })),
      roundTrips: { n: ROUND_TRIPS, ...trips },
      duringRoundTrips: Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)])),
      workerMetricsAtEnd: after,
    };
    log(`live: ${JSON.stringify(results.live)}`);

    // ---- 3. history and PostgreSQL per start, per message, and a long conversation ----
    const raw = liveClient.client;
    const sample = Array.from({ length: 20 }, () => live.infos[Math.floor(Math.random() * live.infos.length)]);
    const startAndOne = await Promise.all(sample.map((i) => s.historyOf(raw, i.conversationId)));
    const longId = 'long-conversation';
    await liveClient.start(s.scaleStart(longId, 0, 'long'));
    const pgLong0 = s.postgresBytes(cluster);
    const t0 = performance.now();
    for (let k = 0; k < MESSAGES; k++)
      await liveClient.sendMessage(longId, { content: `message ${k}`, messageId: `long-${k}` });
    const longS = (performance.now() - t0) / 1000;
    const pgLong1 = s.postgresBytes(cluster);
    const runs = await s.runsOf(raw, conversationWorkflowId(longId));
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const longEvents = sum(runs.map((r) => r.events));
    const perMessage = { events: longEvents / MESSAGES, bytes: sum(runs.map((r) => r.bytes)) / MESSAGES };
    const startPlusOne = {
      events: stats(startAndOne.map((h) => h.events)).p50,
      bytes: stats(startAndOne.map((h) => h.bytes)).p50,
    };
    results.history = {
      startPlusOneMessage: startPlusOne,
      perStart: { events: startPlusOne.events - perMessage.events, bytes: startPlusOne.bytes - perMessage.bytes },
      perMessage,
      postgresBytesPerLiveConversation: Math.round((pgAfter - pgBefore) / Math.max(1, live.infos.length)),
      postgresBytesPerMessage: Math.round((pgLong1 - pgLong0) / MESSAGES),
      longConversation: { messages: MESSAGES, seconds: Math.round(longS), runs, events: longEvents },
    };
    log(`history: ${JSON.stringify(results.history)}`);
    await s.stopProcess(workers['live worker']);
    delete workers['live worker'];

    // ---- 4. the SandboxHosts registry and one SandboxPool on the cluster ----
    Object.assign(results, await serialPoints(cluster, emuPort));
    log(`registry: ${JSON.stringify(results.registry)}; pool: ${JSON.stringify(results.pool)}`);
  } finally {
    for (const cl of clients) await cl.closeConnection().catch(() => undefined);
    for (const w of Object.values(workers)) await s.stopProcess(w);
    await s.stopProcess(emulator);
    await cluster.stop({ wipe: true });
  }
  results.wallS = Math.round((performance.now() - started) / 1000);
  mkdirSync(join(PROJECT_ROOT, 'bench'), { recursive: true });
  writeFileSync(join(PROJECT_ROOT, 'bench/scale.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(PROJECT_ROOT, 'bench/scale.svg'), chart(results));
  printSummary(results);
}

/** Messages per second at concurrency 64, and their latencies. */
async function rate(n: number, send: (i: number) => Promise<unknown>) {
  const latencies: number[] = [];
  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    64,
    async (i) => {
      const t = performance.now();
      await send(i);
      latencies.push(performance.now() - t);
    },
  );
  return {
    concurrency: 64,
    n,
    perS: Math.round((n / ((performance.now() - t0) / 1000)) * 10) / 10,
    latencyMs: stats(latencies),
  };
}

/**
 * The registry's placements (the update every start on a sandbox host sends) and a pool's messages (operators' resize
 * updates; the signal every claim sends), each workflow alone, its worker in this process on frontend a, the
 * messages sent through frontend b.
 */
async function serialPoints(cluster: LocalCluster, emuPort: number) {
  const taskQueue = 'bench-serial';
  const poolName = 'bench-scale-pool';
  const dataConverter = { failureConverterPath: FAILURE_CONVERTER_PATH };
  const connection = await NativeConnection.connect({ address: cluster.address('a') });
  const registryWorker = await createWorker({
    connection,
    taskQueue,
    dataConverter,
    deps: {
      runtime: new SharedServerProvider({ url: `http://127.0.0.1:${emuPort}`, sessionApiKey: 'bench-key' }),
      sandboxHosts: true,
    },
  });
  // The pool's owner needs a provider with pools: Docker's, on an empty pool (it only lists).
  const poolWorker = await createWorker({
    connection,
    taskQueue: `${taskQueue}-pool`,
    dataConverter,
    deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, pool: { name: poolName } }) },
  });
  const running = [registryWorker.run(), poolWorker.run()];
  const raw = new Client({ connection: await Connection.connect({ address: cluster.address('b') }), dataConverter });
  try {
    await registerHost(raw, { taskQueue, hostId: 'h1', capacity: 10_000 });
    const registry = await rate(PLACEMENTS, (i) =>
      raw.workflow.executeUpdateWithStart(placeUpdate, {
        args: [{ conversationId: `placed-${i}`, exclude: [] }],
        startWorkflowOperation: registryStart(taskQueue),
      }),
    );
    await ensurePool(raw, { taskQueue: `${taskQueue}-pool`, pool: poolName, size: 0 });
    const handle = raw.workflow.getHandle(poolWorkflowId(poolName));
    const resizes = await rate(PLACEMENTS, () => handle.executeUpdate(resizePoolUpdate, { args: [{ size: 0 }] }));
    const claims = await rate(PLACEMENTS, (i) => handle.signal(memberClaimedSignal, { memberId: `m-${i}` }));
    await handle.executeUpdate(resizePoolUpdate, { args: [{ size: 0 }] }); // every signal handled before this answers
    const events = (await handle.describe()).historyLength;
    return { registry, pool: { resizes, claimSignals: claims, historyEvents: events } };
  } finally {
    await raw.connection.close();
    registryWorker.shutdown();
    poolWorker.shutdown();
    await Promise.all(running.map((r) => r.catch(() => undefined)));
    await connection.close();
  }
}

function chart(r: Record<string, any>): string {
  const ramp = r.ramp as s.RampStep[];
  const live = r.live as { samples: { live: number; rssMb: number }[] };
  const bar = (label: string, value: number) => ({ label, value, kind: 'nestor' as const });
  return svgChart(
    [
      {
        title: 'starts answered per second, by target rate',
        unit: '/s',
        bars: ramp.map((x) => bar(`${x.targetPerS}/s`, x.achievedPerS)),
      },
      {
        title: 'p99 client → RUNNING, by target rate',
        unit: 'ms',
        bars: ramp.map((x) => bar(`${x.targetPerS}/s`, x.latencyMs.p99)),
      },
      {
        title: `worker RSS by live conversations (cache ${r.settings.CACHE})`,
        unit: 'MB',
        bars: live.samples.map((x) => bar(`${x.live} live`, x.rssMb)),
      },
      {
        title: 'one workflow alone: messages per second (concurrency 64)',
        unit: '/s',
        bars: [
          bar('SandboxHosts place', r.registry.perS),
          // Runs before the pool was measured have none.
          ...(r.pool
            ? [
                bar('SandboxPool resize', r.pool.resizes.perS),
                bar('SandboxPool memberClaimed', r.pool.claimSignals.perS),
              ]
            : []),
        ],
      },
    ],
    `scale on the local PostgreSQL cluster, ${r.machine}, ${String(r.date).slice(0, 10)}`,
    false,
  );
}

function printSummary(r: Record<string, any>): void {
  console.log(`\nnestor on the local PostgreSQL cluster (${r.machine}), ${r.wallS} s:`);
  console.log('| target starts/s | answered/s | p50 / p99 (ms) | failed | busiest processes (cores) | machine cores |');
  console.log('|---|---|---|---|---|---|');
  for (const x of r.ramp as s.RampStep[]) {
    const top = Object.entries(x.cores)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `| ${x.targetPerS} | ${x.achievedPerS} | ${x.latencyMs.p50} / ${x.latencyMs.p99} | ${x.failed} | ${top} | ${x.machineCores} |`,
    );
  }
  console.log(`\nlive: ${JSON.stringify(r.live, null, 1)}`);
  console.log(`\nhistory: ${JSON.stringify(r.history, null, 1)}`);
  console.log(`\nregistry: ${JSON.stringify(r.registry)}`);
  console.log(`pool: ${JSON.stringify(r.pool)}`);
}

/** `--chart [name]`: draw bench/<name>.svg again from bench/<name>.json (default `scale`), measuring nothing. */
function redraw(name = 'scale'): void {
  const r = JSON.parse(readFileSync(join(PROJECT_ROOT, `bench/${name}.json`), 'utf8')) as Record<string, any>;
  writeFileSync(join(PROJECT_ROOT, `bench/${name}.svg`), chart(r));
}

const chartAt = process.argv.indexOf('--chart');
if (chartAt >= 0) redraw(process.argv[chartAt + 1]);
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
