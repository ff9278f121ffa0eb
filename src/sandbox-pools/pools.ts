// One home for starting and steering warm pools from a client: the worker starts its image's pool at start-up
// (NESTOR_POOL_SIZE), and the CLI's `nestor pool` resizes, disables, enables, drains and shows them.
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { ErrorType, NestorError } from '../errors';
import { WORKFLOW_TYPES, poolWorkflowId } from '../shared/constants';
import { hostTaskQueue } from '../sandbox-hosts/messages';
import {
  drainPoolUpdate,
  poolStatusQuery,
  resizePoolUpdate,
  setPoolEnabledUpdate,
  type PoolStatus,
  type SandboxPoolInput,
} from './messages';

/** Start the pool's owner unless it runs already (then its size is the operator's: `nestor pool resize`). */
export async function ensurePool(client: Client, o: { taskQueue: string; pool: string; size: number }): Promise<void> {
  await client.workflow.start(WORKFLOW_TYPES.sandboxPool, {
    workflowId: poolWorkflowId(o.pool),
    taskQueue: o.taskQueue,
    args: [{ pool: o.pool, size: o.size } satisfies SandboxPoolInput],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `warm pool ${o.pool}`,
  });
}

/**
 * The task queue a pool's owner runs on: a sandbox host's pool (`<image pool>-<host ID>`) on that host's queue (its
 * members are in that host's engine), any other on the conversations queue.
 */
export function poolTaskQueue(pool: string, hostIds: string[], conversationsQueue: string): string {
  const host = hostIds.find((h) => pool.endsWith(`-${h}`));
  return host ? hostTaskQueue(host) : conversationsQueue;
}

/**
 * Set the size, starting the pool's owner when none runs (empty: the update sets its size, so a size the machine
 * cannot hold is refused the same way whether the pool ran or not).
 */
export async function resizePool(
  client: Client,
  o: { taskQueue: string; pool: string; size: number },
): Promise<PoolStatus> {
  const startOperation = new WithStartWorkflowOperation(WORKFLOW_TYPES.sandboxPool, {
    workflowId: poolWorkflowId(o.pool),
    taskQueue: o.taskQueue,
    args: [{ pool: o.pool, size: 0 } satisfies SandboxPoolInput],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `warm pool ${o.pool}`,
  });
  return notFoundAsPool(o.pool, () =>
    client.workflow.executeUpdateWithStart(resizePoolUpdate, {
      args: [{ size: o.size }],
      startWorkflowOperation: startOperation,
    }),
  );
}

/** A running pool's status; PoolNotFound when none runs under that name (never started, or drained). */
export async function poolStatus(client: Client, pool: string): Promise<PoolStatus> {
  return notFoundAsPool(pool, async () => {
    const handle = client.workflow.getHandle(poolWorkflowId(pool));
    if ((await handle.describe()).status.name !== 'RUNNING')
      throw new WorkflowNotFoundError('not running', handle.workflowId, undefined);
    return handle.query(poolStatusQuery);
  });
}

export async function setPoolEnabled(client: Client, pool: string, enabled: boolean): Promise<PoolStatus> {
  return notFoundAsPool(pool, () =>
    client.workflow.getHandle(poolWorkflowId(pool)).executeUpdate(setPoolEnabledUpdate, { args: [{ enabled }] }),
  );
}

/** Remove every unclaimed member and end the pool's owner; returns once it has ended. */
export async function drainPool(client: Client, pool: string): Promise<PoolStatus> {
  return notFoundAsPool(pool, async () => {
    const handle = client.workflow.getHandle(poolWorkflowId(pool));
    await handle.executeUpdate(drainPoolUpdate);
    return (await handle.result()) as PoolStatus;
  });
}

/**
 * Failures callers can act on, typed: PoolNotFound for a pool that is not running; an update the pool refused
 * (PoolTooLarge, or InvalidInput for a size that is not one) with the pool's own message.
 */
async function notFoundAsPool<T>(pool: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const cause = err.cause as (Error & { type?: string }) | undefined;
      const type = cause?.type === ErrorType.PoolTooLarge ? ErrorType.PoolTooLarge : ErrorType.InvalidInput;
      throw new NestorError(type, cause?.message ?? err.message, false);
    }
    if (
      err instanceof WorkflowNotFoundError ||
      (err as Error).message?.includes('workflow execution already completed')
    )
      throw new NestorError(
        ErrorType.PoolNotFound,
        `no warm pool '${pool}' is running (workflow ${poolWorkflowId(pool)}); start one with 'nestor pool resize <size>' or NESTOR_POOL_SIZE on the worker`,
        false,
      );
    throw err;
  }
}
