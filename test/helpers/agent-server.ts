// Reading a V1 conversation from the current agent server itself, for the tests that run it: its events, user
// messages and agent replies, polled until the agent has answered.
import assert from 'node:assert/strict';
import { Agent, type Dispatcher } from 'undici';
import { AgentServerClient, messageOf, type AgentEvent } from '../../src/nested/agent-server';
import type { AgentLoopInfo } from '../../src/shared/schemas';

/** The agent server behind a conversation's status (its url and key), and the server's ID of the conversation. */
export function serverOf(info: AgentLoopInfo): { c: AgentServerClient; id: string } {
  assert.ok(info.url && info.sessionApiKey && info.nestedConversationId, 'a V1 status carries url, key and its ID');
  return { c: AgentServerClient.forConversation(info, { timeoutMs: 30_000 }), id: info.nestedConversationId };
}

/** Every event, oldest first. */
export async function allEvents(info: AgentLoopInfo): Promise<AgentEvent[]> {
  const { c, id } = serverOf(info);
  return c.allEvents(id);
}

export const said = (events: AgentEvent[], source: 'user' | 'agent') =>
  events.filter((e) => e.kind === 'MessageEvent' && e.source === source).map((e) => messageOf(e).text);

/** Poll the events until `pred` holds (the agent answers asynchronously), up to `ms`. */
export async function eventsUntil(
  info: AgentLoopInfo,
  pred: (events: AgentEvent[]) => boolean,
  ms = 90_000,
): Promise<AgentEvent[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const events = await allEvents(info);
    if (pred(events)) return events;
    if (Date.now() > deadline)
      assert.fail(
        `events never matched; last ones: ${JSON.stringify(events.slice(-5).map((e) => [e.kind, e.source, messageOf(e).text.slice(0, 80)]))}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * A dispatcher that loses the answer of the first `n` message posts (`POST …/events`) after the server took them: the
 * request reaches the server, the caller sees a connection reset. What a worker sees when the connection drops after
 * the server wrote the message.
 */
export class LosesPostAnswers extends Agent {
  lost = 0;
  constructor(private readonly n = 1) {
    super();
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (opts.method !== 'POST' || !/\/events$/.test(String(opts.path)) || this.lost >= this.n)
      return super.dispatch(opts, handler);
    this.lost++;
    const legacy = handler as {
      onConnect?: (abort: (err?: Error) => void) => void;
      onError?: (err: Error) => void;
    };
    const lose = () => legacy.onError?.(Object.assign(new Error('answer lost (test)'), { code: 'ECONNRESET' }));
    return super.dispatch(opts, {
      onConnect: (abort: (err?: Error) => void) => legacy.onConnect?.(abort),
      onHeaders: () => true,
      onData: () => true,
      onComplete: lose,
      onError: (err: Error) => legacy.onError?.(err),
    } as Dispatcher.DispatchHandler);
  }
}
