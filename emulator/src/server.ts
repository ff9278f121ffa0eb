// An emulator of the OpenHands nested agent server's HTTP contract (contract reference §4–§7): the same routes,
// status codes, bodies and auth, an echo agent, a file store that survives restarts, and fault knobs.
// Node built-ins only, so it bundles into one file for the image.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { v1Routes } from './v1';

export type RouteName =
  | 'alive'
  | 'health'
  | 'init'
  | 'settings'
  | 'git_providers'
  | 'secrets'
  | 'exp_config'
  | 'create_conversation'
  | 'get_conversation'
  | 'get_events'
  | 'post_events'
  | 'stop'
  | 'run'
  | 'pause'
  | 'delete_conversation';

export interface Fault {
  /** Probability in [0,1] of answering 500 instead of handling. */
  errorRate: number;
  /** Always answer this status instead of handling. */
  status?: number;
  /** Wait this long before answering (and before taking effect). */
  stallMs: number;
  /** Probability in [0,1] that a request stalls (STALL_MS). @default 1 */
  stallRate?: number;
  /** Probability of closing the connection instead of handling (a reset before any effect). */
  resetRate?: number;
  /** Probability of handling the request, then closing the connection instead of answering (the reply is lost). */
  dropReplyRate?: number;
  /** Wait this long after handling the request before answering: it took effect, its answer is late. */
  replyStallMs?: number;
}

export interface EmulatorConfig {
  port: number;
  host: string;
  sessionApiKey?: string;
  /**
   * V1 only: boot dormant, as the agent server with OH_DEFERRED_INIT: conversation routes answer 503 until POST
   * /api/init (authorized by `initKey`, the dormant OH_SECRET_KEY) delivers the session key. (env OH_DEFERRED_INIT)
   */
  deferredInit?: boolean;
  initKey?: string;
  allowSetConversationId: boolean;
  fileStorePath: string;
  /** Delay before the server starts listening. */
  startupDelayMs: number;
  /** How long a new or resumed conversation stays STARTING before RUNNING. */
  conversationStartDelayMs: number;
  /** How long the echo agent "thinks" before replying. */
  agentReplyDelayMs: number;
  /** Events (command runs and their outputs) the agent adds before each reply: a chatty agent. @default 0 */
  agentChatterEvents: number;
  faults: Partial<Record<RouteName, Fault>>;
  /**
   * Git tokens `add-git-providers` accepts. The real server checks each against its provider's API, which fails
   * offline (401): every other token is rejected the same way. (env VALID_GIT_TOKENS, comma-separated)
   */
  validGitTokens: string[];
  /** False: no exp-config route (404), as OpenHands 1.5.0+. (env EXP_CONFIG_ROUTE=0) @default true */
  expConfigRoute: boolean;
  /**
   * Which contract it speaks: `v0` the nested server of openhands-ai ≤ 1.6.0, `v1` the current agent server (v1.ts).
   * (env EMULATOR_PROTOCOL, set by the image tag) @default 'v0'
   */
  protocol: 'v0' | 'v1';
}

const ROUTES: RouteName[] = [
  'alive',
  'health',
  'settings',
  'git_providers',
  'secrets',
  'exp_config',
  'create_conversation',
  'get_conversation',
  'get_events',
  'post_events',
  'stop',
  'run',
  'pause',
  'delete_conversation',
];

