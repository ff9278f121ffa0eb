// Everything that speaks the nested agent server's HTTP (contract reference §4–§7).
// Each status code maps onto one typed NestorError, so activities never inspect HTTP themselves.
import { ErrorType, NestorError } from '../errors';
import { SESSION_KEY_REJECTED } from './errors';
import { DEFAULT_NESTED_TIMEOUT_MS, DEFAULT_POST_EVENT_TIMEOUT_MS } from '../defaults';
import { NestedHttp, type NestedClientOptions } from './http';

import type { ConversationInfo, ConversationResponse, EventPage, InitSessionRequest, NestedEvent } from './wire';

export { DEFAULT_NESTED_TIMEOUT_MS, DEFAULT_POST_EVENT_TIMEOUT_MS, NestedHttp, type NestedClientOptions };

export type { ConversationInfo, ConversationResponse, EventPage, InitSessionRequest, NestedEvent };
export { isUserMessage } from './wire';

/** The V0 nested server's routes (openhands-ai ≤ 1.6.0, and the emulator). */
export class NestedClient extends NestedHttp {
  storeSettings(settings: Record<string, unknown>): Promise<unknown> {
    return this.json('POST', '/api/settings', settings);
  }

  getSettings(): Promise<Record<string, unknown>> {
    return this.json('GET', '/api/settings') as Promise<Record<string, unknown>>;
  }

  /**
   * POST /api/add-git-providers. The real server checks each token against its provider's API and answers 401
   * `{"error":"Invalid token. … github token."}`: that 401 is about a git token, not our session key, so it becomes
   * GitProviderRejected naming the providers and carrying the server's reason.
   */
  async addGitProviders(
    providerTokens: Record<string, { token: string; user_id: string | null; host: string | null }>,
  ): Promise<unknown> {
    try {
      return await this.json('POST', '/api/add-git-providers', { provider_tokens: providerTokens });
    } catch (err) {
      if (!(err instanceof NestorError) || err.details.status !== 401 || err.details.body === SESSION_KEY_REJECTED)
        throw err;
      const providers = Object.keys(providerTokens);
      const reason = String(err.details.body ?? '');
      throw new NestorError(
        ErrorType.GitProviderRejected,
        `the nested server rejected the ${providers.join(', ')} token: ${reason}`,
        false,
        { providers, reason, status: 401 },
      );
    }
  }

  /**
   * POST /api/secrets, replacing a secret that already exists: the server keeps the first value and answers 400
   * "already exists", and its PUT changes only name and description, so a changed value needs DELETE then POST.
   */
  async putSecret(secret: {
    name: string;
    value: string;
    description?: string | null;
  }): Promise<'created' | 'replaced'> {
    const body = { name: secret.name, description: secret.description ?? null, value: secret.value };
    try {
      await this.json('POST', '/api/secrets', body);
      return 'created';
    } catch (err) {
      if (!(
        err instanceof NestorError &&
        err.details.status === 400 &&
        /already exists/i.test(String(err.details.body ?? ''))
      ))
        throw err;
    }
    await this.json('DELETE', `/api/secrets/${encodeURIComponent(secret.name)}`);
    await this.json('POST', '/api/secrets', body);
    return 'replaced';
  }

  /** GET /api/secrets: the custom secrets' names and descriptions (never their values). */
  async listSecrets(): Promise<Array<{ name: string; description: string | null }>> {
    const r = (await this.json('GET', '/api/secrets')) as {
      custom_secrets?: Array<{ name: string; description?: string | null }>;
    } | null;
    return (r?.custom_secrets ?? []).map((s) => ({ name: s.name, description: s.description ?? null }));
  }

