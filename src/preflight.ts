// What a worker checks at start-up, before it polls: that the Temporal namespace is set up for nestor (its search
// attributes, updates enabled, an in-flight update limit nestor's message bursts fit in) and that the sandbox engine
// answers with the runtime image. A misconfigured cluster or host is reported here with what to fix, instead of
// surfacing later as a conversation that hangs or fails one message in eleven.
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { HOST_REGISTRY_WAIT_MS, REQUIRED_IN_FLIGHT_UPDATES } from './defaults';
import { ConfigError } from './errors';
import type { RuntimeProvider } from './runtime/provider';
import { SANDBOX_HOSTS_WORKFLOW_ID } from './sandbox-hosts/messages';
import { SEARCH_ATTRIBUTE_KEYS } from './shared/constants';
import { connectFailure, temporalRefusal, type TemporalConnectionOptions } from './temporal-connection';

const { IndexedValueType, TaskQueueType, UpdateWorkflowExecutionLifecycleStage, WorkflowExecutionStatus } =
  temporal.api.enums.v1;
/** gRPC status code RESOURCE_EXHAUSTED. */
const RESOURCE_EXHAUSTED = 8;

export interface PreflightTarget {
  connection: TemporalConnectionOptions;
  namespace: string;
  /** The sandbox engine this worker drives, and the image it starts. */
  runtime?: RuntimeProvider;
  image?: string;
  /**
   * A host worker's: the conversations' task queue (its NESTOR_TASK_QUEUE), where the host registry runs, and how
   * long to wait for a worker there (default HOST_REGISTRY_WAIT_MS).
   */
  hostRegistry?: { taskQueue: string; waitMs?: number };
}

/** Every problem found, each saying what to fix; empty when the worker may start. */
export async function preflightProblems(t: PreflightTarget): Promise<string[]> {
  const problems: string[] = [];
  if (t.runtime) {
    try {
      await t.runtime.requirements();
    } catch (err) {
      problems.push(
        `sandbox engine: ${(err as Error).message.split('\n')[0]}; check that the Docker engine runs and is reachable (DOCKER_HOST) and that the image ${t.image ?? ''} is there (npm run setup builds it)`,
      );
    }
  }
  // Retries off: a limit reached must show as the server's RESOURCE_EXHAUSTED, not be retried away.
  const conn = await Connection.connect({ ...t.connection, interceptors: [] }).catch((err: Error) => {
    throw new ConfigError(
      `${connectFailure(err, t.connection)}${problems.length ? `; also:\n- ${problems.join('\n- ')}` : ''}`,
    );
  });
  try {
    const ns = await conn.workflowService.describeNamespace({ namespace: t.namespace }).catch((err: Error) => {
      problems.push(
        `namespace ${t.namespace}: ${err.message}; create it (temporal operator namespace create -n ${t.namespace}) or set TEMPORAL_NAMESPACE`,
      );
      return undefined;
    });
    if (!ns) return problems;
    problems.push(...(await searchAttributeProblems(conn, t.namespace)));
    const caps = ns.namespaceInfo?.capabilities;
    if (caps && !caps.syncUpdate) {
      problems.push(
        `namespace ${t.namespace}: workflow updates are disabled; nestor's starts, messages, pause and close are updates: set frontend.enableUpdateWorkflowExecution: true in the cluster's dynamic config`,
      );
      return problems;
    }
    const limit = await inFlightUpdateLimit(conn, t.namespace).catch((err: unknown) => {
      const refused = temporalRefusal(err);
      if (!refused) throw err;
      problems.push(
        `namespace ${t.namespace}: this worker's credentials may not start workflows there (${refused}); nestor's workers start conversations, schedules and pools: give its API key write permission on the namespace (e.g. ${t.namespace}:write)`,
      );
      return undefined;
    });
    if (limit !== undefined)
      problems.push(
        `namespace ${t.namespace}: at most ${limit} updates in flight per workflow (history.maxInFlightUpdates); each message to a conversation is an update until delivered, and a burst needs at least ${REQUIRED_IN_FLIGHT_UPDATES}: set history.maxInFlightUpdates to 500 in the cluster's dynamic config (docs/clusters.md, "Production shape")`,
      );
    if (t.hostRegistry) problems.push(...(await hostRegistryProblems(conn, t.namespace, t.hostRegistry)));
  } finally {
    await conn.close();
  }
  return problems;
}

