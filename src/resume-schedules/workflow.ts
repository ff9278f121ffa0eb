// ResumeConversation: the target of a resume schedule. Schedules append a timestamp to the workflow ID they start,
// so they cannot address conversation-<id> directly; this small workflow does it through an activity.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ErrorType } from '../errors';
import type { AgentLoopInfo } from '../shared/schemas';
import type { ResumeConversationInput } from './messages';

export type { ResumeConversationInput };

const { resumeConversation } = proxyActivities<Activities>({
  summary: 'resumeConversation: resume the conversation, deliver the scheduled message',
  // Covers a full resume (container start, nested set-up, readiness) with room to spare.
  startToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '2 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [ErrorType.ConversationNotFound, ErrorType.ConversationClosed, ErrorType.InvalidInput],
  },
});

export async function ResumeConversation(input: ResumeConversationInput): Promise<AgentLoopInfo> {
  return resumeConversation({ ...input, messageId: input.message ? workflowInfo().workflowId : undefined });
}
