// `nestor host-worker`: a sandbox host's worker. It runs beside its Docker engine (DOCKER_HOST), polls the host's own
// task queue `sandbox-host-<NESTOR_HOST_ID>`, where conversations placed on this host send every step that touches
// their sandbox (create, pause, resume, remove, the nested server's calls, deliveries: the sandbox's port is
// published on this machine only), registers the host with its capacity in the host registry, and keeps this
// engine's orphan reaper and warm pool (`<image pool>-<host id>`, NESTOR_POOL_SIZE). The queue is derived from the
// host ID, so a host worker cannot poll another host's queue.
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { KNOWN_ERRORS, createActivities } from './activities';
import { loadConfig, type NestorConfig } from './config';
import { describeRuntime } from './describe-runtime';
import { ConfigError } from './errors';
import { castKnownErrors } from './errors/cast-known-errors';
import { activityLogInterceptor } from './observability/activity-log';
import { preflight } from './preflight';
import { startReaper } from './reaper/schedule';
import { checkPoolSize, startPool } from './sandbox-pools/start';
import { registerHost, sendHostHeartbeat } from './sandbox-hosts/hosts';
import { hostTaskQueue } from './sandbox-hosts/messages';
import { HOST_HEARTBEAT_MS } from './defaults';
import type { RuntimeProvider } from './runtime/provider';
import { describeTemporalAuth, temporalConnectionOptions } from './temporal-connection';
import { BUNDLE_OPTIONS, WORKFLOWS_PATH, connectWorker, depsFromConfig, prepareProcess } from './worker';

export interface HostWorker {
  worker: Worker;
  connection: NativeConnection;
  hostId: string;
  taskQueue: string;
  /** Stop telling the registry this host is there (before the worker stops). */
  stopHeartbeat: () => void;
}

/** Connected, registered and not yet running (checked first by runHostWorker). */
export async function startHostWorker(c: NestorConfig, dataConverter: DataConverter): Promise<HostWorker> {
  const hostId = c.sandboxHosts.hostId;
  if (!hostId) throw new ConfigError('NESTOR_HOST_ID: required for a host worker (e.g. NESTOR_HOST_ID=docker-1)');
  const taskQueue = hostTaskQueue(hostId);
  const options = temporalConnectionOptions(c);
  const deps = depsFromConfig(c);
  await checkPoolSize(c, deps.runtime);
  const connection = await connectWorker(options);
  try {
    const worker = await Worker.create({
      connection,
      namespace: c.namespace,
      taskQueue,
      // The reaper's workflow runs here too: its activities list and remove in this host's engine.
      workflowsPath: WORKFLOWS_PATH,
      bundlerOptions: { preloadModules: BUNDLE_OPTIONS.preloadModules },
      interceptors: {
        workflowModules: BUNDLE_OPTIONS.workflowInterceptorModules,
        activity: [activityLogInterceptor, castKnownErrors(KNOWN_ERRORS)],
      },
      dataConverter,
      activities: createActivities(deps),
      maxConcurrentActivityTaskExecutions: 50,
    });
    // The host's reaper first: once the host is registered (what operators and tests wait for), it is all there.
    await startReaper(worker, c, { hostId, taskQueue });
    const record = await registerHost(worker.client!, {
      taskQueue: c.taskQueue,
      hostId,
      capacity: c.sandboxHosts.capacity,
      shards: c.sandboxHosts.registryShards,
    });
    const stopHeartbeat = heartbeat(worker, c, hostId, deps.runtime);
    // The host's warm pool (NESTOR_POOL_SIZE), kept by a SandboxPool workflow on this host's queue.
    await startPool(worker, { ...c, taskQueue }, deps.runtime);
    Runtime.instance().logger.info(
      `sandbox host ${hostId} registered: capacity ${record.capacity}, ${record.placed.length} placed${record.draining ? ', draining' : ''}; polling ${taskQueue} on ${options.address} (${describeTemporalAuth(c)}). ${describeRuntime(c)}`,
      { hostId, taskQueue },
    );
    return { worker, connection, hostId, taskQueue, stopHeartbeat };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** Run until SIGINT/SIGTERM, then drain. */
export async function runHostWorker(c: NestorConfig = loadConfig()): Promise<void> {
  // Checked before the SDK's runtime exists: a host worker that cannot serve exits at once, saying why.
  await preflight({
    connection: temporalConnectionOptions(c),
    namespace: c.namespace,
    runtime: depsFromConfig(c).runtime,
    image: c.runtimeImage,
    hostRegistry: { taskQueue: c.taskQueue },
  });
  const { dataConverter } = prepareProcess(c);
  const { worker, connection, stopHeartbeat } = await startHostWorker(c, dataConverter);
  try {
    await worker.run();
  } finally {
    stopHeartbeat();
    await connection.close();
  }
}

/**
 * Tell the registry every HOST_HEARTBEAT_MS that this host is there (signal-with-start: a registry started afresh is
 * started again and learns the host from it). A host whose beats stop is lost after HOST_LOST_AFTER_MS, and live
 * again with its next beat. A beat that fails (Temporal unreachable for a moment) is logged; the next one tries again.
 */
function heartbeat(worker: Worker, c: NestorConfig, hostId: string, runtime: RuntimeProvider): () => void {
  const beat = async () => {
    try {
      // What the engine holds (paused ones too): a registry started afresh sees how full the host is.
      const sandboxes = (await runtime.list()).filter((r) => !r.pool).length;
      await sendHostHeartbeat(worker.client!, {
        taskQueue: c.taskQueue,
        hostId,
        capacity: c.sandboxHosts.capacity,
        sandboxes,
        shards: c.sandboxHosts.registryShards,
      });
    } catch (err) {
      Runtime.instance().logger.warn(`host heartbeat failed: ${(err as Error).message}`, { hostId });
    }
  };
  const timer = setInterval(() => void beat(), HOST_HEARTBEAT_MS);
  return () => clearInterval(timer);
}
