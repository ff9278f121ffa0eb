// Workflow interceptors (bundled with the workflows): every log line of a conversation's workflow names the
// conversation and the user, and every activity it schedules carries the user ID in a header for the activity's logs.
import { defaultPayloadConverter } from '@temporalio/common';
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { ConversationIdKey, USER_ID_HEADER, UserIdKey } from '../shared/constants';

function conversationAttributes(): Record<string, string> {
  const sa = workflowInfo().typedSearchAttributes;
  const conversationId = sa.get(ConversationIdKey);
  const userId = sa.get(UserIdKey);
  return { ...(conversationId && { conversationId }), ...(userId && { userId }) };
}

/** The activity's headers with the user ID (no secret: it is a search attribute too), for activities and local ones. */
function withUserId<T extends { headers: Record<string, unknown> }>(input: T): T {
  const userId = workflowInfo().typedSearchAttributes.get(UserIdKey);
  return userId
    ? { ...input, headers: { ...input.headers, [USER_ID_HEADER]: defaultPayloadConverter.toPayload(userId) } }
    : input;
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes: (input, next) => next({ ...conversationAttributes(), ...input }),
      scheduleActivity: (input, next) => next(withUserId(input)),
      scheduleLocalActivity: (input, next) => next(withUserId(input)),
    },
  ],
});
