// `npm run bench:registry`: the placement rate of the SandboxHosts registry, measured apart (issue 24). Every start of
// a service with sandbox hosts asks the registry for a host (its `place` update, what the placeSandbox step sends)
// and every close gives the placement back (its `release` signal); one registry workflow handles them one at a time.
// Here nothing else runs: an in-memory dev server, the registry's worker in this process, one host registered with
// room for everything, and placements sent straight to the update at several concurrencies, with the registry
// already holding 0, then more placements (each one is kept in its state and carried across continue-as-new). Each
// series runs once with the registry as one workflow and once as several shards (NESTOR_HOST_REGISTRY_SHARDS; each
// conversation's placement goes to the shard its ID hashes to), so before and after are in the same run.
// Prints a table and writes bench/registry.json. Reports; never asserts.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { startDevServer } from '../src/dev/server';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { registryStart } from '../src/sandbox-hosts/activities';
import { registerHost } from '../src/sandbox-hosts/hosts';
import {
  hostsQuery,
  placeUpdate,
  registryShards,
  registryWorkflowId,
  releaseSignal,
  shardOf,
} from '../src/sandbox-hosts/messages';
import { createWorker } from '../src/worker';
import { freePort } from '../test/helpers/net';
import { workflowBundle } from '../test/helpers/temporal';
import { log, newId, pool } from './bench/measure';
import { stats, type Stats } from './stats';

/** Placements per measure; the concurrencies; the placements the registry holds before each series. */
const N = Number(process.env.BENCH_REGISTRY_PLACEMENTS ?? 300);
const CONCURRENCY = (process.env.BENCH_REGISTRY_CONCURRENCY ?? '1,8,64').split(',').map(Number);
const HELD = (process.env.BENCH_REGISTRY_HELD ?? '0,2000,6000').split(',').map(Number);
/** The registry's shard counts, each a series of its own: one workflow, then shards. */
const SHARDS = (process.env.BENCH_REGISTRY_SHARDS ?? '1,4').split(',').map(Number);
/** Temporal's default limit on one payload (a continue-as-new's input among them): 2 MB. */
const PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024;

interface Row {
  shards: number;
  held: number;
  concurrency: number;
  placementsPerSecond: number;
  latencyMs: Stats;
  releasesPerSecond: number;
}

