// One run of StartConversation: its state, its activities, its input and bounds, handed to each part of the workflow.
import { workflowInfo } from '@temporalio/workflow';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_READY_TIMEOUT_MS } from '../../defaults';
import type { StartConversationInput } from '../../shared/schemas';
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
}

export function newRun(input: StartConversationInput, carried: CarriedState | undefined): Run {
  const conversationId = typeof input.conversationId === 'string' ? input.conversationId : workflowInfo().workflowId;
  const userId = typeof input.userId === 'string' ? input.userId : '';
  const aliveTimeoutMs = input.timeouts?.aliveTimeoutMs;
  const readyTimeoutMs = input.timeouts?.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return {
    acts: stepActivities(aliveTimeoutMs, readyTimeoutMs),
    incarnation: workflowInfo().firstExecutionRunId,
    metrics: conversationMetrics(),
    conv: new Conversation(conversationId, userId, input.gitProviderTokens, carried),
    input,
    aliveTimeoutMs,
    readyTimeoutMs,
    idleTimeoutMs: input.timeouts?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}