/**
 * Read the configuration from the environment, as the container gets it. Fault knobs:
 * FAULT_<ROUTE>_{ERROR_RATE,STATUS,STALL_MS,STALL_RATE,RESET_RATE,DROP_REPLY_RATE,REPLY_STALL_MS}, and FAULT_API_<KNOB> for every
 * /api route (a route's own knobs take precedence). AGENT_CHATTER_EVENTS: events the agent adds before each reply.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): EmulatorConfig {
  const num = (name: string, dflt: number) => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got '${v}'`);
    return n;
  };
  const faults: Partial<Record<RouteName, Fault>> = {};
  const rate = (name: string, dflt: number) => {
    const v = num(name, dflt);
    if (v > 1) throw new Error(`${name} must be between 0 and 1`);
    return v;
  };
  const knobs = (p: string, base?: Fault): Fault => ({
    errorRate: rate(`${p}ERROR_RATE`, base?.errorRate ?? 0),
    status: env[`${p}STATUS`] ? num(`${p}STATUS`, 0) : base?.status,
    stallMs: num(`${p}STALL_MS`, base?.stallMs ?? 0),
    stallRate: rate(`${p}STALL_RATE`, base?.stallRate ?? 1),
    resetRate: rate(`${p}RESET_RATE`, base?.resetRate ?? 0),
    dropReplyRate: rate(`${p}DROP_REPLY_RATE`, base?.dropReplyRate ?? 0),
    replyStallMs: num(`${p}REPLY_STALL_MS`, base?.replyStallMs ?? 0),
  });
  const api = knobs('FAULT_API_');
  for (const r of ROUTES) {
    const f = knobs(`FAULT_${r.toUpperCase()}_`, r === 'alive' || r === 'health' ? undefined : api);
    if (f.errorRate || f.status || f.stallMs || f.resetRate || f.dropReplyRate || f.replyStallMs) faults[r] = f;
  }
  return {
    port: num('port', num('PORT', 3000)),
    host: env.HOST ?? '0.0.0.0',
    // The V0 server's name, or the agent server's (nestor sets that one for a V1 sandbox).
    sessionApiKey: env.SESSION_API_KEY || env.OH_SESSION_API_KEYS_0 || undefined,
    deferredInit: env.OH_DEFERRED_INIT === 'true',
    initKey: env.OH_SECRET_KEY || undefined,
    allowSetConversationId: env.ALLOW_SET_CONVERSATION_ID === '1',
    fileStorePath: env.FILE_STORE_PATH ?? '/data/file_store',
    startupDelayMs: num('STARTUP_DELAY_MS', 0),
    conversationStartDelayMs: num('CONVERSATION_START_DELAY_MS', 200),
    agentReplyDelayMs: num('AGENT_REPLY_DELAY_MS', 10),
    agentChatterEvents: num('AGENT_CHATTER_EVENTS', 0),
    validGitTokens: (env.VALID_GIT_TOKENS ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    expConfigRoute: env.EXP_CONFIG_ROUTE !== '0',
    protocol: env.EMULATOR_PROTOCOL === 'v1' ? 'v1' : 'v0',
    faults,
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

const INIT_SESSION_FIELDS = new Set([
  'conversation_id',
  'initial_user_msg',
  'image_urls',
  'replay_json',
  'mcp_config',
  'repository',
  'selected_branch',
  'git_provider',
  'conversation_instructions',
  'suggested_task',
  'create_microagent',
]);
const SECRET_SETTINGS = ['llm_api_key', 'search_api_key', 'sandbox_api_key'];

/** §7.1: ids longer than 100 chars or with NUL, "..", "/", "\" or control characters are rejected with 400. */
export function validConversationId(id: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  return id.length > 0 && id.length <= 100 && !id.includes('..') && !/[/\\\u0000-\u001f\u007f]/.test(id);
}

interface Conversation {
  id: string;
  status: 'STARTING' | 'RUNNING' | 'STOPPED';
  agentState: string;
}