async function main() {
  const c = loadConfig();
  const server = await startDevServer(
    { ...c, dataDir: join(c.dataDir, 'bench-registry'), temporalPort: await freePort(), uiPort: await freePort() },
    { inMemory: true },
  );
  const connection = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-registry';
  const dataConverter = { failureConverterPath: FAILURE_CONVERTER_PATH };
  // The conversations' worker (the registry runs on its queue); it never touches Docker here.
  const worker = await createWorker({
    connection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    dataConverter,
    deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }), sandboxHosts: true },
  });
  const running = worker.run();
  const raw = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
  try {
    const rows: Row[] = [];
    const states: Array<{
      shards: number;
      placedInAll: number;
      largestShard: { placed: number; bytes: number };
      bytesPerPlacement: number;
      placementsBeforeLimit: number;
    }> = [];
    for (const shards of SHARDS) {
      // A registry of this many shards, afresh (the one before was another count: its shares differ).
      await Promise.all(
        registryShards(Math.max(...SHARDS)).map(({ index }) =>
          raw.workflow
            .getHandle(registryWorkflowId(index))
            .terminate('next series')
            .catch(() => undefined),
        ),
      );
      // The most one host may declare; the series below stay under each shard's share of it.
      const register = () => registerHost(raw, { taskQueue, hostId: 'h1', capacity: 10_000, shards });
      await register();
      // Registered again every 10 s, as a host worker's heartbeat does: a host silent for 45 s counts as lost.
      const beat = setInterval(() => void register().catch(() => undefined), 10_000);
      try {
        const place = (conversationId: string) =>
          raw.workflow.executeUpdateWithStart(placeUpdate, {
            args: [{ conversationId, exclude: [] }],
            startWorkflowOperation: registryStart(taskQueue, shardOf(conversationId, shards)),
          });
        const release = (conversationId: string) =>
          raw.workflow
            .getHandle(registryWorkflowId(shardOf(conversationId, shards).index))
            .signal(releaseSignal, { conversationId });
        let held = 0;
        for (const target of HELD) {
          // Fill up to the next level, unmeasured: placements of conversations that stay.
          // UUIDs, the usual shape of a conversation ID: what a placement adds to the state depends on its length.
          const fill = Array.from({ length: target - held }, () => randomUUID());
          await pool(fill, 64, (id) => place(id));
          held = target;
          for (const concurrency of CONCURRENCY) {
            const ids = Array.from({ length: N }, () => newId(`p${concurrency}`));
            const latencies: number[] = [];
            const t0 = performance.now();
            await pool(ids, concurrency, async (id) => {
              const s = performance.now();
              await place(id);
              latencies.push(performance.now() - s);
            });
            const placementsPerSecond = N / ((performance.now() - t0) / 1000);
            const r0 = performance.now();
            await pool(ids, concurrency, release);
            const releasesPerSecond = N / ((performance.now() - r0) / 1000);
            const row = {
              shards,
              held,
              concurrency,
              placementsPerSecond,
              latencyMs: stats(latencies),
              releasesPerSecond,
            };
            rows.push(row);
            log(
              `${shards} shard(s), ${held} held, concurrency ${concurrency}: ${placementsPerSecond.toFixed(1)} placements/s ` +
                `(p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms), ${releasesPerSecond.toFixed(1)} releases/s`,
            );
          }
        }
      } finally {
        clearInterval(beat);
      }
      // What each shard keeps (and carries across continue-as-new): its hosts with every placed ID, read through the
      // same query the CLI uses. The largest shard is the one that meets the payload limit first.
      const kept = await Promise.all(
        registryShards(shards).map(async ({ index }) => {
          const hosts = await raw.workflow.getHandle(registryWorkflowId(index)).query(hostsQuery);
          return { placed: hosts.reduce((n, h) => n + h.placed.length, 0), bytes: JSON.stringify(hosts).length };
        }),
      );
      const largest = kept.reduce((a, b) => (b.bytes > a.bytes ? b : a));
      const perPlacement = largest.bytes / Math.max(1, largest.placed);
      states.push({
        shards,
        placedInAll: kept.reduce((n, h) => n + h.placed, 0),
        largestShard: largest,
        bytesPerPlacement: Math.round(perPlacement * 10) / 10,
        // Temporal's default payload limit (2 MB) over what each placement adds, in every shard.
        placementsBeforeLimit: Math.floor((PAYLOAD_LIMIT_BYTES / perPlacement) * shards),
      });
      log(
        `${shards} shard(s): ${largest.placed} placements in the largest shard's state, ${largest.bytes} bytes ` +
          `(${perPlacement.toFixed(1)} per placement)`,
      );
    }
    const r1 = (x: number) => Math.round(x * 10) / 10;
    console.log(`\nthe SandboxHosts registry alone, ${N} placements per measure (in-memory dev server):`);
    console.log('| shards | placements held | concurrency | placements/s | latency p50 / p99 (ms) | releases/s |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows)
      console.log(
        `| ${r.shards} | ${r.held} | ${r.concurrency} | ${r1(r.placementsPerSecond)} | ${r.latencyMs.p50} / ${r.latencyMs.p99} | ${r1(r.releasesPerSecond)} |`,
      );
    console.log('\nwhat a shard keeps (every placed ID, carried across continue-as-new), after the series:');
    console.log(
      '| shards | placed in all | largest shard: placed / bytes | bytes per placement | placements before 2 MB |',
    );
    console.log('|---|---|---|---|---|');
    for (const st of states)
      console.log(
        `| ${st.shards} | ${st.placedInAll} | ${st.largestShard.placed} / ${st.largestShard.bytes} | ${st.bytesPerPlacement} | ${st.placementsBeforeLimit} |`,
      );
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    mkdirSync(join(PROJECT_ROOT, 'bench'), { recursive: true });
    writeFileSync(
      join(PROJECT_ROOT, 'bench/registry.json'),
      `${JSON.stringify({ date: new Date().toISOString(), machine, n: N, rows, states }, null, 2)}\n`,
    );
  } finally {
    await raw.connection.close();
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
