// The emulator's V1 routes: the current OpenHands agent server's contract as nestor uses it
// (../shared/reference/openhands-agent-server-v1.md §2): one idempotent create (201 new, 200 existing), events searched
// and counted, messages as `{role, content, run}` with no idempotency key, run/pause, secrets, delete; an echo agent;
// conversations kept on disk (a conversation running when the server stopped comes back `error`).
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';

/** What the V1 routes need from the server around them. */
export interface V1Context {
  root: string;
  agentReplyDelayMs: number;
  later(ms: number, fn: () => void): void;
  readJson(req: IncomingMessage): Promise<unknown>;
  error(status: number, body: unknown): Error;
  log(msg: string): void;
}

export type V1RouteName =
  | 'create_conversation'
  | 'get_conversation'
  | 'get_events'
  | 'post_events'
  | 'run'
  | 'pause'
  | 'secrets'
  | 'delete_conversation';

type Handler = (req: IncomingMessage, m: RegExpMatchArray, url: URL) => Promise<[number, unknown]>;
export interface V1Route {
  method: string;
  re: RegExp;
  name: V1RouteName;
  handle: Handler;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
type Event = Record<string, unknown> & { id: string; kind: string; source: string; timestamp: string };

/** A dashed lower-case UUID, or 422 as FastAPI answers a bad path or body UUID. */
function uuidOf(ctx: V1Context, raw: unknown, loc: string[]): string {
  if (typeof raw !== 'string' || !UUID.test(raw))
    throw ctx.error(422, { detail: [{ type: 'uuid_parsing', loc, msg: 'Input should be a valid UUID' }] });
  const h = raw.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The server's naive, local (here UTC) timestamps. */
const now = () => new Date().toISOString().replace('Z', '');

export function v1Routes(ctx: V1Context): V1Route[] {
  const dir = (id: string) => join(ctx.root, 'v1', id.replace(/-/g, ''));
  const write = (path: string, v: unknown) => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(`${path}.tmp`, JSON.stringify(v));
    renameSync(`${path}.tmp`, path);
  };
  const meta = (id: string) =>
    existsSync(join(dir(id), 'meta.json'))
      ? (JSON.parse(readFileSync(join(dir(id), 'meta.json'), 'utf8')) as Record<string, unknown>)
      : undefined;
  const events = (id: string): Event[] => {
    const d = join(dir(id), 'events');
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as Event);
  };
  const append = (id: string, e: Omit<Event, 'id' | 'timestamp'>) => {
    const n = existsSync(join(dir(id), 'events')) ? readdirSync(join(dir(id), 'events')).length : 0;
    const event = { id: randomUUID(), timestamp: now(), ...e } as Event;
    write(join(dir(id), 'events', `event-${String(n).padStart(5, '0')}-${event.id}.json`), event);
    return event;
  };
  /** Execution status per conversation in this process; on disk only through the state update events. */
  const status = new Map<string, string>();
  const statusOf = (id: string) => {
    const known = status.get(id);
    if (known) return known;
    const last = events(id)
      .filter((e) => e.kind === 'ConversationStateUpdateEvent' && e.key === 'execution_status')
      .at(-1)?.value as string | undefined;
    // As the agent server: a conversation that was running when the server stopped comes back in error.
    const s = last === 'running' ? 'error' : (last ?? 'idle');
    status.set(id, s);
    return s;
  };
  const setStatus = (id: string, s: string) => {
    status.set(id, s);
    append(id, { kind: 'ConversationStateUpdateEvent', source: 'environment', key: 'execution_status', value: s });
  };
  const info = (id: string) => ({
    id,
    execution_status: statusOf(id),
    title: null,
    tags: (meta(id)?.tags as Record<string, string>) ?? {},
    workspace: meta(id)?.workspace,
    last_user_message_id:
      events(id)
        .filter((e) => e.kind === 'MessageEvent' && e.source === 'user')
        .at(-1)?.id ?? null,
    created_at: meta(id)?.created_at,
    updated_at: now(),
  });
  const textOf = (e: Event) =>
    ((e.llm_message as { content?: Array<{ type: string; text?: string }> })?.content ?? [])
      .filter((p) => p.type === 'text')
      .map((p) => p.text)
      .join('');
  /** The echo agent: running → "echo: <the newest user text>" → finished. */
  const run = (id: string) => {
    setStatus(id, 'running');
    ctx.later(ctx.agentReplyDelayMs, () => {
      if (status.get(id) !== 'running' || !meta(id)) return;
      const said = events(id)
        .filter((e) => e.kind === 'MessageEvent' && e.source === 'user')
        .at(-1);
      const text = `echo: ${said ? textOf(said) : ''}`;
      append(id, {
        kind: 'MessageEvent',
        source: 'agent',
        llm_message: { role: 'assistant', content: [{ type: 'text', text }] },
      });
      setStatus(id, 'finished');
    });
  };
  const known = (id: string) => {
    if (!meta(id)) throw ctx.error(404, { detail: `Conversation not found: ${id}` });
  };
  const body = async (req: IncomingMessage) => {
    const b = await ctx.readJson(req);
    if (b === null || typeof b !== 'object' || Array.isArray(b))
      throw ctx.error(422, {
        detail: [
          {
            type: 'model_attributes_type',
            loc: ['body'],
            msg: 'Input should be a valid dictionary or object to extract fields from',
          },
        ],
      });
    return b as Record<string, unknown>;
  };
  const userMessage = (id: string, m: Record<string, unknown>) =>
    append(id, { kind: 'MessageEvent', source: 'user', llm_message: { role: 'user', content: m.content ?? [] } });

