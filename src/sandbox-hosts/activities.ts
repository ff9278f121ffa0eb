// What a conversation asks of the host registry (SandboxHosts): a placement for its sandbox, giving it back, and
// reporting a host whose worker did not pick up a task. Without sandbox hosts (NESTOR_SANDBOX_HOSTS unset: the
// worker's own Docker engine holds every sandbox) placement answers at once, with no registry.
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../errors';
import { WORKFLOW_TYPES, conversationWorkflowId } from '../shared/constants';
import {
  ONE_SHARD,
  hostLostSignal,
  placeUpdate,
  registryShards,
  registryWorkflowId,
  releaseSignal,
  shardOf,
  type Placement,
  type RegistryShard,
  type SandboxHostsInput,
} from './messages';

export interface HostActivityDeps {
  /** Sandboxes go to registered sandbox hosts (true), or to this worker's own engine. */
  sandboxHosts?: boolean;
  /** The registry's shards (NESTOR_HOST_REGISTRY_SHARDS). @default 1 */
  registryShards?: number;
}

export function createHostActivities(deps: HostActivityDeps) {
  const shards = () => deps.registryShards ?? 1;
  return {
    /** The host for this conversation's sandbox (the same one when asked again), or null without sandbox hosts. */
    async placeSandbox(input: {
      conversationId: string;
      exclude?: string[];
      current?: string;
    }): Promise<Placement | null> {
      if (!deps.sandboxHosts) return null;
      const ctx = Context.current();
      try {
        return await ctx.client.workflow.executeUpdateWithStart(placeUpdate, {
          args: [
            {
              conversationId: input.conversationId,
              exclude: input.exclude ?? [],
              current: input.current,
              shards: shards(),
            },
          ],
          startWorkflowOperation: registryStart(ctx.info.taskQueue, shardOf(input.conversationId, shards())),
        });
      } catch (err) {
        // The registry's refusal (NoSandboxHost, RegistryShardsMismatch) is final for this step: say it with its type.
        if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure)
          throw ApplicationFailure.create({
            type: err.cause.type ?? ErrorType.NoSandboxHost,
            message: err.cause.message,
            nonRetryable: true,
          });
        throw err;
      }
    },

    /**
     * Which of these conversations' workflows are closed (completed, failed, terminated) or gone: their placements
     * hold room on a host for nothing (the registry's self-healing). Read from each workflow's own description.
     */
    async closedConversations(input: { conversationIds: string[] }): Promise<{ closed: string[] }> {
      const client = Context.current().client;
      const closed: string[] = [];
      for (const conversationId of input.conversationIds) {
        try {
          const d = await client.workflow.getHandle(conversationWorkflowId(conversationId)).describe();
          if (d.status.name !== 'RUNNING') closed.push(conversationId);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          closed.push(conversationId);
        }
      }
      return { closed };
    },

    /** Give the placement back to the shard that made it. */
    async releaseSandbox(input: { conversationId: string }): Promise<void> {
      await signalRegistry(shardOf(input.conversationId, shards()), (h) => h.signal(releaseSignal, input));
    },

    /** Shown by every shard (each lists the host). */
    async reportHostLost(input: { hostId: string; reason: string }): Promise<void> {
      for (const shard of registryShards(shards())) await signalRegistry(shard, (h) => h.signal(hostLostSignal, input));
    },
  };
}

/** How a registry shard is started by whoever needs it first: on the conversations task queue. */
export function registryStartOptions(taskQueue: string, shard: RegistryShard = ONE_SHARD) {
  return {
    workflowId: registryWorkflowId(shard.index),
    taskQueue,
    // One shard starts as the registry always did (no shard in its input).
    args: [shard.of > 1 ? { shard } : {}] as [SandboxHostsInput],
    staticSummary:
      shard.of > 1
        ? `sandbox hosts, shard ${shard.index} of ${shard.of}: its share of capacity, load, draining`
        : 'sandbox hosts: capacity, load, draining',
  };
}

/** A registry shard's start, for update-with-start: whoever asks first starts it, on the conversations task queue. */
export function registryStart(taskQueue: string, shard: RegistryShard = ONE_SHARD) {
  return new WithStartWorkflowOperation(WORKFLOW_TYPES.sandboxHosts, {
    ...registryStartOptions(taskQueue, shard),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

async function signalRegistry(
  shard: RegistryShard,
  send: (h: ReturnType<ReturnType<typeof Context.current>['client']['workflow']['getHandle']>) => Promise<void>,
): Promise<void> {
  try {
    await send(Context.current().client.workflow.getHandle(registryWorkflowId(shard.index)));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err; // no registry: nothing placed to give back
  }
}
