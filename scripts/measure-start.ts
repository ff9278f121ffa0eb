// Time from `start` to RUNNING for 10 conversations in a row, on a real dev server, worker, Docker and the emulator
// image; split into container-ready time (create, start, first /alive) and the rest. Prints medians.
import { ConversationClient } from '../src/client';
import { loadConfig } from '../src/config';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { createWorker } from '../src/worker';
import { createTestEnv, testDataConverter, uniqueId, workflowBundle } from '../test/helpers/temporal';

const RUNS = Number(process.env.MEASURE_RUNS ?? 10);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const env = await createTestEnv();
  const taskQueue = uniqueId('measure');
  const worker = await createWorker({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    dataConverter: testDataConverter,
    deps: { runtime: new DockerRuntimeProvider({ image: loadConfig().runtimeImage }) },
  });
  const running = worker.run();
  const client = new ConversationClient({ client: env.client, taskQueue });
  const rows: Array<{ total: number; runtime: number; rest: number }> = [];
  try {
    for (let i = 0; i <= RUNS; i++) {
      const id = uniqueId('measure');
      const t0 = performance.now();
      const info = await client.start({
        conversationId: id,
        userId: 'measure',
        settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk-measure', sandbox: { env: { CONVERSATION_START_DELAY_MS: '0' } } },
      });
      const total = performance.now() - t0;
      await client.close(id);
      if (i === 0) continue; // warm-up: first bundle load, first container of the image
      const runtime = info.timings!.runtimeReadyMs!;
      rows.push({ total, runtime, rest: total - runtime });
      console.log(`run ${i}: start→RUNNING ${total.toFixed(0)} ms (container ready ${runtime} ms, rest ${(total - runtime).toFixed(0)} ms)`);
    }
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
  }
  const m = (k: keyof (typeof rows)[number]) => median(rows.map((r) => r[k])).toFixed(0);
  console.log(`\nmedian of ${rows.length}: start→RUNNING ${m('total')} ms = container ready ${m('runtime')} ms + rest ${m('rest')} ms`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
