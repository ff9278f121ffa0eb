// One run of StartConversation: its state, its activities, its input and bounds, handed to each part of the workflow.
import { workflowInfo } from '@temporalio/workflow';
import { DEFAULT_HOST_PICKUP_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_READY_TIMEOUT_MS } from '../../defaults';
import { hostTaskQueue } from '../../sandbox-hosts/messages';
import type { StartConversationInput } from '../../shared/schemas';
import type { CreatedRuntime, CreateRuntimeInput } from '../activities/runtime';
import { conversationMetrics } from './metrics';
import { Conversation, type CarriedState } from './state';
import { stepActivities, type Steps } from './steps';

export interface Run {
  conv: Conversation;
  acts: Steps;
  input: StartConversationInput;
  metrics: ReturnType<typeof conversationMetrics>;
  /** This conversation's life under its ID (every run of it): its sandbox is labelled with it, never adopted by another. */
  incarnation: string;
  /** Unset: the runtime image's own bound (its manifest), applied by the activity. */
  aliveTimeoutMs?: number;
  readyTimeoutMs: number;
  idleTimeoutMs: number;
  /** With sandbox hosts: how long a host's task may wait for its worker (schedule-to-start). */
  pickupTimeoutMs: number;
  /** This bring-up's resume confirmed its sandbox's host before taking a slot (HOST_BEFORE_SLOT_PATCH). */
  hostConfirmed?: boolean;
  /** A start's first placement: asked for and not answered yet (refused or interrupted), or answered. */
  placement?: 'asking' | 'answered';
  /** A start whose sandbox is on this worker's engine (CLAIM_BESIDE_SLOT_PATCH): no placement, a local readiness look. */
  here?: boolean;
  /** Its sandbox, claimed from the pool beside its slot, for the runtime step to take. */
  claimed?: CreatedRuntime;
}

/** From now on, the sandbox's steps go to this host (null: the worker's own engine). */
export function placeOn(r: Run, placement: { hostId: string; taskQueue: string } | null): void {
  r.acts = stepActivities(
    r.aliveTimeoutMs,
    r.readyTimeoutMs,
    placement ? { taskQueue: placement.taskQueue, pickupTimeoutMs: r.pickupTimeoutMs } : undefined,
  );
  if (placement) r.conv.info.sandboxHost = placement.hostId;
  else delete r.conv.info.sandboxHost;
}

export function newRun(input: StartConversationInput, carried: CarriedState | undefined): Run {
  const conversationId = typeof input.conversationId === 'string' ? input.conversationId : workflowInfo().workflowId;
  const userId = typeof input.userId === 'string' ? input.userId : '';
  const aliveTimeoutMs = input.timeouts?.aliveTimeoutMs;
  const readyTimeoutMs = input.timeouts?.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const pickupTimeoutMs = input.timeouts?.hostPickupTimeoutMs ?? DEFAULT_HOST_PICKUP_TIMEOUT_MS;
  const host = carried?.info.sandboxHost;
  return {
    // A continued run goes on with its sandbox's host.
    acts: stepActivities(
      aliveTimeoutMs,
      readyTimeoutMs,
      host ? { taskQueue: hostTaskQueue(host), pickupTimeoutMs } : undefined,
    ),
    pickupTimeoutMs,
    incarnation: workflowInfo().firstExecutionRunId,
    metrics: conversationMetrics(),
    conv: new Conversation(conversationId, userId, input.gitProviderTokens, carried),
    input,
    aliveTimeoutMs,
    readyTimeoutMs,
    idleTimeoutMs: input.timeouts?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}

/** What this start asks of its sandbox (createRuntime's input, and a claim's). */
export function runtimeSpec(r: Run): CreateRuntimeInput {
  const sandbox = r.input.settings.sandbox;
  return {
    conversationId: r.conv.conversationId,
    userId: r.conv.userId,
    incarnation: r.incarnation,
    env: sandbox?.env,
    cpus: sandbox?.cpus,
    memoryMb: sandbox?.memoryMb,
    pidsLimit: sandbox?.pidsLimit,
    egress: sandbox?.egress,
    fromPool: sandbox?.fromPool,
    aliveTimeoutMs: r.aliveTimeoutMs,
  };
}