/** Persistent state: settings, secrets, providers and per-conversation metadata and events, as JSON files. */
class FileStore {
  constructor(private readonly root: string) {
    mkdirSync(join(root, 'sessions'), { recursive: true });
  }
  private write(path: string, value: unknown) {
    const full = join(this.root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(`${full}.tmp`, JSON.stringify(value));
    renameSync(`${full}.tmp`, full);
  }
  private read<T>(path: string): T | undefined {
    const full = join(this.root, path);
    return existsSync(full) ? (JSON.parse(readFileSync(full, 'utf8')) as T) : undefined;
  }
  get settings() {
    return this.read<Record<string, unknown>>('settings.json');
  }
  set settings(v) {
    this.write('settings.json', v);
  }
  get secrets() {
    return (
      this.read<{
        custom_secrets: Record<string, { secret: string; description: string | null }>;
        provider_tokens: Record<string, unknown>;
      }>('secrets.json') ?? { custom_secrets: {}, provider_tokens: {} }
    );
  }
  set secrets(v) {
    this.write('secrets.json', v);
  }
  metadata(id: string) {
    return this.read<Record<string, unknown>>(`sessions/${id}/metadata.json`);
  }
  setMetadata(id: string, v: Record<string, unknown>) {
    this.write(`sessions/${id}/metadata.json`, v);
  }
  expConfigExists(id: string) {
    return existsSync(join(this.root, 'sessions', id, 'exp_config.json'));
  }
  setExpConfig(id: string, v: unknown) {
    this.write(`sessions/${id}/exp_config.json`, v);
  }
  /** Event IDs stored for a conversation, ascending. */
  eventIds(id: string): number[] {
    const dir = join(this.root, 'sessions', id, 'events');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => Number(f.slice(0, -5)))
      .sort((a, b) => a - b);
  }
  event(id: string, n: number): Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.root, 'sessions', id, 'events', `${n}.json`), 'utf8'));
  }
  events(id: string): Record<string, unknown>[] {
    return this.eventIds(id).map((n) => this.event(id, n));
  }
  appendEvent(id: string, event: Record<string, unknown>, nextId: number) {
    this.write(`sessions/${id}/events/${nextId}.json`, { ...event, id: nextId });
    return nextId;
  }
}

export interface Emulator {
  server: Server;
  config: EmulatorConfig;
  listen(): Promise<number>;
  close(): Promise<void>;
}

