// Worker entry: the StartConversation workflow and its activities on the conversations task queue.
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { startReaper } from './reaper/schedule';
import { checkPoolSize, startPool } from './sandbox-pools/start';
import { KNOWN_ERRORS, createActivities, type ActivityDeps } from './activities';
import { loadConfig, type NestorConfig } from './config';
import { describeRuntime } from './describe-runtime';
import { DEFAULT_MODEL_CAPABILITIES } from './user-sessions/session';
import { DockerRuntimeProvider } from './runtime/docker';
import { kubernetesProvider } from './sandbox-engine';
import type { RuntimeProvider } from './runtime/provider';
import { poolNameFor } from './runtime/container-spec';
import { FAILURE_CONVERTER_PATH, describeKeys, nestorDataConverter, resolveEncryptionKeys } from './codec/keys';
import { activityLogInterceptor } from './observability/activity-log';
import { castKnownErrors } from './errors/cast-known-errors';
import { installRuntime } from './observability/runtime';
import { processTracing, shutdownTracing } from './observability/tracing';
import {
  connectFailure,
  describeTemporalAuth,
  temporalConnectionOptions,
  type TemporalConnectionOptions,
} from './temporal-connection';
import { preflight } from './preflight';
import { ConfigError } from './errors';
import type { EncryptionKey } from './codec/encryption';

/** Path of the workflows module the worker bundles. */
export const WORKFLOWS_PATH = require.resolve('./workflows');
/** Workflow interceptors bundled with the workflows (log attributes, the user ID header for activities). */
export const WORKFLOW_INTERCEPTORS_PATH = require.resolve('./observability/workflow-interceptors');

/**
 * Modules evaluated once per worker thread and shared by every workflow, instead of once per workflow (the SDK's
 * preloadModules). Only modules that keep no workflow's state: see src/shared/workflow-preload.ts.
 */
export const PRELOADED_WORKFLOW_MODULES = [require.resolve('./shared/workflow-preload')];

/** What bundleWorkflowCode needs to build the bundle the worker would build itself (tests share one). */
export const BUNDLE_OPTIONS = {
  workflowsPath: WORKFLOWS_PATH,
  workflowInterceptorModules: [WORKFLOW_INTERCEPTORS_PATH],
  failureConverterPath: FAILURE_CONVERTER_PATH,
  preloadModules: PRELOADED_WORKFLOW_MODULES,
};

export interface NestorWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** The encryption codec and encoding failure converter (codec/keys.ts); the same one the clients use. */
  dataConverter: DataConverter;
  /** A pre-built bundle from BUNDLE_OPTIONS (tests share one); @default bundle WORKFLOWS_PATH */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Workflows kept in memory (NESTOR_WORKFLOW_CACHE_SIZE); @default the SDK's, from the heap limit */
  workflowCacheSize?: number;
}

export function createWorker(o: NestorWorkerOptions): Promise<Worker> {
  // With OTEL_EXPORTER_OTLP_* set: spans of workflows and activities, joined to their callers' (observability/tracing.ts).
  const tracing = processTracing('nestor-worker');
  return Worker.create({
    ...(tracing && { plugins: [tracing.plugin] }),
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    taskQueue: o.taskQueue,
    ...(o.workflowBundle
      ? { workflowBundle: o.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: PRELOADED_WORKFLOW_MODULES } }),
    dataConverter: o.dataConverter,
    // A pre-built bundle already holds the workflow interceptors (BUNDLE_OPTIONS).
    interceptors: {
      ...(!o.workflowBundle && { workflowModules: BUNDLE_OPTIONS.workflowInterceptorModules }),
      // Outermost first: the log line sees the typed failure the cast made.
      activity: [activityLogInterceptor, castKnownErrors(KNOWN_ERRORS)],
    },
    activities: createActivities(o.deps),
    // Our activities are I/O bound HTTP and Docker calls; a modest cap keeps a 2-core machine responsive.
    maxConcurrentActivityTaskExecutions: 50,
    // A live conversation mostly waits; evicted, it is replayed from its history when a message comes
    // (docs/scaling.md: the memory a cached one costs, what a replay costs).
    ...(o.workflowCacheSize !== undefined && { maxCachedWorkflows: o.workflowCacheSize }),
  });
}

/**
 * The owner label of this service's sandboxes: the reaper sweeps only these, and only these are adopted or resumed.
 * The service's ID (NESTOR_SERVICE_ID), by default its namespace and task queue (what every worker of one deployment
 * shares), never the address a worker reaches Temporal by: every worker of one deployment owns them alike.
 */
export function runtimeOwner(c: NestorConfig): string {
  return c.serviceId ?? `${c.namespace}/${c.taskQueue}`;
}

/**
 * The owner labels versions before NESTOR_SERVICE_ID wrote (`<Temporal address>/<namespace>`): sandboxes of this
 * namespace made then are still this service's, whichever address spelling made them.
 */
export function formerRuntimeOwner(c: NestorConfig): (label: string) => boolean {
  return (label) => label.endsWith(`/${c.namespace}`) && label.length > c.namespace.length + 1;
}

