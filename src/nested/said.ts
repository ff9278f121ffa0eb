// What was said in a conversation, read from its sandbox on either protocol: the one shape a caller reads an agent's
// answer in, whatever server runs the conversation.
import type { AgentLoopInfo } from '../shared/schemas';
import { AgentServerClient, messageOf } from './agent-server';
import { NestedClient } from './client';

/** One message of a conversation: who said it and what. */
export interface SaidMessage {
  source: 'user' | 'agent';
  text: string;
  /** When the server recorded it (ISO 8601), when it says. */
  timestamp?: string;
}

/**
 * The user's and the agent's messages so far, oldest first. `info` is the conversation as `connection()` returns it:
 * RUNNING, with its address and session key (the sandbox answers only on its host's 127.0.0.1).
 */
export async function messagesSaid(info: AgentLoopInfo): Promise<SaidMessage[]> {
  const sourceOf = (s: unknown): SaidMessage['source'] => (s === 'user' ? 'user' : 'agent');
  if (info.protocol === 'v1') {
    const events = await AgentServerClient.forConversation(info).allEvents(info.nestedConversationId!);
    return events
      .filter((e) => e.kind === 'MessageEvent')
      .map((e) => ({ source: sourceOf(e.source), text: messageOf(e).text, timestamp: e.timestamp }));
  }
  const events = await NestedClient.forConversation(info).allEvents(info.conversationId);
  return events
    .filter((e) => e.action === 'message')
    .map((e) => ({
      source: sourceOf(e.source),
      text: String(e.args?.content ?? e.message ?? ''),
      timestamp: e.timestamp,
    }));
}
