// One conversations worker of `npm run bench:scale`, as its own process so its memory and CPU are its own: the real
// worker (prepareProcess, createWorker: the dev encryption key, JSON logs, Prometheus metrics on NESTOR_METRICS_PORT,
// NESTOR_WORKFLOW_CACHE_SIZE) with the provider that creates nothing, every conversation on one emulator
// (BENCH_EMULATOR_URL), so Docker is not what is measured. Reached through TEMPORAL_ADDRESS on NESTOR_TASK_QUEUE.
// Prints "ready" once polling; drains on SIGTERM.
import { loadConfig } from '../../src/config';
import { SharedServerProvider } from '../../src/runtime/shared-server';
import { connectWorker, createWorker, prepareProcess } from '../../src/worker';
import { temporalConnectionOptions } from '../../src/temporal-connection';

async function main() {
  const c = loadConfig();
  const { dataConverter } = prepareProcess(c);
  const connection = await connectWorker(temporalConnectionOptions(c));
  const worker = await createWorker({
    connection,
    namespace: c.namespace,
    taskQueue: c.taskQueue,
    dataConverter,
    workflowCacheSize: c.workflowCacheSize,
    deps: {
      runtime: new SharedServerProvider({ url: process.env.BENCH_EMULATOR_URL!, sessionApiKey: 'bench-key' }),
      maxConversationsPerUser: c.maxConversationsPerUser,
      sandboxHosts: c.sandboxHosts.enabled,
    },
  });
  const running = worker.run();
  console.log('ready');
  await running;
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
