// The worker's part in warm pools: at start-up, with NESTOR_POOL_SIZE set, check the size against what the machine
// holds before the worker is made (a misconfiguration is reported here, not by a pool that never fills), then make
// sure its image's pool runs.
import { Runtime, type Worker } from '@temporalio/worker';
import type { NestorConfig } from '../config';
import { ConfigError } from '../errors';
import type { RuntimeProvider } from '../runtime/provider';
import { poolWorkflowId } from '../shared/constants';
import { capacityOf } from './activities';
import { ensurePool } from './pools';

/** NESTOR_POOL_SIZE within the pool's share of the Docker host's memory, else a ConfigError saying what to set. */
export async function checkPoolSize(c: NestorConfig, runtime: RuntimeProvider): Promise<void> {
  if (c.poolSize === 0 || !runtime.pool) return;
  const cap = await capacityOf(runtime);
  if (c.poolSize > cap.maxSize)
    throw new ConfigError(
      `NESTOR_POOL_SIZE: ${c.poolSize} members of ${cap.memberMemoryMb} MB (image ${c.runtimeImage}) is more than the pool's share of this Docker host's ${cap.hostMemoryMb} MB holds; set it to ${cap.maxSize} or fewer`,
    );
}

/** The image's pool, started with NESTOR_POOL_SIZE unless it runs already (then its size is the operator's). */
export async function startPool(worker: Worker, c: NestorConfig, runtime: RuntimeProvider): Promise<void> {
  if (c.poolSize === 0 || !runtime.pool) return;
  const pool = runtime.pool.poolName;
  await ensurePool(worker.client!, { taskQueue: c.taskQueue, pool, size: c.poolSize });
  Runtime.instance().logger.info(
    `warm pool ${pool} running (workflow ${poolWorkflowId(pool)}); NESTOR_POOL_SIZE=${c.poolSize} applies when it starts, 'nestor pool resize' after`,
    { pool },
  );
}
