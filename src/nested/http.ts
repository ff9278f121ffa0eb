// The HTTP both nested protocols share: the session-key header, timeouts, a cancellation signal, retries of what may
// be repeated, and one typed NestorError per status (errors.ts).
import { FormData, request, type Dispatcher } from 'undici';
import { ErrorType, NestorError } from '../errors';
import { DEFAULT_NESTED_TIMEOUT_MS } from '../defaults';
import { errorForStatus } from './errors';

export interface NestedClientOptions {
  /** Base URL of the nested server, e.g. http://127.0.0.1:32768 */
  baseUrl: string;
  sessionApiKey: string;
  /** undici dispatcher; tests pass a MockAgent. @default undici's global dispatcher */
  dispatcher?: Dispatcher;
  /** @default DEFAULT_NESTED_TIMEOUT_MS */
  timeoutMs?: number;
  /** @default DEFAULT_POST_EVENT_TIMEOUT_MS, and never below timeoutMs */
  postEventTimeoutMs?: number;
  /** Aborts in-flight requests (an activity's cancellation signal). */
  signal?: AbortSignal;
  /**
   * Tries again, after 100 ms then 400 ms, for a request that may safely be repeated (every one but posting an event)
   * when it failed in a way that may pass (5xx, 429, timeout, reset). @default 2
   */
  retries?: number;
}

export type Method = 'GET' | 'POST' | 'DELETE' | 'PATCH';

export class NestedHttp {
  protected readonly timeoutMs: number;
  constructor(protected readonly opts: NestedClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_NESTED_TIMEOUT_MS;
  }

  /**
   * The client (of the class it is called on: either protocol's) of the server behind a conversation's status: its
   * `url` (…/api/conversations/<id>) and session key.
   */
  static forConversation<T extends NestedHttp>(
    this: new (o: NestedClientOptions) => T,
    info: { url?: string; sessionApiKey?: string },
    o: Omit<NestedClientOptions, 'baseUrl' | 'sessionApiKey'> = {},
  ): T {
    if (!info.url || !info.sessionApiKey)
      throw new Error(
        'forConversation: the conversation has no url or session key (is it RUNNING, and read with its key?)',
      );
    return new this({
      ...o,
      baseUrl: info.url.replace(/\/api\/conversations\/.*$/, ''),
      sessionApiKey: info.sessionApiKey,
    });
  }

  /** GET /alive: true on 200, false on anything else (not up yet). */
  async alive(): Promise<boolean> {
    try {
      const res = await this.raw('GET', '/alive', undefined, false);
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** `auth`: the session key (true), none (false), or other credential headers (the agent server's init key). */
  protected async raw(
    method: Method,
    path: string,
    body: unknown,
    auth: boolean | Record<string, string> = true,
    timeoutMs = this.timeoutMs,
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth === true) headers['x-session-api-key'] = this.opts.sessionApiKey;
    else if (auth) Object.assign(headers, auth);
    // A form (a file upload) is sent as multipart, undici setting its content type; anything else as JSON.
    const form = body instanceof FormData;
    if (body !== undefined && !form) headers['content-type'] = 'application/json';
    const url = new URL(path, this.opts.baseUrl);
    try {
      return await request(url, {
        method,
        headers,
        body: body === undefined ? undefined : form ? body : JSON.stringify(body),
        dispatcher: this.opts.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: this.opts.signal,
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      throw new NestorError(ErrorType.NestedUnavailable, `${method} ${path}: ${code}`, true, { method, path, code });
    }
  }

  protected async json(
    method: Method,
    path: string,
    body?: unknown,
    repeatable = true,
    timeoutMs = this.timeoutMs,
  ): Promise<unknown> {
    return (await this.exchange(method, path, body, repeatable, timeoutMs)).data;
  }

  /** A 2xx answer's status and parsed body; anything else is the status's typed NestorError. */
  protected async exchange(
    method: Method,
    path: string,
    body?: unknown,
    repeatable = true,
    timeoutMs = this.timeoutMs,
  ): Promise<{ status: number; data: unknown }> {
    const retries = repeatable ? (this.opts.retries ?? 2) : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(method, path, body, timeoutMs);
      } catch (err) {
        const transient = err instanceof NestorError && err.type === ErrorType.NestedUnavailable;
        if (!transient || attempt >= retries || this.opts.signal?.aborted) throw err;
        await new Promise((r) => setTimeout(r, 100 * 4 ** attempt));
      }
    }
  }

  private async once(
    method: Method,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ status: number; data: unknown }> {
    const res = await this.raw(method, path, body, true, timeoutMs);
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      return { status: res.statusCode, data: text ? JSON.parse(text) : null };
    }
    throw errorForStatus(method, path, res.statusCode, text);
  }
}
