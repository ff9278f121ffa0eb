// `npm run bench:kubernetes`: a conversation's cold start → RUNNING with its sandbox a Kubernetes pod (the local
// cluster, src/dev/kubernetes.ts) beside the same start on this machine's Docker engine, in one run: a dev server (in
// memory), one worker per engine in this process, the emulator image, starts one at a time alternating engines so both
// see the same machine. Then the pod's own path split: claim → address (scheduling, the volume provisioned, the pod's
// sandbox made) and address → /alive; then pooled starts, the same SandboxPool workflow on each engine. Prints a table,
// writes bench/kubernetes.json. Reports; never asserts. BENCH_K8S_STARTS sets the starts per engine and kind (default
// 10), BENCH_K8S_POOL_SIZE the pools' size (3).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { request } from 'undici';
import { FAILURE_CONVERTER_PATH } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { ConversationClient } from '../src/conversation/client';
import { startDevServer } from '../src/dev/server';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import type { RuntimeProvider } from '../src/runtime/provider';
import { createWorker } from '../src/worker';
import { freePort } from '../test/helpers/net';
import { K8S_IMAGE, podProvider, startLocalKubernetes } from '../test/helpers/kubernetes';
import { workflowBundle } from '../test/helpers/temporal';
import { log, newId, startInput } from './bench/measure';
import { poolFigures, type PoolFigures } from './bench/pools';
import { stats, type Stats } from './stats';

const N = Number(process.env.BENCH_K8S_STARTS ?? 10);
const POOL_SIZE = Number(process.env.BENCH_K8S_POOL_SIZE ?? 3);

/** Until the server answers /alive (ms from `t0`). */
async function aliveAfter(url: string, t0: number): Promise<number> {
  for (;;) {
    try {
      const r = await request(`${url}/alive`, { headersTimeout: 2000 });
      await r.body.text();
      if (r.statusCode === 200) return performance.now() - t0;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main() {
  const c = loadConfig();
  const server = await startDevServer(
    { ...c, dataDir: join(c.dataDir, 'bench-kubernetes'), temporalPort: await freePort(), uiPort: await freePort() },
    { inMemory: true },
  );
  const cluster = await startLocalKubernetes('bench-kubernetes');
  const connection = await NativeConnection.connect({ address: server.address });
  const workers: Worker[] = [];
  const runs: Promise<void>[] = [];
  try {
    const dataConverter = { failureConverterPath: FAILURE_CONVERTER_PATH };
    const bundle = await workflowBundle();
    const raw = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter });
    const engines: Record<string, { runtime: RuntimeProvider; client: ConversationClient; ms: number[] }> = {};
    const owner = `bench-k8s-${Date.now().toString(36)}`;
    for (const [name, runtime] of [
      ['docker', new DockerRuntimeProvider({ image: K8S_IMAGE, owner, pool: { name: 'bench-docker' } })],
      ['kubernetes', podProvider(cluster.k, owner, K8S_IMAGE, { poolName: 'bench-kubernetes' })],
    ] as const) {
      const taskQueue = `bench-${name}`;
      const w = await createWorker({
        connection,
        taskQueue,
        workflowBundle: bundle,
        dataConverter,
        deps: { runtime, maxConversationsPerUser: false },
      });
      workers.push(w);
      runs.push(w.run());
      engines[name] = { runtime, client: new ConversationClient({ client: raw, taskQueue }), ms: [] };
    }
    // Warm-up: one start each (image in the page cache, networks and the storage class in place).
    for (const e of Object.values(engines)) {
      const id = newId('warm');
      await e.client.start(startInput(id));
      await e.client.close(id);
    }
    for (let i = 0; i < N; i++) {
      for (const [name, e] of Object.entries(engines)) {
        const id = newId(name);
        const t0 = performance.now();
        await e.client.start(startInput(id));
        e.ms.push(performance.now() - t0);
        await e.client.close(id);
      }
      log(
        `start ${i + 1}/${N}: docker ${engines.docker.ms[i].toFixed(0)} ms, kubernetes ${engines.kubernetes.ms[i].toFixed(0)} ms`,
      );
    }
    // The pod's own path, without Temporal: the provider's create (claim, secret, policy, pod, its address), then /alive.
    const pod = { toAddress: [] as number[], toAlive: [] as number[] };
    for (let i = 0; i < N; i++) {
      const id = newId('pod');
      const t0 = performance.now();
      const h = await engines.kubernetes.runtime.create({ conversationId: id, userId: 'bench' });
      pod.toAddress.push(performance.now() - t0);
      pod.toAlive.push(await aliveAfter(h.url, t0));
      await engines.kubernetes.runtime.remove(id);
    }
    // Pooled starts: the same SandboxPool workflow on each engine, a ready member before each start.
    const pooled: Record<string, PoolFigures> = {};
    for (const [name, e] of Object.entries(engines)) {
      log(`pooled starts on ${name}`);
      pooled[name] = await poolFigures(e.client, {
        pool: e.runtime.pool!.poolName,
        image: K8S_IMAGE,
        size: POOL_SIZE,
        n: N,
        nCold: 0,
        bootMs: name === 'kubernetes' ? 15_000 : 5_000,
      });
    }
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30) },
      image: K8S_IMAGE,
      n: N,
      startToRunning: { docker: stats(engines.docker.ms), kubernetes: stats(engines.kubernetes.ms) },
      pod: { createToAddress: stats(pod.toAddress), createToAlive: stats(pod.toAlive) },
      pooled: Object.fromEntries(
        Object.entries(pooled).map(([k, f]) => [
          k,
          { size: f.size, fillMs: f.fillMs, startToRunning: f.pooled, share: f.pooledShare, parts: f.pooledParts },
        ]),
      ),
    };
    const row = (label: string, s: Stats) => `| ${label} | ${s.p50} | ${s.p95} | ${s.min} | ${s.max} |`;
    console.log(`\ncold start, ${N} each, one at a time (ms):\n| | p50 | p95 | min | max |\n|---|---|---|---|---|`);
    console.log(row('Docker: client → RUNNING', stats(engines.docker.ms)));
    console.log(row('Kubernetes: client → RUNNING', stats(engines.kubernetes.ms)));
    console.log(row('Kubernetes: create → pod address', stats(pod.toAddress)));
    console.log(row('Kubernetes: create → /alive', stats(pod.toAlive)));
    console.log(row(`Docker: pooled, client → RUNNING (${pooled.docker.pooledShare})`, pooled.docker.pooled));
    console.log(
      row(`Kubernetes: pooled, client → RUNNING (${pooled.kubernetes.pooledShare})`, pooled.kubernetes.pooled),
    );
    console.log(
      `pool of ${POOL_SIZE} filled in ${pooled.docker.fillMs} ms (Docker), ${pooled.kubernetes.fillMs} ms (Kubernetes)`,
    );
    mkdirSync(join(PROJECT_ROOT, 'bench'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, 'bench/kubernetes.json'), `${JSON.stringify(results, null, 2)}\n`);
    await raw.connection.close();
  } finally {
    for (const w of workers) w.shutdown();
    await Promise.allSettled(runs);
    await connection.close();
    await cluster.stop();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