export function createEmulator(config: EmulatorConfig, log: (msg: string) => void = () => {}): Emulator {
  const store = new FileStore(config.fileStorePath);
  /** Conversations with a live agent loop in this process; the file store outlives them. */
  const loops = new Map<string, Conversation>();
  const eventCounts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const digestOf = (key: string) => createHash('sha256').update(key).digest();
  // Replaced by a deferred init's key (POST /api/init).
  let keyDigest = config.sessionApiKey ? digestOf(config.sessionApiKey) : undefined;
  let initState: 'dormant' | 'ready' = config.protocol === 'v1' && config.deferredInit ? 'dormant' : 'ready';

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const nextEventId = (id: string) => {
    let n = eventCounts.get(id);
    if (n === undefined) n = store.eventIds(id).length;
    eventCounts.set(id, n + 1);
    return n;
  };
  const addEvent = (id: string, event: Record<string, unknown>) =>
    store.appendEvent(id, { timestamp: new Date().toISOString(), ...event }, nextEventId(id));
  const agentState = (id: string, state: string) => {
    const loop = loops.get(id);
    if (loop) loop.agentState = state;
    addEvent(id, {
      source: 'environment',
      message: '',
      observation: 'agent_state_changed',
      content: '',
      extras: { agent_state: state, reason: '' },
    });
  };
  const userMessage = (id: string, args: Record<string, unknown>) =>
    addEvent(id, {
      source: 'user',
      message: String(args.content ?? ''),
      action: 'message',
      args: { image_urls: [], file_urls: [], wait_for_response: false, security_risk: -1, ...args },
    });
  /** The echo agent: running → "echo: <content>" → awaiting_user_input. */
  const echo = (id: string, content: string) => {
    agentState(id, 'running');
    later(config.agentReplyDelayMs, () => {
      if (loops.get(id)?.status !== 'RUNNING') return;
      for (let i = 0; i < config.agentChatterEvents; i++) {
        addEvent(
          id,
          i % 2 === 0
            ? {
                source: 'agent',
                message: 'Running command: true',
                action: 'run',
                args: { command: 'true', is_input: false, thought: '' },
              }
            : {
                source: 'agent',
                message: 'Command finished',
                observation: 'run',
                content: '',
                extras: { command: 'true', metadata: { exit_code: 0 } },
              },
        );
      }
      addEvent(id, {
        source: 'agent',
        message: `echo: ${content}`,
        action: 'message',
        args: { content: `echo: ${content}`, image_urls: null, file_urls: null, wait_for_response: true },
      });
      agentState(id, 'awaiting_user_input');
    });
  };

  const checkAuth = (req: IncomingMessage, header = 'x-session-api-key', expected = keyDigest) => {
    if (!expected) return;
    const given = req.headers[header];
    // Both sides hashed to equal length, so the comparison takes the same time whatever was sent.
    if (!timingSafeEqual(digestOf(typeof given === 'string' ? given : ''), expected) || typeof given !== 'string')
      throw new HttpError(401, { detail: 'Unauthorized' });
  };

  /** Bodies read before a stall (as a real server reads the request first): a caller that gives up changes nothing. */
  const bodies = new WeakMap<IncomingMessage, Promise<string>>();
  const readBody = (req: IncomingMessage): Promise<string> => {
    let body = bodies.get(req);
    if (!body) {
      body = (async () => {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of req) {
          size += (c as Buffer).length;
          if (size > 4 * 1024 * 1024) throw new HttpError(413, { detail: 'Request body too large' });
          chunks.push(c as Buffer);
        }
        return Buffer.concat(chunks).toString('utf8');
      })();
      bodies.set(req, body);
    }
    return body;
  };
  const readJson = async (req: IncomingMessage): Promise<unknown> => {
    const text = await readBody(req);
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(422, { detail: [{ type: 'json_invalid', loc: ['body'], msg: 'JSON decode error' }] });
    }
  };
  const objectBody = (body: unknown): Record<string, unknown> => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(422, {
        detail: [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object' }],
      });
    }
    return body as Record<string, unknown>;
  };
  const stringField = (b: Record<string, unknown>, name: string, required: boolean): string | null => {
    const v = b[name];
    if (v === undefined || v === null) {
      if (required)
        throw new HttpError(422, { detail: [{ type: 'missing', loc: ['body', name], msg: 'Field required' }] });
      return null;
    }
    if (typeof v !== 'string')
      throw new HttpError(422, {
        detail: [{ type: 'string_type', loc: ['body', name], msg: 'Input should be a valid string' }],
      });
    return v;
  };
  const conversationIdParam = (raw: string) => {
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, { error: 'Invalid conversation ID' });
    }
    if (!validConversationId(id)) throw new HttpError(400, { error: 'Invalid conversation ID' });
    return id;
  };
  const conversationInfo = (id: string) => {
    const meta = store.metadata(id);
    if (!meta) return null;
    const loop = loops.get(id);
    return {
      conversation_id: id,
      title: meta.title ?? `Conversation ${id.slice(0, 5)}`,
      last_updated_at: meta.last_updated_at,
      status: loop?.status ?? 'STOPPED',
      runtime_status:
        loop?.status === 'RUNNING' ? 'STATUS$READY' : loop?.status === 'STARTING' ? 'STATUS$STARTING_RUNTIME' : null,
      selected_repository: meta.selected_repository ?? null,
      selected_branch: meta.selected_branch ?? null,
      git_provider: meta.git_provider ?? null,
      trigger: 'gui',
      num_connections: 0,
      url: `/api/conversations/${id}`,
      session_api_key: null,
      created_at: meta.created_at,
      pr_number: [],
      conversation_version: 'V0',
      public: null,
      sub_conversation_ids: [],
    };
  };

  /** Marks Starlette's plain-text `Internal Server Error` answer. */
  const PLAIN_500 = Symbol('plain 500');
  type Handler = (req: IncomingMessage, m: RegExpMatchArray, url: URL) => Promise<[number, unknown]>;
  type Route = { method: string; re: RegExp; name: RouteName; auth: boolean; handle: Handler };
  const health: Route[] = [
    { method: 'GET', re: /^\/alive$/, name: 'alive', auth: false, handle: async () => [200, { status: 'ok' }] },
    {
      method: 'GET',
      re: /^\/health$/,
      name: 'health',
      auth: false,
      handle: async () => [200, config.protocol === 'v1' ? { status: 'ok' } : 'OK'],
    },
  ];
  // The agent server's deferred init: state without a key; the init with the dormant init key, once.
  const init: Route[] = [
    {
      method: 'GET',
      re: /^\/api\/init$/,
      name: 'init',
      auth: false,
      handle: async () => {
        if (!config.deferredInit) throw new HttpError(404, { detail: 'server is not running with deferred_init=True' });
        return [200, { state: initState, error: null }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/init$/,
      name: 'init',
      auth: false,
      handle: async (req) => {
        if (!config.deferredInit) throw new HttpError(404, { detail: 'server is not running with deferred_init=True' });
        checkAuth(req, 'x-init-api-key', config.initKey ? digestOf(config.initKey) : undefined);
        const b = objectBody(await readJson(req));
        if (initState !== 'dormant') throw new HttpError(400, { detail: `server already in state: ${initState}` });
        const keys = b.session_api_keys;
        if (Array.isArray(keys) && keys.some((k) => typeof k !== 'string' || !k))
          throw new HttpError(422, { detail: 'session_api_keys cannot contain empty keys' });
        if (Array.isArray(keys) && keys.length) keyDigest = digestOf(String(keys[0]));
        initState = 'ready';
        return [200, { state: initState, error: null }];
      },
    },
  ];
  const v1 = (): Route[] => [
    ...init,
    ...v1Routes({
      root: config.fileStorePath,
      agentReplyDelayMs: config.agentReplyDelayMs,
      later,
      readJson,
      error: (status, body) => new HttpError(status, body),
      log,
    }).map((r) => ({
      ...r,
      auth: true,
      // Dormant: every conversation route answers 503 until the init.
      handle: (req: IncomingMessage, m: RegExpMatchArray, url: URL) => {
        if (initState !== 'ready') throw new HttpError(503, { detail: 'Server is not initialized' });
        return r.handle(req, m, url);
      },
    })),
  ];
  const v0: Route[] = [
    {
      method: 'POST',
      re: /^\/api\/settings$/,
      name: 'settings',
      auth: true,
      handle: async (req) => {
        const body = objectBody(await readJson(req));
        const stored = store.settings ?? {};
        // As OpenHands: the new settings replace the stored ones (omitted fields go back to defaults), except that
        // the LLM key, model, base URL and search key are kept when the new value is null or absent.
        const merged: Record<string, unknown> = { ...body };
        for (const k of ['llm_api_key', 'llm_model', 'llm_base_url', 'search_api_key']) {
          if ((merged[k] === null || merged[k] === undefined) && stored[k] !== undefined) merged[k] = stored[k];
        }
        store.settings = merged;
        return [200, { message: 'Settings stored' }];
      },
    },
    {
      method: 'GET',
      re: /^\/api\/settings$/,
      name: 'settings',
      auth: true,
      handle: async () => {
        const s = store.settings;
        if (!s) return [404, { error: 'Settings not found' }];
        const out: Record<string, unknown> = { ...s };
        for (const k of SECRET_SETTINGS) out[k] = null;
        out.llm_api_key_set = Boolean(s.llm_api_key);
        out.search_api_key_set = Boolean(s.search_api_key);
        out.provider_tokens_set = Object.fromEntries(
          Object.entries(store.secrets.provider_tokens).map(([p, t]) => [p, (t as { host?: string }).host ?? null]),
        );
        return [200, out];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/add-git-providers$/,
      name: 'git_providers',
      auth: true,
      handle: async (req) => {
        const body = objectBody(await readJson(req));
        const tokens = body.provider_tokens;
        if (tokens === null || typeof tokens !== 'object' || Array.isArray(tokens)) {
          throw new HttpError(422, {
            detail: [{ type: 'missing', loc: ['body', 'provider_tokens'], msg: 'Field required' }],
          });
        }
        const secrets = store.secrets;
        for (const [provider, t] of Object.entries(
          tokens as Record<string, { token?: string; user_id?: string | null; host?: string | null }>,
        )) {
          if (!['github', 'gitlab', 'bitbucket', 'azure_devops', 'enterprise_sso'].includes(provider)) {
            throw new HttpError(422, {
              detail: [
                { type: 'enum', loc: ['body', 'provider_tokens', provider], msg: 'Input should be a valid provider' },
              ],
            });
          }
          // The real server checks the token against the provider's API; offline (here) that fails, with this answer.
          if (t.token && !config.validGitTokens.includes(t.token)) {
            return [401, { error: `Invalid token. Please make sure it is a valid ${provider} token.` }];
          }
          const prev = secrets.provider_tokens[provider] as { token?: string } | undefined;
          // An empty incoming token keeps the stored one; the host is always updated.
          secrets.provider_tokens[provider] = {
            token: t.token || prev?.token || '',
            user_id: t.user_id ?? null,
            host: t.host ?? null,
          };
        }
        store.secrets = secrets;
        return [200, { message: 'Git providers stored' }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/secrets$/,
      name: 'secrets',
      auth: true,
      handle: async (req) => {
        const body = objectBody(await readJson(req));
        const name = stringField(body, 'name', true)!;
        const value = stringField(body, 'value', true)!;
        const description = stringField(body, 'description', false);
        const secrets = store.secrets;
        if (secrets.custom_secrets[name]) return [400, { message: `Secret ${name} already exists` }];
        secrets.custom_secrets[name] = { secret: value, description };
        store.secrets = secrets;
        return [201, { message: 'Secret created successfully' }];
      },
    },
    {
      method: 'GET',
      re: /^\/api\/secrets$/,
      name: 'secrets',
      auth: true,
      handle: async () => [
        200,
        {
          custom_secrets: Object.entries(store.secrets.custom_secrets).map(([name, s]) => ({
            name,
            description: s.description,
          })),
        },
      ],
    },
    {
      method: 'DELETE',
      re: /^\/api\/secrets\/([^/]+)$/,
      name: 'secrets',
      auth: true,
      handle: async (_req, m) => {
        const name = decodeURIComponent(m[1]);
        const secrets = store.secrets;
        if (!secrets.custom_secrets[name]) return [404, { message: `Secret ${name} not found` }];
        delete secrets.custom_secrets[name];
        store.secrets = secrets;
        return [200, { message: 'Secret deleted successfully' }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/exp-config$/,
      name: 'exp_config',
      auth: true,
      handle: async (req, m) => {
        const id = conversationIdParam(m[1]);
        const body = objectBody(await readJson(req));
        // `config` maps strings to strings (OpenHands' ExperimentConfig); FastAPI names each offending key.
        const config = body.config ?? {};
        if (config === null || typeof config !== 'object' || Array.isArray(config)) {
          throw new HttpError(422, {
            detail: [{ type: 'dict_type', loc: ['body', 'config'], msg: 'Input should be a valid dictionary' }],
          });
        }
        for (const [k, v] of Object.entries(config)) {
          if (typeof v !== 'string')
            throw new HttpError(422, {
              detail: [
                { type: 'string_type', loc: ['body', 'config', k], msg: 'Input should be a valid string', input: v },
              ],
            });
        }
        // Write-once; answers false when written or already present (contract §4.5).
        if (!store.expConfigExists(id)) store.setExpConfig(id, body.config ?? {});
        return [200, false];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations$/,
      name: 'create_conversation',
      auth: true,
      handle: async (req) => {
        const body = objectBody(await readJson(req));
        for (const k of Object.keys(body)) {
          if (!INIT_SESSION_FIELDS.has(k) || (k === 'conversation_id' && !config.allowSetConversationId)) {
            return [
              422,
              { detail: [{ type: 'extra_forbidden', loc: ['body', k], msg: 'Extra inputs are not permitted' }] },
            ];
          }
        }
        const initial = stringField(body, 'initial_user_msg', false);
        const replay = stringField(body, 'replay_json', false);
        let id = stringField(body, 'conversation_id', false);
        if (id === null) id = createHash('sha256').update(`${Date.now()}:${Math.random()}`).digest('hex').slice(0, 32);
        if (!validConversationId(id)) return [400, { error: 'Invalid conversation ID' }];
        if (initial && replay)
          return [
            400,
            {
              status: 'error',
              message: 'replay_json cannot be combined with initial_user_msg',
              msg_id: 'CONFIGURATION$INVALID_REQUEST',
            },
          ];
        if (replay) {
          try {
            JSON.parse(replay);
          } catch {
            return [
              400,
              { status: 'error', message: 'replay_json is not valid JSON', msg_id: 'CONFIGURATION$INVALID_REQUEST' },
            ];
          }
        }
        const settings = store.settings;
        if (!settings)
          return [400, { status: 'error', message: 'Settings not found', msg_id: 'CONFIGURATION$SETTINGS_NOT_FOUND' }];
        const model = String(settings.llm_model ?? '');
        if (!settings.llm_api_key && !model.startsWith('bedrock/') && !model.startsWith('lemonade/')) {
          return [
            400,
            {
              status: 'error',
              message: 'Error authenticating with the LLM provider. Please check your API key',
              msg_id: 'STATUS$ERROR_LLM_AUTHENTICATION',
            },
          ];
        }
        const existing = loops.get(id);
        if (existing)
          return [200, { status: 'ok', conversation_id: id, message: null, conversation_status: existing.status }];
        const now = new Date().toISOString();
        const isNew = !store.metadata(id);
        if (isNew) {
          store.setMetadata(id, {
            conversation_id: id,
            title: `Conversation ${id.slice(0, 5)}`,
            created_at: now,
            last_updated_at: now,
            selected_repository: body.repository ?? null,
            selected_branch: body.selected_branch ?? null,
            git_provider: body.git_provider ?? null,
          });
        }
        const loop: Conversation = { id, status: 'STARTING', agentState: 'loading' };
        loops.set(id, loop);
        agentState(id, 'loading');
        later(config.conversationStartDelayMs, () => {
          if (loops.get(id) !== loop) return;
          loop.status = 'RUNNING';
          if (initial && isNew) {
            userMessage(id, { content: initial });
            echo(id, initial);
          } else if (replay && isNew) {
            addEvent(id, {
              source: 'environment',
              message: 'replay loaded',
              observation: 'replay',
              content: '',
              extras: { events: (JSON.parse(replay) as unknown[]).length ?? 0 },
            });
            agentState(id, 'awaiting_user_input');
          } else {
            agentState(id, 'awaiting_user_input');
          }
        });
        log(`conversation ${id} ${isNew ? 'created' : 'resumed'}`);
        return [200, { status: 'ok', conversation_id: id, message: null, conversation_status: 'STARTING' }];
      },
    },
    {
      method: 'GET',
      re: /^\/api\/conversations\/([^/]+)$/,
      name: 'get_conversation',
      auth: true,
      handle: async (_req, m) => [200, conversationInfo(conversationIdParam(m[1]))],
    },
    {
      method: 'GET',
      re: /^\/api\/conversations\/([^/]+)\/events$/,
      name: 'get_events',
      auth: true,
      handle: async (_req, m, url) => {
        const id = conversationIdParam(m[1]);
        if (!store.metadata(id)) return [404, { detail: `Conversation ${id} not found` }];
        const q = url.searchParams;
        const int = (name: string, dflt: number | undefined) => {
          const v = q.get(name);
          if (v === null || v === '') return dflt;
          if (!/^-?\d+$/.test(v))
            throw new HttpError(422, {
              detail: [{ type: 'int_parsing', loc: ['query', name], msg: 'Input should be a valid integer' }],
            });
          return Number(v);
        };
        const limit = int('limit', 20)!;
        if (limit < 0 || limit > 100) return [400, { detail: 'Invalid limit' }];
        const startId = int('start_id', 0)!;
        const endId = int('end_id', undefined);
        const reverse = q.get('reverse') === 'true';
        // Only the page's events are read: a chatty agent's thousands of events cost nothing to a narrow query.
        let ids = store.eventIds(id).filter((n) => n >= startId && (endId === undefined || n <= endId));
        if (reverse) ids = ids.reverse();
        return [200, { events: ids.slice(0, limit).map((n) => store.event(id, n)), has_more: ids.length > limit }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/events$/,
      name: 'post_events',
      auth: true,
      handle: async (req, m) => {
        const id = conversationIdParam(m[1]);
        const body = objectBody(await readJson(req));
        if (!store.metadata(id)) return [404, { detail: `Conversation ${id} not found` }];
        const loop = loops.get(id);
        // The real server fails deep inside for a conversation that is not running: Starlette's plain-text 500.
        if (!loop) return [500, PLAIN_500];
        if (body.action === 'message') {
          const args = (body.args ?? {}) as Record<string, unknown>;
          if (typeof args.content !== 'string')
            return [
              422,
              {
                detail: [
                  { type: 'string_type', loc: ['body', 'args', 'content'], msg: 'Input should be a valid string' },
                ],
              },
            ];
          userMessage(id, args);
          if (loop.status === 'RUNNING') echo(id, args.content);
        } else if (body.action === 'change_agent_state') {
          agentState(id, String(((body.args ?? {}) as Record<string, unknown>).agent_state ?? 'running'));
        } else {
          addEvent(id, { ...body, source: 'user' });
        }
        return [200, { success: true }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/stop$/,
      name: 'stop',
      auth: true,
      handle: async (_req, m) => {
        const id = conversationIdParam(m[1]);
        const loop = loops.get(id);
        if (!loop)
          return [
            200,
            {
              status: 'ok',
              conversation_id: id,
              message: 'Conversation was not running',
              conversation_status: 'STOPPED',
            },
          ];
        agentState(id, 'stopped');
        loops.delete(id);
        // As the real server: the body still reports the status from before the stop.
        return [
          200,
          {
            status: 'ok',
            conversation_id: id,
            message: 'Conversation stopped successfully',
            conversation_status: loop.status,
          },
        ];
      },
    },
  ];
  const routes = [...health, ...(config.protocol === 'v1' ? v1() : v0)];

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const send = (status: number, body: unknown) => {
      if (res.headersSent) return;
      const plain = body === PLAIN_500;
      const text = plain ? 'Internal Server Error' : JSON.stringify(body);
      res.writeHead(status, {
        'content-type': plain ? 'text/plain; charset=utf-8' : 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://emulator');
      const candidates = routes.filter(
        (r) => r.re.test(url.pathname) && (r.name !== 'exp_config' || config.expConfigRoute),
      );
      const route = candidates.find((r) => r.method === req.method);
      if (!route) {
        if (candidates.length) return send(405, { detail: 'Method Not Allowed' });
        // Unknown /api routes still need the key, as every router endpoint does.
        if (url.pathname.startsWith('/api/')) checkAuth(req);
        return send(404, { detail: 'Not Found' });
      }
      if (route.auth) checkAuth(req);
      const fault = config.faults[route.name];
      if (fault) {
        // A stalled request still takes effect afterwards, even if its caller gave up on it meanwhile.
        if (fault.stallMs && Math.random() < (fault.stallRate ?? 1)) {
          if (req.method === 'POST') await readBody(req);
          await new Promise((r) => setTimeout(r, fault.stallMs));
        }
        if (fault.status) return send(fault.status, { error: `injected fault: status ${fault.status}` });
        if (fault.errorRate && Math.random() < fault.errorRate)
          return send(500, { error: 'injected fault: random error' });
        if (fault.resetRate && Math.random() < fault.resetRate) return void req.socket.destroy();
      }
      const [status, body] = await route.handle(req, url.pathname.match(route.re)!, url);
      // The request took effect, but its answer never arrives: the caller must not do it twice when it tries again.
      if (fault?.dropReplyRate && Math.random() < fault.dropReplyRate) return void req.socket.destroy();
      if (fault?.replyStallMs) await new Promise((r) => setTimeout(r, fault.replyStallMs));
      send(status, body);
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, err.body);
      log(`internal error: ${(err as Error).message}`);
      send(500, PLAIN_500);
    }
  }

  return {
    server,
    config,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          const addr = server.address();
          resolve(typeof addr === 'object' && addr ? addr.port : config.port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main() {
  const log = (msg: string) => process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), msg })}\n`);
  let config: EmulatorConfig;
  try {
    config = configFromEnv();
  } catch (err) {
    log(`invalid configuration: ${(err as Error).message}`);
    process.exit(1);
  }
  if (config.startupDelayMs) await new Promise((r) => setTimeout(r, config.startupDelayMs));
  const emu = createEmulator(config, log);
  const port = await emu.listen();
  log(
    `nested-server emulator listening on ${config.host}:${port} (file store ${config.fileStorePath}, auth ${config.sessionApiKey ? 'on' : 'off'})`,
  );
  const stop = () => void emu.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) void main();