  return [
    {
      method: 'POST',
      re: /^\/api\/conversations$/,
      name: 'create_conversation',
      handle: async (req) => {
        const b = await body(req);
        const missing = (field: string) => ({ type: 'missing', loc: ['body', field], msg: 'Field required' });
        if (b.workspace === undefined) throw ctx.error(422, { detail: [missing('workspace')] });
        if (b.agent === undefined && b.agent_settings === undefined && b.agent_profile_id === undefined)
          throw ctx.error(422, {
            detail: [
              {
                type: 'value_error',
                loc: ['body'],
                msg: 'Value error, one of agent, agent_settings or agent_profile_id is required',
              },
            ],
          });
        for (const [name, v] of Object.entries((b.secrets as Record<string, unknown>) ?? {}))
          if (v === null || typeof v !== 'object')
            throw ctx.error(422, {
              detail: [
                {
                  type: 'model_attributes_type',
                  loc: ['body', 'secrets', name],
                  msg: 'Input should be a valid dictionary or object to extract fields from',
                },
              ],
            });
        const id =
          b.conversation_id === undefined ? randomUUID() : uuidOf(ctx, b.conversation_id, ['body', 'conversation_id']);
        if (meta(id)) return [200, info(id)];
        write(join(dir(id), 'meta.json'), {
          workspace: b.workspace,
          tags: b.tags ?? {},
          secret_names: Object.keys((b.secrets as object) ?? {}),
          created_at: now(),
        });
        append(id, { kind: 'SystemPromptEvent', source: 'agent' });
        const created = info(id);
        const initial = b.initial_message as Record<string, unknown> | undefined;
        // As the agent server: an initial message always starts a run, whatever its `run` says.
        if (initial) {
          userMessage(id, initial);
          run(id);
        }
        ctx.log(`v1 conversation ${id} created`);
        return [201, created];
      },
    },
    {
      method: 'GET',
      re: /^\/api\/conversations\/([^/]+)$/,
      name: 'get_conversation',
      handle: async (_req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        return meta(id) ? [200, info(id)] : [404, { detail: 'Not Found' }];
      },
    },
    {
      method: 'GET',
      re: /^\/api\/conversations\/([^/]+)\/events\/(search|count)$/,
      name: 'get_events',
      handle: async (_req, m, url) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        known(id);
        const q = url.searchParams;
        let all = events(id).filter(
          (e) => (!q.get('kind') || e.kind === q.get('kind')) && (!q.get('source') || e.source === q.get('source')),
        );
        if (m[2] === 'count') return [200, all.length];
        const limit = Number(q.get('limit') ?? 100);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100)
          throw ctx.error(422, {
            detail: [
              { type: 'less_than_equal', loc: ['query', 'limit'], msg: 'Input should be less than or equal to 100' },
            ],
          });
        if (q.get('sort_order') === 'TIMESTAMP_DESC') all = all.reverse();
        const from = q.get('page_id')
          ? Math.max(
              0,
              all.findIndex((e) => e.id === q.get('page_id')),
            )
          : 0;
        const items = all.slice(from, from + limit);
        return [200, { items, next_page_id: all[from + limit]?.id ?? null }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/events$/,
      name: 'post_events',
      handle: async (req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        const b = await body(req);
        known(id);
        userMessage(id, b);
        if (b.run === true && statusOf(id) !== 'running') run(id);
        return [200, { success: true }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/run$/,
      name: 'run',
      handle: async (_req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        known(id);
        if (statusOf(id) === 'running')
          return [409, { detail: 'Conversation already running. Wait for it to finish.' }];
        const newest = events(id)
          .filter((e) => e.kind === 'MessageEvent')
          .at(-1);
        if (newest?.source === 'user') run(id);
        return [200, { success: true }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/pause$/,
      name: 'pause',
      handle: async (_req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        known(id);
        if (statusOf(id) === 'running') setStatus(id, 'paused');
        return [200, { success: true }];
      },
    },
    {
      method: 'POST',
      re: /^\/api\/conversations\/([^/]+)\/secrets$/,
      name: 'secrets',
      handle: async (req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        const b = await body(req);
        known(id);
        const names = Object.keys((b.secrets as object) ?? {});
        write(join(dir(id), 'meta.json'), {
          ...meta(id),
          secret_names: [...new Set([...((meta(id)?.secret_names as string[]) ?? []), ...names])],
        });
        return [200, { success: true }];
      },
    },
    {
      method: 'DELETE',
      re: /^\/api\/conversations\/([^/]+)$/,
      name: 'delete_conversation',
      handle: async (_req, m) => {
        const id = uuidOf(ctx, decodeURIComponent(m[1]), ['path', 'conversation_id']);
        if (!meta(id)) return [404, { detail: 'Not Found' }];
        status.delete(id);
        rmSync(dir(id), { recursive: true, force: true });
        return [200, { success: true }];
      },
    },
  ];
}
