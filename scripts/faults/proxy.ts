// The fault proxy: the emulator's fault knobs (FAULT_API_*, FAULT_POST_EVENTS_*, emulator/src/server.ts) in front of a
// real server that has none. The worker under test sends every sandbox `/api` request through it (via-proxy.ts); it
// forwards to the real agent server over a real socket and, by the knobs, answers 500 instead, resets the connection
// before forwarding, stalls (the request still lands afterwards, even if its caller gave up), or forwards and then
// drops or delays the answer. So a lost answer is a POST the real server took, and nestor must find it there.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { configFromEnv, type Fault, type RouteName } from '../../emulator/src/server';

/** Request header carrying the sandbox's own origin, set by via-proxy.ts. */
export const UPSTREAM_HEADER = 'x-nestor-fault-upstream';
/** Worker environment: the proxy's origin (via-proxy.ts routes sandbox `/api` calls there when it is set). */
export const PROXY_ENV = 'NESTOR_FAULT_PROXY';

/** The agent server's routes nestor calls, named as the emulator names them (so a knob means the same on both). */
const V1_ROUTES: Array<[method: string, path: RegExp, name: RouteName]> = [
  ['POST', /^\/api\/conversations\/?$/, 'create_conversation'],
  ['POST', /^\/api\/conversations\/[^/]+\/events\/?$/, 'post_events'],
  ['GET', /^\/api\/conversations\/[^/]+\/events\/(search|count)/, 'get_events'],
  ['GET', /^\/api\/conversations\/[^/]+\/?$/, 'get_conversation'],
  ['POST', /^\/api\/conversations\/[^/]+\/run\/?$/, 'run'],
  ['POST', /^\/api\/conversations\/[^/]+\/pause\/?$/, 'pause'],
  ['PUT', /^\/api\/conversations\/[^/]+\/secrets\/?$/, 'secrets'],
  ['DELETE', /^\/api\/conversations\/[^/]+\/?$/, 'delete_conversation'],
];

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'host',
  UPSTREAM_HEADER,
]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The knobs a real server can have through the proxy; any other FAULT_ name is an error, never silently ignored. */
export const PROXY_KNOBS =
  /^FAULT_(API|POST_EVENTS)_(ERROR_RATE|STATUS|STALL_MS|STALL_RATE|RESET_RATE|DROP_REPLY_RATE|REPLY_STALL_MS)$/;

/** What the proxy did to the requests it saw since the knobs were last set. */
export interface Injected {
  forwarded: number;
  stalled: number;
  errors: number;
  resets: number;
  droppedReplies: number;
  lateReplies: number;
}
const NONE: Injected = { forwarded: 0, stalled: 0, errors: 0, resets: 0, droppedReplies: 0, lateReplies: 0 };

export class FaultProxy {
  private faults: Partial<Record<RouteName, Fault>> = {};
  /** Counts since the last `set`: a fault run shows what it injected. */
  injected: Injected = { ...NONE };
  private readonly upstream = new Agent({ keepAliveTimeout: 1_000 });
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));
  /** Where the worker sends sandbox calls (PROXY_ENV). */
  origin = '';

  static async start(): Promise<FaultProxy> {
    const proxy = new FaultProxy();
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    proxy.origin = `http://127.0.0.1:${(proxy.server.address() as { port: number }).port}`;
    return proxy;
  }

  /**
   * Set the knobs (the emulator's environment names; other variables are not faults and are ignored); `{}` clears
   * them. A FAULT_ knob the proxy cannot apply throws, so a fault run never passes by doing nothing.
   */
  set(env: Record<string, string>): void {
    const knobs = Object.entries(env).filter(([k]) => k.startsWith('FAULT_'));
    const unknown = knobs.filter(([k]) => !PROXY_KNOBS.test(k)).map(([k]) => k);
    if (unknown.length) throw new Error(`the fault proxy cannot apply ${unknown.join(', ')} to a real server`);
    this.faults = configFromEnv(Object.fromEntries(knobs)).faults;
    this.injected = { ...NONE };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    await this.upstream.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const upstream = String(req.headers[UPSTREAM_HEADER] ?? '');
    const path = req.url ?? '/';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const route = V1_ROUTES.find(([m, re]) => m === req.method && re.test(path.split('?')[0]))?.[2];
    const fault = route && this.faults[route];
    try {
      if (fault) {
        if (fault.stallMs && Math.random() < (fault.stallRate ?? 1)) {
          this.injected.stalled++;
          await sleep(fault.stallMs);
        }
        if (fault.status || (fault.errorRate && Math.random() < fault.errorRate)) {
          this.injected.errors++;
          const status = fault.status ?? 500;
          return void send(res, status, { detail: `injected fault: status ${status}` });
        }
        if (fault.resetRate && Math.random() < fault.resetRate) {
          this.injected.resets++;
          return void req.socket.destroy();
        }
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.has(k)) as Array<[string, string]>,
      );
      const r = await request(`${upstream}${path}`, {
        method: req.method as 'GET',
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
        dispatcher: this.upstream,
      });
      const body = Buffer.from(await r.body.arrayBuffer());
      this.injected.forwarded++;
      // The request took effect on the real server; its answer never arrives, or arrives late.
      if (fault?.dropReplyRate && Math.random() < fault.dropReplyRate) {
        this.injected.droppedReplies++;
        return void req.socket.destroy();
      }
      if (fault?.replyStallMs) {
        this.injected.lateReplies++;
        await sleep(fault.replyStallMs);
      }
      const out = Object.fromEntries(Object.entries(r.headers).filter(([k]) => !HOP_BY_HOP.has(k)));
      res.writeHead(r.statusCode, { ...out, 'content-length': body.length });
      res.end(body);
    } catch {
      // The sandbox went away (a restart, a daemon restart): the caller sees the connection fail, as without the proxy.
      req.socket.destroy();
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
