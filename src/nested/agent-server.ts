// The current OpenHands agent server's HTTP ("V1", openhands-agent-server; routes and behaviour as run here in
// ../shared/reference/openhands-agent-server-v1.md §2): conversations, their events, messages, run, pause, secrets.
// Each status maps onto one typed NestorError (errors.ts); what V1 answers differently from V0 is handled here.
import { createHash } from 'node:crypto';
import { FormData } from 'undici';
import { ErrorType, NestorError } from '../errors';
import { errorForStatus } from './errors';
import { NestedHttp } from './http';

/** `ConversationExecutionStatus`: what the agent is doing. There is no "ready" state: an answered create is ready. */
export type ExecutionStatus =
  'idle' | 'running' | 'paused' | 'waiting_for_confirmation' | 'finished' | 'error' | 'stuck' | 'deleting';

/** What nestor reads of a `ConversationInfo` (the rest passes through). */
export interface AgentConversation {
  id: string;
  execution_status: ExecutionStatus | string;
  last_user_message_id?: string | null;
  [k: string]: unknown;
}

/** One event as the server stores it; a message's text is in `llm_message.content`. */
export interface AgentEvent {
  id: string;
  kind?: string;
  source?: string;
  timestamp?: string;
  llm_message?: {
    role?: string;
    content?: Array<{ type?: string; text?: string; image_urls?: string[] }>;
  };
  [k: string]: unknown;
}

export interface EventFilter {
  kind?: string;
  source?: 'user' | 'agent' | 'environment';
  sortOrder?: 'TIMESTAMP' | 'TIMESTAMP_DESC';
}

/**
 * nestor's conversation ID as the agent server's conversation UUID (which it requires): a name-based UUID (RFC 9562
 * version 5, SHA-1) in nestor's own namespace, so every worker, every retry and every resume derives the same one.
 */
