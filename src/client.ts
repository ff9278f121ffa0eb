// nestor's public entry for backend services written in TypeScript: the client and the shapes it takes and returns.
// Everything a caller needs is here; what lies behind it (workflows, activities, adapters) may change between versions.
export {
  ConversationClient,
  ConversationError,
  ScheduleResumeSchema,
  type ConversationClientOptions,
  type ConversationSummary,
  type ScheduleResumeOptions,
  type ScheduledResume,
} from './conversation/client';
export type { SaidMessage } from './nested/said';
export { ErrorType } from './errors';
export { nestorDataConverter } from './codec/keys';
export { CONVERSATION_STATUSES, type ConversationStatus } from './shared/constants';
export type { AgentLoopInfo, MessageAck, SendMessageInput, StartConversationRequest } from './shared/schemas';
