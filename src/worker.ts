// Worker entry: the StartConversation workflow and its activities on the conversations task queue.
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from './activities';
import { loadConfig, temporalAddress, type NestorConfig } from './config';
import { DEFAULT_MODEL_CAPABILITIES } from './activities/session';
import { DockerRuntimeProvider } from './runtime/docker';

/** Path of the workflows module the worker bundles. */
export const WORKFLOWS_PATH = require.resolve('./workflows');

export interface NestorWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A pre-built bundle (tests share one); @default bundle WORKFLOWS_PATH */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export function createWorker(o: NestorWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    taskQueue: o.taskQueue,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(o.deps),
    // Our activities are I/O bound HTTP and Docker calls; a modest cap keeps a 2-core machine responsive.
    maxConcurrentActivityTaskExecutions: 50,
  });
}

/** Activity dependencies from the configuration: the Docker provider on the configured image. */
export function depsFromConfig(c: NestorConfig): ActivityDeps {
  return {
    runtime: new DockerRuntimeProvider({ image: c.runtimeImage, defaults: c.defaultLimits }),
    // Operator entries come first (first match wins) and override defaults of the same pattern.
    modelCapabilities: { ...c.modelCapabilities, ...DEFAULT_MODEL_CAPABILITIES, ...c.modelCapabilities },
    oauth: c.oauth,
    nestedRequestTimeoutMs: c.nestedTimeoutMs,
    maxConversationsPerUser: c.maxConversationsPerUser,
    sandboxMaxima: c.maxLimits,
  };
}

/** Connect, run until SIGINT/SIGTERM (the SDK's default shutdown signals), then drain. */
export async function runWorker(c: NestorConfig = loadConfig()): Promise<void> {
  const connection = await NativeConnection.connect({ address: temporalAddress(c) });
  try {
    const worker = await createWorker({ connection, namespace: c.namespace, taskQueue: c.taskQueue, deps: depsFromConfig(c) });
    await worker.run();
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