export function agentConversationId(conversationId: string): string {
  const h = createHash('sha1').update(NESTOR_UUID_NAMESPACE).update(conversationId, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
/** The bytes of nestor's UUID namespace (a random UUID chosen once: 3f0b6c1e-8a57-4d2e-9c1b-5e7a2d9f4b60). */
const NESTOR_UUID_NAMESPACE = Buffer.from('3f0b6c1e8a574d2e9c1b5e7a2d9f4b60', 'hex');

/** The text of a message event (its text parts joined), and the image URLs it carries. */
export function messageOf(e: AgentEvent): { text: string; imageUrls: string[] } {
  const parts = e.llm_message?.content ?? [];
  return {
    text: parts
      .filter((p) => p.type === 'text')
      .map((p) => p.text ?? '')
      .join(''),
    imageUrls: parts.flatMap((p) => (p.type === 'image' ? (p.image_urls ?? []) : [])),
  };
}

/** Whether an event is a user message with exactly this text and these images. */
export function isUserMessageV1(e: AgentEvent, text: string, imageUrls: string[] = []): boolean {
  if (e.source !== 'user' || (e.kind !== undefined && e.kind !== 'MessageEvent')) return false;
  const m = messageOf(e);
  return m.text === text && m.imageUrls.length === imageUrls.length && m.imageUrls.every((u, i) => u === imageUrls[i]);
}

/** The `content` of a user message: its text, then its images. */
export function messageContent(text: string, imageUrls: string[] = []): Array<Record<string, unknown>> {
  return [{ type: 'text', text }, ...(imageUrls.length ? [{ type: 'image', image_urls: imageUrls }] : [])];
}

/** A page of at most 100 is the most the server gives (above that it answers 422). */
const PAGE = 100;

/** What was said and how the agent's work went, one line each (`nestor events` of a V1 conversation). */
export function describeEvent(e: AgentEvent): string | undefined {
  if (e.kind === 'MessageEvent') return `${e.source}: ${messageOf(e).text}`;
  if (e.kind === 'ConversationStateUpdateEvent' && e.key === 'execution_status')
    return `agent state: ${String(e.value)}`;
  if (e.kind === 'ConversationErrorEvent') return `agent error: ${String(e.detail ?? e.code ?? '')}`;
  return undefined;
}

/** A warm-pool server's deferred-init state (GET /api/init): `dormant` until POST /api/init gives it its keys. */
export type InitState = 'dormant' | 'initializing' | 'ready';

export class AgentServerClient extends NestedHttp {
  private conv(id: string, rest = ''): string {
    return `/api/conversations/${encodeURIComponent(id)}${rest}`;
  }

  /** GET /api/init (no key: the server says nothing secret there). */
  async initState(): Promise<{ state: InitState; error?: string | null }> {
    const res = await this.raw('GET', '/api/init', undefined, false);
    const text = await res.body.text();
    if (res.statusCode !== 200) throw errorForStatus('GET', '/api/init', res.statusCode, text);
    return JSON.parse(text) as { state: InitState; error?: string | null };
  }

  /**
   * POST /api/init: a dormant server (started with OH_DEFERRED_INIT) takes the conversation's session key and secret
   * key; its own init key (the dormant OH_SECRET_KEY) authorizes it, and the init replaces both. 400 means it is no
   * longer dormant (a racing init): the caller reads the state again.
   */
  async initialize(
    initKey: string,
    keys: { sessionApiKey: string; secretKey: string },
  ): Promise<'done' | 'not-dormant'> {
    const res = await this.raw(
      'POST',
      '/api/init',
      { session_api_keys: [keys.sessionApiKey], secret_key: keys.secretKey },
      { 'x-init-api-key': initKey },
    );
    const text = await res.body.text();
    if (res.statusCode === 200) return 'done';
    if (res.statusCode === 400) return 'not-dormant';
    throw errorForStatus('POST', '/api/init', res.statusCode, text);
  }

  /**
   * POST /api/conversations. 201: created; 200: it existed (a retried create, a resume): nothing is created again and
   * the first message is not sent twice. 422 (the server's reason, never the input's values) is NestedBadRequest.
   */
  async createConversation(
    body: Record<string, unknown>,
  ): Promise<{ created: boolean; conversation: AgentConversation }> {
    const r = await this.exchange('POST', '/api/conversations', body);
    return { created: r.status === 201, conversation: r.data as AgentConversation };
  }

  /** GET /api/conversations/{id}; undefined when the server does not know it (404). */
  async getConversation(id: string): Promise<AgentConversation | undefined> {
    try {
      return (await this.json('GET', this.conv(id))) as AgentConversation;
    } catch (err) {
      if (err instanceof NestorError && err.type === ErrorType.NestedNotFound) return undefined;
      throw err;
    }
  }

  /** How many events match (GET …/events/count). */
  async countEvents(id: string, f: EventFilter = {}): Promise<number> {
    return Number(await this.json('GET', this.conv(id, `/events/count${query(f)}`)));
  }

  /** One page of events (GET …/events/search); `pageId` is the first event of the page (the server's cursor). */
  async searchEvents(
    id: string,
    f: EventFilter & { limit?: number; pageId?: string } = {},
  ): Promise<{ items: AgentEvent[]; next_page_id?: string | null }> {
    return (await this.json('GET', this.conv(id, `/events/search${query(f)}`))) as {
      items: AgentEvent[];
      next_page_id?: string | null;
    };
  }

  /** Every event of the filter, oldest first, following the server's pages. */
  async allEvents(id: string, f: Omit<EventFilter, 'sortOrder'> = {}): Promise<AgentEvent[]> {
    const out: AgentEvent[] = [];
    let pageId: string | undefined;
    for (;;) {
      const page = await this.searchEvents(id, { ...f, sortOrder: 'TIMESTAMP', limit: PAGE, pageId });
      out.push(...page.items);
      if (!page.next_page_id || page.items.length === 0) return out;
      pageId = page.next_page_id;
    }
  }

  /** The newest event, if any. */
  async newestEvent(id: string, f: Omit<EventFilter, 'sortOrder'> = {}): Promise<AgentEvent | undefined> {
    return (await this.searchEvents(id, { ...f, sortOrder: 'TIMESTAMP_DESC', limit: 1 })).items[0];
  }

  /**
   * The first event matching `match` among those of the filter after the first `skip` (oldest first), and how many
   * such events there are up to the last page read.
   */
  async findAfterSkipping(
    id: string,
    f: EventFilter,
    skip: number,
    match: (e: AgentEvent) => boolean,
  ): Promise<{ found?: AgentEvent; seen: number }> {
    let seen = 0;
    let pageId: string | undefined;
    for (;;) {
      const page = await this.searchEvents(id, { ...f, sortOrder: 'TIMESTAMP', limit: PAGE, pageId });
      for (const e of page.items) {
        seen++;
        if (seen > skip && match(e)) return { found: e, seen };
      }
      if (!page.next_page_id || page.items.length === 0) return { seen };
      pageId = page.next_page_id;
    }
  }

  /**
   * POST …/events with a user message that starts a run. Never repeated here: the server keeps no ID of ours with a
   * message, so a post whose answer was lost may have landed (the caller looks before posting again). 429 means the
   * message was saved but the server's run capacity is full: `saved-not-running`, for the caller to `/run` later,
   * never to post again.
   */
  async postMessage(id: string, text: string, imageUrls: string[] = []): Promise<'running' | 'saved-not-running'> {
    try {
      await this.exchange(
        'POST',
        this.conv(id, '/events'),
        { role: 'user', content: messageContent(text, imageUrls), run: true },
        false,
      );
      return 'running';
    } catch (err) {
      if (err instanceof NestorError && err.details.status === 429) return 'saved-not-running';
      throw err;
    }
  }

  /**
   * POST …/run: start a run on what the conversation holds (a no-op when nothing is new). 409 (already running) is
   * success; 429 (run capacity full) is NestedUnavailable, to try later.
   */
  async run(id: string): Promise<'started' | 'already-running'> {
    try {
      await this.json('POST', this.conv(id, '/run'));
      return 'started';
    } catch (err) {
      if (err instanceof NestorError && err.details.status === 409) return 'already-running';
      throw err;
    }
  }

  /** POST …/pause: the agent stops after its current LLM call. */
  async pause(id: string): Promise<void> {
    await this.json('POST', this.conv(id, '/pause'));
  }

  /** POST …/secrets: set (or replace) secrets of a conversation; values are never returned by the server. */
  async updateSecrets(
    id: string,
    secrets: Record<string, string | { kind: string; value: string; description?: string }>,
  ): Promise<void> {
    await this.json('POST', this.conv(id, '/secrets'), { secrets });
  }

  /**
   * POST /api/bash/execute_bash_command: run a command in the sandbox (as the server's user, not in a conversation: no
   * secrets), waiting up to `timeoutS`. Its text is stored with the server's bash events: never put a secret in it.
   */
  async bash(command: string, o: { cwd?: string; timeoutS: number }): Promise<{ exitCode: number; output: string }> {
    const r = (await this.json(
      'POST',
      '/api/bash/execute_bash_command',
      { command, cwd: o.cwd ?? null, timeout: o.timeoutS },
      false,
      (o.timeoutS + 30) * 1000,
    )) as { exit_code?: number | null; stdout?: string | null; stderr?: string | null };
    return { exitCode: r.exit_code ?? -1, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  }

  /** POST /api/file/upload: write a file in the sandbox (multipart, so its content is in no URL or command). */
  async upload(path: string, content: string): Promise<void> {
    const form = new FormData();
    form.set('file', new Blob([content]), 'file');
    await this.exchange('POST', `/api/file/upload?path=${encodeURIComponent(path)}`, form, false);
  }

  /** DELETE /api/conversations/{id}: false when it was gone already (404). */
  async deleteConversation(id: string): Promise<boolean> {
    try {
      await this.json('DELETE', this.conv(id));
      return true;
    } catch (err) {
      if (err instanceof NestorError && err.type === ErrorType.NestedNotFound) return false;
      throw err;
    }
  }
}

function query(f: EventFilter & { limit?: number; pageId?: string }): string {
  const p = new URLSearchParams();
  if (f.kind) p.set('kind', f.kind);
  if (f.source) p.set('source', f.source);
  if (f.sortOrder) p.set('sort_order', f.sortOrder);
  if (f.limit !== undefined) p.set('limit', String(f.limit));
  if (f.pageId) p.set('page_id', f.pageId);
  return p.size ? `?${p}` : '';
}
