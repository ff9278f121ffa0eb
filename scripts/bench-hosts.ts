// `npm run bench:hosts`: starts per second with one sandbox host and with two, on this machine. A dev server (in
// memory), the conversations' worker placing on registered hosts, and one host worker per Docker engine: the
// machine's own and a second dockerd (src/dev/extra-docker-engine.ts). All workers run in this process, so the
// figures compare placement over one engine against two engines sharing the same two cores. Prints a table and
// writes bench/hosts.json. Reports; never asserts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { ConversationClient } from '../src/conversation/client';
import { ExtraDockerEngine } from '../src/dev/extra-docker-engine';
import { startDevServer } from '../src/dev/server';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { registerHost, setHostDraining } from '../src/sandbox-hosts/hosts';
import { hostTaskQueue } from '../src/sandbox-hosts/messages';
import { createWorker } from '../src/worker';
import { freePort } from '../test/helpers/net';
import { workflowBundle } from '../test/helpers/temporal';
import { log, nestorRate } from './bench/measure';

process.env.NESTOR_RUNTIME ??= 'emulator';
const N = Number(process.env.BENCH_HOST_STARTS ?? 16);
const CONCURRENCY = [4, 8];
const ROUNDS = Number(process.env.BENCH_HOST_ROUNDS ?? 3);

async function main() {
  const c = loadConfig();
  const dataDir = join(c.dataDir, 'bench-hosts');
  const server = await startDevServer(
    { ...c, dataDir, temporalPort: await freePort(), uiPort: await freePort() },
    { inMemory: true },
  );
  const engine2 = new ExtraDockerEngine(join(c.dataDir, 'bench-e2'));
  const workers: Worker[] = [];
  const runs: Promise<void>[] = [];
  const connection = await NativeConnection.connect({ address: server.address });
  try {
    await engine2.start();
    await engine2.loadImage(RUNTIME_IMAGES.emulator);
    const dataConverter = { failureConverterPath: FAILURE_CONVERTER_PATH };
    const taskQueue = 'bench-hosts';
    const image = RUNTIME_IMAGES.emulator;
    const bundle = await workflowBundle();
    const make = async (queue: string, deps: Parameters<typeof createWorker>[0]['deps']) => {
      const w = await createWorker({ connection, taskQueue: queue, workflowBundle: bundle, dataConverter, deps });
      workers.push(w);
      runs.push(w.run());
    };
    await make(taskQueue, {
      runtime: new DockerRuntimeProvider({ image }),
      sandboxHosts: true,
      maxConversationsPerUser: false,
    });
    await make(hostTaskQueue('h1'), { runtime: new DockerRuntimeProvider({ image, owner: 'bench-h1' }) });
    await make(hostTaskQueue('h2'), {
      runtime: new DockerRuntimeProvider({ image, docker: engine2.docker, owner: 'bench-h2' }),
    });
    const raw = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
    const client = new ConversationClient({ client: raw, taskQueue });
    await registerHost(raw, { taskQueue, hostId: 'h1', capacity: 100 });
    await registerHost(raw, { taskQueue, hostId: 'h2', capacity: 100 });
    // Warm-up: one start per host, so image layers and networks exist on both engines.
    await nestorRate(client, 2, 2);

    const rows: Array<{ hosts: number; concurrency: number; startsPerSecond: number[] }> = [];
    for (const concurrency of CONCURRENCY)
      for (const hosts of [1, 2]) rows.push({ hosts, concurrency, startsPerSecond: [] });
    for (let round = 0; round < ROUNDS; round++) {
      for (const row of rows) {
        // One host: the other drained (no new placements); two: both open.
        await setHostDraining(raw, 'h2', row.hosts === 1);
        const rate = await nestorRate(client, N, row.concurrency);
        row.startsPerSecond.push(Math.round(rate * 100) / 100);
        log(`round ${round + 1}: ${row.hosts} host(s), concurrency ${row.concurrency}: ${rate.toFixed(2)} starts/s`);
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(s.length / 2);
      return s.length % 2 ? s[mid] : Math.round(((s[mid - 1] + s[mid]) / 2) * 100) / 100;
    };
    console.log(`\nstarts/s (${N} starts per measure, ${ROUNDS} rounds alternating, median):`);
    console.log('| concurrency | 1 host | 2 hosts |\n|---|---|---|');
    for (const concurrency of CONCURRENCY) {
      const of = (h: number) => rows.find((r) => r.hosts === h && r.concurrency === concurrency)!.startsPerSecond;
      console.log(`| ${concurrency} | ${median(of(1))} | ${median(of(2))} |`);
    }
    mkdirSync(join(PROJECT_ROOT, 'bench'), { recursive: true });
    writeFileSync(
      join(PROJECT_ROOT, 'bench/hosts.json'),
      `${JSON.stringify({ date: new Date().toISOString(), n: N, rounds: ROUNDS, rows }, null, 2)}\n`,
    );
    await raw.connection.close();
  } finally {
    for (const w of workers) w.shutdown();
    await Promise.allSettled(runs);
    await connection.close();
    await engine2.destroy();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
