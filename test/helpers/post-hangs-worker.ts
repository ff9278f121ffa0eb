// A nestor worker process on the current agent server image whose message posts reach the server but whose answers
// never come back: a test kills it (SIGKILL) while such a post is in flight. Started by agent-server-e2e.test.ts as
// `node dist/test/helpers/post-hangs-worker.js` with TEMPORAL_ADDRESS and NESTOR_TASK_QUEUE; prints "ready" once it polls.
import { NativeConnection } from '@temporalio/worker';
import { Agent, type Dispatcher } from 'undici';
import { createWorker } from '../../src/worker';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { testWorkerDataConverter, workflowBundle } from './temporal';

/** Forwards every request; a message post's answer is swallowed and its caller left waiting. */
class HangsPostAnswers extends Agent {
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (opts.method !== 'POST' || !/\/events$/.test(String(opts.path))) return super.dispatch(opts, handler);
    const legacy = handler as { onConnect?: (abort: (err?: Error) => void) => void };
    return super.dispatch(opts, {
      onConnect: (abort: (err?: Error) => void) => legacy.onConnect?.(abort),
      onHeaders: () => true,
      onData: () => true,
      onComplete: () => undefined,
      onError: () => undefined,
    } as Dispatcher.DispatchHandler);
  }
}

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const worker = await createWorker({
    connection,
    taskQueue: process.env.NESTOR_TASK_QUEUE!,
    workflowBundle: await workflowBundle(),
    dataConverter: testWorkerDataConverter,
    deps: {
      runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.openhands }),
      dispatcher: new HangsPostAnswers(),
    },
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