/** The sandboxes' provider: the configured engine (sandbox-engine.ts) running the configured image. */
export function runtimeFromConfig(c: NestorConfig): RuntimeProvider {
  if (c.engine.kind === 'kubernetes') {
    // Kubernetes places pods itself: nestor's own placement over Docker hosts has nothing to place.
    if (c.sandboxHosts.enabled || c.sandboxHosts.hostId)
      throw new ConfigError(
        'NESTOR_SANDBOX_ENGINE=kubernetes: sandbox hosts (NESTOR_SANDBOX_HOSTS, NESTOR_HOST_ID) place sandboxes over Docker engines; unset them, the cluster places the pods',
      );
    return kubernetesProvider({
      engine: c.engine,
      image: c.runtimeImage,
      manifest: c.runtimeManifest,
      defaults: c.defaultLimits,
      owner: runtimeOwner(c),
    });
  }
  return new DockerRuntimeProvider({
    image: c.runtimeImage,
    defaults: c.defaultLimits,
    owner: runtimeOwner(c),
    formerOwner: formerRuntimeOwner(c),
    // A sandbox host's warm pool is its own (members are in its engine): named after the image and the host.
    ...(c.sandboxHosts.hostId && { pool: { name: `${poolNameFor(c.runtimeImage)}-${c.sandboxHosts.hostId}` } }),
  });
}

/** Activity dependencies from the configuration. */
export function depsFromConfig(c: NestorConfig): ActivityDeps {
  return {
    runtime: runtimeFromConfig(c),
    // Operator entries come first (first match wins) and override defaults of the same pattern.
    modelCapabilities: { ...c.modelCapabilities, ...DEFAULT_MODEL_CAPABILITIES, ...c.modelCapabilities },
    oauth: c.oauth,
    nestedRequestTimeoutMs: c.nestedTimeoutMs,
    maxConversationsPerUser: c.maxConversationsPerUser,
    sandboxMaxima: c.maxLimits,
    sandboxHosts: c.sandboxHosts.enabled,
    registryShards: c.sandboxHosts.registryShards,
    hostId: c.sandboxHosts.hostId,
  };
}

/**
 * The process's Runtime (JSON logs, metrics) and the data converter, in that order: the Runtime must exist before
 * the first connection. Says where the encryption key comes from, never what it is.
 */
export function prepareProcess(c: NestorConfig): { dataConverter: DataConverter; keys: EncryptionKey[] } {
  const keys = resolveEncryptionKeys(c);
  installRuntime(c);
  const log = Runtime.instance().logger;
  log.info(describeKeys(keys), { keyId: keys.keys[0].id, keySource: keys.source });
  if (c.metricsPort > 0) log.info(`metrics on http://127.0.0.1:${c.metricsPort}/metrics`);
  // With NESTOR_REQUIRE_ENCRYPTION, input nobody encrypted is refused like a stranger's, never obeyed or kept in clear.
  const dataConverter = nestorDataConverter(keys.keys, { role: 'worker', refusePlaintext: c.requireEncryption });
  return { dataConverter, keys: keys.keys };
}

/** The worker's connection; a failure says what to check (address, TLS files, API key) rather than the SDK's words. */
export function connectWorker(options: TemporalConnectionOptions): Promise<NativeConnection> {
  return NativeConnection.connect(options).catch((err: unknown) => {
    throw new ConfigError(connectFailure(err, options));
  });
}

/** A connected worker of the configured service, with the reaper's schedule in place; not yet running. */
export async function startWorker(
  c: NestorConfig,
  dataConverter: DataConverter,
): Promise<{ worker: Worker; connection: NativeConnection; address: string }> {
  const options = temporalConnectionOptions(c);
  const { address } = options;
  const connection = await connectWorker(options);
  const deps = depsFromConfig(c);
  // With sandbox hosts, this worker touches no sandbox: the hosts' workers check, reap and pool their own engines.
  const ownEngine = !c.sandboxHosts.enabled;
  try {
    await preflight({
      connection: options,
      namespace: c.namespace,
      ...(ownEngine && { runtime: deps.runtime, image: c.runtimeImage }),
    });
    if (ownEngine) await checkPoolSize(c, deps.runtime);
    const worker = await createWorker({
      connection,
      namespace: c.namespace,
      taskQueue: c.taskQueue,
      deps,
      dataConverter,
      workflowCacheSize: c.workflowCacheSize,
    });
    if (ownEngine) {
      await startReaper(worker, c);
      await startPool(worker, c, deps.runtime);
    }
    return { worker, connection, address };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

/** Connect, run until SIGINT/SIGTERM (the SDK's default shutdown signals), then drain. */
export async function runWorker(c: NestorConfig = loadConfig()): Promise<void> {
  const { dataConverter } = prepareProcess(c);
  const { worker, connection, address } = await startWorker(c, dataConverter);
  try {
    Runtime.instance().logger.info(
      `nestor worker on ${address} (${describeTemporalAuth(c)}), task queue ${c.taskQueue}. ${describeRuntime(c)}`,
      {
        address,
        taskQueue: c.taskQueue,
        runtime: c.runtime,
        image: c.runtimeImage,
      },
    );
    await worker.run();
  } finally {
    await connection.close();
    await shutdownTracing();
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
