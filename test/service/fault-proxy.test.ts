// The fault proxy the fault suite puts between the worker and the real agent server (scripts/faults/proxy.ts): each
// knob does to a real upstream what it does in the emulator, and the worker's preload (via-proxy.ts) routes sandbox
// `/api` calls through it and nothing else.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, beforeEach, describe, test } from 'node:test';
import { request } from 'undici';
import { FaultProxy, PROXY_ENV, UPSTREAM_HEADER } from '../../scripts/faults/proxy';

describe('the fault proxy in front of a real server', () => {
  let upstream: Server;
  let origin = '';
  let proxy: FaultProxy;
  let seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];

  before(async () => {
    upstream = createServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += String(c);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, url: req.url }));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    origin = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    proxy = await FaultProxy.start();
  });
  after(async () => {
    await proxy.close();
    upstream.close();
  });
  beforeEach(() => {
    seen = [];
    proxy.set({});
  });

  const call = (method: 'GET' | 'POST', path: string, o: { timeoutMs?: number } = {}) =>
    request(`${proxy.origin}${path}`, {
      method,
      headers: { [UPSTREAM_HEADER]: origin, 'content-type': 'application/json' },
      body: method === 'POST' ? '{"m":1}' : undefined,
      signal: o.timeoutMs ? AbortSignal.timeout(o.timeoutMs) : undefined,
    });

  test('without knobs it forwards the request and its answer, and the upstream never sees its header', async () => {
    const r = await call('POST', '/api/conversations/c1/events');
    assert.equal(r.statusCode, 200);
    assert.deepEqual(await r.body.json(), { ok: true, url: '/api/conversations/c1/events' });
    assert.equal(seen.length, 1);
    assert.equal(seen[0].body, '{"m":1}');
    assert.equal(seen[0].headers[UPSTREAM_HEADER], undefined);
    assert.equal(proxy.injected.forwarded, 1);
  });

  test('FAULT_API_ERROR_RATE=1 answers 500 and the request never reaches the server', async () => {
    proxy.set({ FAULT_API_ERROR_RATE: '1' });
    const r = await call('GET', '/api/conversations/c1');
    assert.equal(r.statusCode, 500);
    await r.body.dump();
    assert.equal(seen.length, 0);
    assert.equal(proxy.injected.errors, 1);
  });

  test('FAULT_API_RESET_RATE=1 resets the connection before the server sees anything', async () => {
    proxy.set({ FAULT_API_RESET_RATE: '1' });
    await assert.rejects(call('GET', '/api/conversations/c1'), /other side closed|ECONNRESET|socket/i);
    assert.equal(seen.length, 0);
  });

  test('a dropped reply: the POST took effect on the server, its caller sees the connection close', async () => {
    proxy.set({ FAULT_POST_EVENTS_DROP_REPLY_RATE: '1' });
    await assert.rejects(call('POST', '/api/conversations/c1/events'), /other side closed|ECONNRESET|socket/i);
    assert.equal(seen.length, 1, 'the post landed');
    // Only the route the knob names: a read goes through untouched.
    const r = await call('GET', '/api/conversations/c1/events/search');
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.equal(proxy.injected.droppedReplies, 1);
  });

  test('a stalled POST lands on the server after its caller gave up', async () => {
    proxy.set({ FAULT_POST_EVENTS_STALL_MS: '400' });
    await assert.rejects(call('POST', '/api/conversations/c1/events', { timeoutMs: 100 }), /abort|timeout/i);
    assert.equal(seen.length, 0, 'not yet');
    // Until the proxy has the server's answer too (so nothing of this request is left for the next test).
    for (let i = 0; i < 100 && proxy.injected.forwarded === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.length, 1, 'landed afterwards');
  });

  test('a knob it cannot apply to a real server is refused, not ignored', () => {
    assert.throws(() => proxy.set({ FAULT_SETTINGS_STALL_MS: '300' }), /FAULT_SETTINGS_STALL_MS/);
    // Variables that are not faults (the emulator's boot pacing) are no knob at all.
    assert.doesNotThrow(() => proxy.set({ CONVERSATION_START_DELAY_MS: '200' }));
  });

  test("the worker's preload sends sandbox /api calls through the proxy, and anything else directly", async () => {
    const script = `const { request } = require('undici');
      (async () => {
        for (const p of ['/api/conversations/c9', '/alive']) await (await request(process.argv[1] + p)).body.dump();
      })().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
    // Asynchronously: the proxy and the upstream answer from this process.
    await promisify(execFile)(
      'node',
      ['--require', join(__dirname, '../../scripts/faults/via-proxy.js'), '-e', script, origin],
      { env: { ...process.env, [PROXY_ENV]: proxy.origin }, cwd: join(__dirname, '../../..'), timeout: 60_000 },
    );
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/api/conversations/c9', '/alive'],
    );
    assert.equal(proxy.injected.forwarded, 1, 'only the /api call went through the proxy');
  });
});