  /**
   * POST …/exp-config (config: string → string). Removed from OpenHands in 1.5.0 (404 `{"detail":"Not Found"}`): that
   * is 'unsupported', for the caller to warn about, never a failure to retry.
   */
  async setExperimentConfig(conversationId: string, config: Record<string, string>): Promise<'stored' | 'unsupported'> {
    try {
      await this.json('POST', `/api/conversations/${encodeURIComponent(conversationId)}/exp-config`, { config });
      return 'stored';
    } catch (err) {
      if (err instanceof NestorError && err.details.status === 404 && /not found/i.test(String(err.details.body ?? '')))
        return 'unsupported';
      throw err;
    }
  }

  createConversation(body: InitSessionRequest): Promise<ConversationResponse> {
    return this.json('POST', '/api/conversations', body) as Promise<ConversationResponse>;
  }

  getConversation(conversationId: string): Promise<ConversationInfo | null> {
    return this.json(
      'GET',
      `/api/conversations/${encodeURIComponent(conversationId)}`,
    ) as Promise<ConversationInfo | null>;
  }

  getEvents(
    conversationId: string,
    q: { startId?: number; endId?: number; reverse?: boolean; limit?: number } = {},
  ): Promise<EventPage> {
    const params = new URLSearchParams();
    if (q.startId !== undefined) params.set('start_id', String(q.startId));
    if (q.endId !== undefined) params.set('end_id', String(q.endId));
    if (q.reverse) params.set('reverse', 'true');
    if (q.limit !== undefined) params.set('limit', String(q.limit));
    const qs = params.size ? `?${params}` : '';
    return this.json(
      'GET',
      `/api/conversations/${encodeURIComponent(conversationId)}/events${qs}`,
    ) as Promise<EventPage>;
  }

  /** Every event, following `has_more` pages of at most 100. */
  allEvents(conversationId: string): Promise<NestedEvent[]> {
    return this.eventsAfter(conversationId, -1);
  }

  /** Every event with an ID above `afterId`, following `has_more` pages of at most 100. */
  async eventsAfter(conversationId: string, afterId: number): Promise<NestedEvent[]> {
    const out: NestedEvent[] = [];
    let startId = afterId + 1;
    for (;;) {
      const page = await this.getEvents(conversationId, { startId, limit: 100 });
      out.push(...page.events);
      if (!page.has_more || page.events.length === 0) return out;
      startId = page.events[page.events.length - 1].id + 1;
    }
  }

  /**
   * The first event with an ID above `afterId` that matches, paging only as far as it, and the newest event ID read
   * on the way (`afterId` when none): a chatty agent's later events are never fetched.
   */
  async findAfter(
    conversationId: string,
    afterId: number,
    match: (e: NestedEvent) => boolean,
  ): Promise<{ found?: NestedEvent; newestId: number }> {
    let newestId = afterId;
    for (;;) {
      const page = await this.getEvents(conversationId, { startId: newestId + 1, limit: 100 });
      const found = page.events.find(match);
      newestId = page.events.at(-1)?.id ?? newestId;
      if (found || !page.has_more || page.events.length === 0) return { found, newestId };
    }
  }

  /**
   * Not repeated here: a post whose answer was lost may have taken effect (sendEvent looks before posting again). To a
   * stopped conversation the real server answers 500 with a plain-text body.
   */
  postEvent(conversationId: string, event: Record<string, unknown>): Promise<{ success: boolean }> {
    const timeoutMs = Math.max(this.timeoutMs, this.opts.postEventTimeoutMs ?? DEFAULT_POST_EVENT_TIMEOUT_MS);
    return this.json(
      'POST',
      `/api/conversations/${encodeURIComponent(conversationId)}/events`,
      event,
      false,
      timeoutMs,
    ) as Promise<{ success: boolean }>;
  }

  /** ID of the newest event (-1 for none). */
  async newestEventId(conversationId: string): Promise<number> {
    return (await this.getEvents(conversationId, { reverse: true, limit: 1 })).events[0]?.id ?? -1;
  }

  stopConversation(conversationId: string): Promise<ConversationResponse> {
    return this.json(
      'POST',
      `/api/conversations/${encodeURIComponent(conversationId)}/stop`,
    ) as Promise<ConversationResponse>;
  }
}
