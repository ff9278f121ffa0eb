// Message definitions of StartConversation, shared by the workflow and its callers.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { MESSAGE_NAMES } from '../shared/constants';
import type {
  AgentLoopInfo,
  CloseInput,
  MessageAck,
  PauseInput,
  SendMessageInput,
  WaitReadyInput,
} from '../shared/schemas';

/**
 * Who waits for a conversation (required): a live conversation of another user is refused
 * (ConversationOwnedByAnotherUser) instead of handing over its session key.
 */
export type { WaitReadyInput };

/** Resolves with connection info (including the session API key) once RUNNING; resumes a paused conversation; fails with the start error. */
export const waitReadyUpdate = defineUpdate<AgentLoopInfo, [WaitReadyInput]>(MESSAGE_NAMES.waitReady);
/** Delivers one user message, in order, exactly once per message ID; resolves once the nested server accepted it. */
export const sendMessageUpdate = defineUpdate<MessageAck, [SendMessageInput]>(MESSAGE_NAMES.sendMessage);
/** Stops the nested conversation and removes the runtime; resolves with the final status. */
export const closeUpdate = defineUpdate<AgentLoopInfo, [CloseInput]>(MESSAGE_NAMES.close);
/** Fire-and-forget close, for callers that cannot wait. */
export const closeSignal = defineSignal<[CloseInput]>(MESSAGE_NAMES.close);
/** Stops the runtime but keeps it and its file store; resolves once PAUSED. */
export const pauseUpdate = defineUpdate<AgentLoopInfo, [PauseInput]>(MESSAGE_NAMES.pause);
/** Fire-and-forget pause (the per-user slot registry evicts with it). */
export const pauseSignal = defineSignal<[PauseInput]>(MESSAGE_NAMES.pause);
/** Brings a paused conversation back; resolves once RUNNING (without the session key). */
export const resumeUpdate = defineUpdate<AgentLoopInfo, []>(MESSAGE_NAMES.resume);
/** Current state; never holds the session API key or any other secret. */
export const statusQuery = defineQuery<AgentLoopInfo>(MESSAGE_NAMES.status);
