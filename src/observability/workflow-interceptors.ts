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

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes: (input, next) => next({ ...conversationAttributes(), ...input }),
      scheduleActivity: (input, next) => {
        const userId = workflowInfo().typedSearchAttributes.get(UserIdKey);
        // The user ID is no secret (it is a search attribute too).
        return next(
          userId
            ? { ...input, headers: { ...input.headers, [USER_ID_HEADER]: defaultPayloadConverter.toPayload(userId) } }
            : input,
        );
      },
    },
  ],
});
