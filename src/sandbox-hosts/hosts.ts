// The host registry from outside a workflow: a host worker registers its host at start; operators list hosts and
// drain or undrain one (`nestor host …`).
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, NestorError } from '../errors';
import { registryStart } from './activities';
import {
  SANDBOX_HOSTS_WORKFLOW_ID,
  hostsQuery,
  registerHostUpdate,
  setDrainingUpdate,
  type HostRecord,
} from './messages';

/** Register (or register again) a host with its capacity; starts the registry on `taskQueue` if none runs. */
export async function registerHost(
  client: Client,
  o: { taskQueue: string; hostId: string; capacity: number },
): Promise<HostRecord> {
  return typed(() =>
    client.workflow.executeUpdateWithStart(registerHostUpdate, {
      args: [{ hostId: o.hostId, capacity: o.capacity }],
      startWorkflowOperation: registryStart(o.taskQueue),
    }),
  );
}

/** Stop (or resume) placing new sandboxes on a host. */
export async function setHostDraining(client: Client, hostId: string, draining: boolean): Promise<HostRecord> {
  return typed(() =>
    client.workflow
      .getHandle(SANDBOX_HOSTS_WORKFLOW_ID)
      .executeUpdate(setDrainingUpdate, { args: [{ hostId, draining }] }),
  );
}

/** The registered hosts, or none when no registry runs. */
export async function listHosts(client: Client): Promise<HostRecord[]> {
  try {
    return await client.workflow.getHandle(SANDBOX_HOSTS_WORKFLOW_ID).query(hostsQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return [];
    throw err;
  }
}

/** The registry's refusals as NestorErrors with their type (HostNotFound, InvalidInput), not update failures. */
async function typed<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new NestorError(ErrorType.HostNotFound, 'no sandbox host registry runs: no host worker has started', false);
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const type = err.cause.type === ErrorType.HostNotFound ? ErrorType.HostNotFound : ErrorType.InvalidInput;
      throw new NestorError(type, err.cause.message, false);
    }
    throw err;
  }
}