/** preflightProblems as one ConfigError listing them all, or nothing. */
export async function preflight(t: PreflightTarget): Promise<void> {
  const problems = await preflightProblems(t);
  if (problems.length)
    throw new ConfigError(`the worker cannot start, ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
}

/**
 * A host worker registers in the host registry (workflow sandbox-hosts), which runs on the conversations' task queue
 * and is served by their worker. A registry on another queue means this host worker names another service's queue
 * (wrong NESTOR_TASK_QUEUE); no worker polling the queue (after waiting a while: both may be starting) means its
 * registration would wait forever.
 */
async function hostRegistryProblems(
  conn: Connection,
  namespace: string,
  o: { taskQueue: string; waitMs?: number },
): Promise<string[]> {
  const registryQueue = await conn.workflowService
    .describeWorkflowExecution({ namespace, execution: { workflowId: SANDBOX_HOSTS_WORKFLOW_ID } })
    .then(
      (d) =>
        d.workflowExecutionInfo?.status === WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
          ? d.executionConfig?.taskQueue?.name
          : undefined,
      () => undefined,
    );
  if (registryQueue && registryQueue !== o.taskQueue)
    return [
      `host registry: it runs on task queue ${registryQueue} (its conversations worker's), but this host worker's NESTOR_TASK_QUEUE is ${o.taskQueue}: set NESTOR_TASK_QUEUE=${registryQueue}`,
    ];
  const until = Date.now() + (o.waitMs ?? HOST_REGISTRY_WAIT_MS);
  for (;;) {
    const { pollers } = await conn.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: o.taskQueue },
      taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    if (pollers?.length) return [];
    if (Date.now() >= until)
      return [
        `task queue ${o.taskQueue}: no worker polls it, and the host registry runs there: start the conversations worker ('nestor worker' with NESTOR_SANDBOX_HOSTS=true and NESTOR_TASK_QUEUE=${o.taskQueue}), or set this host worker's NESTOR_TASK_QUEUE to the queue that worker polls`,
      ];
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function searchAttributeProblems(conn: Connection, namespace: string): Promise<string[]> {
  const { customAttributes = {} } = await conn.operatorService.listSearchAttributes({ namespace });
  return SEARCH_ATTRIBUTE_KEYS.filter(
    (k) => customAttributes[k.name] !== IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  ).map((k) =>
    customAttributes[k.name] === undefined
      ? `namespace ${namespace}: search attribute ${k.name} is not registered; run: temporal operator search-attribute create -n ${namespace} --name ${k.name} --type Keyword`
      : `namespace ${namespace}: search attribute ${k.name} has type ${IndexedValueType[customAttributes[k.name]]}, nestor needs Keyword`,
  );
}

/**
 * The namespace's in-flight update limit if it is below REQUIRED_IN_FLIGHT_UPDATES, else undefined. The server has no
 * API that reads dynamic config, so this asks it: a probe workflow on a task queue nobody polls, and one more
 * update than required sent at once. Each waits (nobody accepts it) and counts as in flight; past the limit, the
 * server turns the rest away at once with RESOURCE_EXHAUSTED, naming the limit. The probe is terminated after (about
 * a second).
 */
async function inFlightUpdateLimit(conn: Connection, namespace: string): Promise<number | undefined> {
  const workflowId = `nestor-preflight-${randomUUID()}`;
  const identity = 'nestor-preflight';
  await conn.workflowService.startWorkflowExecution({
    namespace,
    workflowId,
    workflowType: { name: 'NestorPreflightProbe' },
    taskQueue: { name: workflowId },
    identity,
    requestId: randomUUID(),
    workflowRunTimeout: msToTs('1 minute'),
  });
  let settled: Promise<PromiseSettledResult<unknown>[]>;
  try {
    const calls = Array.from({ length: REQUIRED_IN_FLIGHT_UPDATES + 1 }, (_, i) =>
      conn.withDeadline(Date.now() + 10_000, () =>
        conn.workflowService.updateWorkflowExecution({
          namespace,
          workflowExecution: { workflowId },
          request: { meta: { updateId: `probe-${i}`, identity }, input: { name: 'probe' } },
          waitPolicy: {
            lifecycleStage: UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED,
          },
        }),
      ),
    );
    // Handled from the start: rejections come at once; admitted updates wait until the probe is terminated.
    settled = Promise.allSettled(calls);
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    // Once, whatever happened: it releases the waiting updates and leaves no probe behind.
    await conn.workflowService
      .terminateWorkflowExecution({ namespace, workflowExecution: { workflowId }, reason: 'preflight done', identity })
      .catch(() => undefined);
  }
  // The server names its limit: "limit on number of concurrent in-flight updates has been reached (10)".
  for (const r of await settled) {
    const err = r.status === 'rejected' ? (r.reason as { code?: number; details?: string; message?: string }) : {};
    const limit = /in-flight updates has been reached \((\d+)\)/.exec(err.details ?? err.message ?? '');
    if (err.code === RESOURCE_EXHAUSTED && limit) return Number(limit[1]);
  }
  return undefined;
}
