// The nested-server emulator over real HTTP on loopback: contract routes, auth, validation, persistence, faults.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { waitFor } from '../helpers/eventually';
import { configFromEnv, createEmulator, type Emulator } from '../../emulator/src/server';

const KEY = 'test-session-key';
const dirs: string[] = [];
const running: Emulator[] = [];

async function start(env: Record<string, string> = {}, fileStore?: string) {
  const dir = fileStore ?? mkdtempSync(join(tmpdir(), 'nestor-emu-'));
  dirs.push(dir);
  const emu = createEmulator(
    configFromEnv({
      SESSION_API_KEY: KEY,
      ALLOW_SET_CONVERSATION_ID: '1',
      FILE_STORE_PATH: dir,
      port: '0',
      HOST: '127.0.0.1',
      CONVERSATION_START_DELAY_MS: '50',
      AGENT_REPLY_DELAY_MS: '1',
      ...env,
    }),
  );
  running.push(emu);
  const port = await emu.listen();
  const call = async (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, key: string | null = KEY) => {
    const res = await request(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { ...(key !== null && { 'x-session-api-key': key }), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    // Starlette's own 500 is plain text, as the real server's.
    return {
      status: res.statusCode,
      body:
        String(res.headers['content-type']).startsWith('application/json') && text ? JSON.parse(text) : text || null,
    };
  };
  return { emu, call, dir };
}

async function ready(call: Awaited<ReturnType<typeof start>>['call'], id: string) {
  await waitFor(
    async () => (await call('GET', `/api/conversations/${id}`)).body?.status === 'RUNNING',
    `${id} to become RUNNING`,
    { everyMs: 10 },
  );
}

async function configured(env: Record<string, string> = {}) {
  const s = await start(env);
  assert.equal((await s.call('POST', '/api/settings', { llm_model: 'm', llm_api_key: 'sk' })).status, 200);
  return s;
}

after(async () => {
  for (const e of running) await e.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('emulator: auth and validation', () => {
  test('/alive and /health need no key', async () => {
    const { call } = await start();
    assert.deepEqual(await call('GET', '/alive', undefined, null), { status: 200, body: { status: 'ok' } });
    assert.deepEqual(await call('GET', '/health', undefined, null), { status: 200, body: 'OK' });
  });

  test('every /api route answers 401 to a missing or wrong key', async () => {
    const { call } = await start();
    const routes: Array<['GET' | 'POST', string]> = [
      ['POST', '/api/settings'],
      ['GET', '/api/settings'],
      ['POST', '/api/add-git-providers'],
      ['POST', '/api/secrets'],
      ['POST', '/api/conversations/c1/exp-config'],
      ['POST', '/api/conversations'],
      ['GET', '/api/conversations/c1'],
      ['GET', '/api/conversations/c1/events'],
      ['POST', '/api/conversations/c1/events'],
      ['POST', '/api/conversations/c1/stop'],
      ['GET', '/api/no-such-route'],
    ];
    for (const [m, p] of routes) {
      for (const key of [null, 'wrong', `${KEY}x`, '']) {
        const r = await call(m, p, {}, key);
        assert.equal(r.status, 401, `${m} ${p} with key ${key}`);
        assert.deepEqual(r.body, { detail: 'Unauthorized' });
      }
    }
  });

  test('conversation IDs are validated as the nested server does (§7.1)', async () => {
    const { call } = await configured();
    for (const bad of ['a..b', 'x'.repeat(101), '%00abc', 'a%5Cb', 'a%2Fb']) {
      assert.equal((await call('POST', `/api/conversations/${bad}/exp-config`, { config: {} })).status, 400, bad);
    }
    assert.equal((await call('POST', '/api/conversations', { conversation_id: 'a..b' })).status, 400);
  });

  test('conversation_id is accepted only with ALLOW_SET_CONVERSATION_ID=1', async () => {
    const { call } = await configured({ ALLOW_SET_CONVERSATION_ID: '0' });
    const r = await call('POST', '/api/conversations', { conversation_id: 'c1' });
    assert.equal(r.status, 422);
    assert.equal(r.body.detail[0].type, 'extra_forbidden');
    const anon = await call('POST', '/api/conversations', { initial_user_msg: null });
    assert.equal(anon.status, 200);
    assert.match(anon.body.conversation_id, /^[0-9a-f]{32}$/);
  });

  test('creating a conversation needs stored settings and an LLM key', async () => {
    const { call } = await start();
    const noSettings = await call('POST', '/api/conversations', { conversation_id: 'c1' });
    assert.equal(noSettings.status, 400);
    assert.equal(noSettings.body.msg_id, 'CONFIGURATION$SETTINGS_NOT_FOUND');
    await call('POST', '/api/settings', { llm_model: 'openai/gpt-4o' });
    const noKey = await call('POST', '/api/conversations', { conversation_id: 'c1' });
    assert.equal(noKey.status, 400);
    assert.equal(noKey.body.msg_id, 'STATUS$ERROR_LLM_AUTHENTICATION');
  });

  test('unknown request fields are rejected with 422; replay JSON and an initial message do not mix', async () => {
    const { call } = await configured();
    assert.equal((await call('POST', '/api/conversations', { conversation_id: 'c1', colour: 'red' })).status, 422);
    assert.equal(
      (await call('POST', '/api/conversations', { conversation_id: 'c1', initial_user_msg: 'hi', replay_json: '[]' }))
        .status,
      400,
    );
  });
});

describe('emulator: configuration routes', () => {
  test('settings are stored and read back with secrets blanked', async () => {
    const { call } = await configured();
    await call('POST', '/api/settings', { llm_api_key: null, agent: 'CodeActAgent' });
    const r = await call('GET', '/api/settings');
    assert.equal(r.status, 200);
    assert.equal(r.body.llm_api_key, null);
    assert.equal(r.body.llm_api_key_set, true, 'a null key keeps the stored one');
    assert.equal(r.body.agent, 'CodeActAgent');
  });

  test('GET /api/settings is 404 before any settings are stored', async () => {
    const { call } = await start();
    assert.equal((await call('GET', '/api/settings')).status, 404);
  });

  test('git providers: a token the provider accepts is stored; any other is rejected with 401 naming the provider, as the real server offline', async () => {
    const { call } = await configured({ VALID_GIT_TOKENS: 't' });
    assert.deepEqual(
      await call('POST', '/api/add-git-providers', {
        provider_tokens: { github: { token: 't', user_id: null, host: 'github.com' } },
      }),
      { status: 200, body: { message: 'Git providers stored' } },
    );
    assert.deepEqual((await call('GET', '/api/settings')).body.provider_tokens_set, { github: 'github.com' });
    assert.deepEqual(
      await call('POST', '/api/add-git-providers', {
        provider_tokens: { gitlab: { token: 'bad', user_id: null, host: null } },
      }),
      {
        status: 401,
        body: { error: 'Invalid token. Please make sure it is a valid gitlab token.' },
      },
    );
    assert.deepEqual(
      (await call('GET', '/api/settings')).body.provider_tokens_set,
      { github: 'github.com' },
      'nothing stored',
    );
  });

  test('settings: a POST replaces what was stored, keeping only the LLM key, model, base URL and search key', async () => {
    const { call } = await configured();
    await call('POST', '/api/settings', {
      agent: 'CodeActAgent',
      llm_model: 'm1',
      llm_api_key: 'k1',
      max_iterations: 7,
      language: 'fr',
    });
    await call('POST', '/api/settings', { agent: 'CodeActAgent', llm_model: null, max_iterations: 9 });
    const s = (await call('GET', '/api/settings')).body;
    assert.equal(s.llm_model, 'm1');
    assert.equal(s.llm_api_key_set, true);
    assert.equal(s.max_iterations, 9);
    assert.equal(s.language, undefined, 'an omitted field is gone');
  });

  test('secrets: 201 once, then 400 "already exists"', async () => {
    const { call } = await configured();
    assert.deepEqual(await call('POST', '/api/secrets', { name: 'S', value: 'v', description: null }), {
      status: 201,
      body: { message: 'Secret created successfully' },
    });
    assert.deepEqual(await call('POST', '/api/secrets', { name: 'S', value: 'v' }), {
      status: 400,
      body: { message: 'Secret S already exists' },
    });
    assert.deepEqual(await call('DELETE', '/api/secrets/S'), {
      status: 200,
      body: { message: 'Secret deleted successfully' },
    });
    assert.equal((await call('DELETE', '/api/secrets/S')).status, 404);
    assert.equal(
      (await call('POST', '/api/secrets', { name: 'S', value: 'v2' })).status,
      201,
      'created again with its new value',
    );
  });

  test('exp-config: 200 false (1.4.0); with EXP_CONFIG_ROUTE=0, 404 {"detail":"Not Found"} as 1.5.0+', async () => {
    const { call } = await configured();
    assert.deepEqual(await call('POST', '/api/conversations/c9/exp-config', { config: {} }), {
      status: 200,
      body: false,
    });
    const newer = await configured({ EXP_CONFIG_ROUTE: '0' });
    assert.deepEqual(await newer.call('POST', '/api/conversations/c9/exp-config', { config: {} }), {
      status: 404,
      body: { detail: 'Not Found' },
    });
  });

  test('exp-config is write-once and answers false', async () => {
    const { call } = await configured();
    assert.deepEqual(
      await call('POST', '/api/conversations/c1/exp-config', { config: { system_prompt_filename: 'a.j2' } }),
      { status: 200, body: false },
    );
    assert.deepEqual(await call('POST', '/api/conversations/c1/exp-config', { config: {} }), {
      status: 200,
      body: false,
    });
  });
});

describe('emulator: conversations and the echo agent', () => {
  test('create is idempotent; STARTING, then RUNNING after the delay', async () => {
    const { call } = await configured({ CONVERSATION_START_DELAY_MS: '150' });
    const first = await call('POST', '/api/conversations', { conversation_id: 'c1', initial_user_msg: 'hello' });
    assert.deepEqual(first.body, {
      status: 'ok',
      conversation_id: 'c1',
      message: null,
      conversation_status: 'STARTING',
    });
    assert.equal((await call('GET', '/api/conversations/c1')).body.status, 'STARTING');
    const again = await call('POST', '/api/conversations', { conversation_id: 'c1', initial_user_msg: 'hello' });
    assert.equal(again.status, 200);
    await ready(call, 'c1');
    const info = (await call('GET', '/api/conversations/c1')).body;
    assert.equal(info.runtime_status, 'STATUS$READY');
    assert.equal(info.conversation_version, 'V0');
    await new Promise((r) => setTimeout(r, 50));
    const events = (await call('GET', '/api/conversations/c1/events?limit=100')).body.events;
    assert.equal(
      events.filter((e: { args?: { content?: string } }) => e.args?.content === 'hello').length,
      1,
      'the initial message once, even after a repeated create',
    );
    assert.deepEqual(
      events.map(
        (e: { source: string; action?: string; extras?: { agent_state?: string } }) =>
          e.action ?? e.extras?.agent_state,
      ),
      ['loading', 'message', 'running', 'message', 'awaiting_user_input'],
    );
    assert.equal(events[3].source, 'agent');
    assert.equal(events[3].args.content, 'echo: hello');
  });

  test('GET conversation answers null for an unknown one; events 404', async () => {
    const { call } = await configured();
    assert.deepEqual(await call('GET', '/api/conversations/nope'), { status: 200, body: null });
    assert.equal((await call('GET', '/api/conversations/nope/events')).status, 404);
    assert.equal(
      (await call('POST', '/api/conversations/nope/events', { action: 'message', args: { content: 'x' } })).status,
      404,
    );
  });

  test('every user message gets an echo; pagination follows §6.5', async () => {
    const { call } = await configured();
    await call('POST', '/api/conversations', { conversation_id: 'c2' });
    await ready(call, 'c2');
    for (let i = 0; i < 30; i++) {
      assert.deepEqual(
        await call('POST', '/api/conversations/c2/events', { action: 'message', args: { content: `m${i}` } }),
        { status: 200, body: { success: true } },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
    const page1 = (await call('GET', '/api/conversations/c2/events')).body;
    assert.equal(page1.events.length, 20, 'default limit 20');
    assert.equal(page1.has_more, true);
    const all: { id: number; source: string; action?: string; args?: { content: string } }[] = [];
    let startId = 0;
    for (;;) {
      const p = (await call('GET', `/api/conversations/c2/events?start_id=${startId}&limit=100`)).body;
      all.push(...p.events);
      if (!p.has_more) break;
      startId = p.events.at(-1).id + 1;
    }
    assert.deepEqual(
      all.map((e) => e.id),
      all.map((_, i) => i),
      'ids are dense and ordered',
    );
    const user = all.filter((e) => e.source === 'user').map((e) => e.args!.content);
    const agent = all.filter((e) => e.source === 'agent').map((e) => e.args!.content);
    assert.deepEqual(
      user,
      Array.from({ length: 30 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      agent,
      user.map((m) => `echo: ${m}`),
    );
    const last = (await call('GET', '/api/conversations/c2/events?reverse=true&limit=1')).body;
    assert.equal(last.events[0].id, all.at(-1)!.id);
    const window = (await call('GET', '/api/conversations/c2/events?start_id=5&end_id=7&limit=100')).body;
    assert.deepEqual(
      window.events.map((e: { id: number }) => e.id),
      [5, 6, 7],
    );
    for (const bad of ['101', '-1'])
      assert.deepEqual(
        await call('GET', `/api/conversations/c2/events?limit=${bad}`),
        { status: 400, body: { detail: 'Invalid limit' } },
        `limit ${bad}`,
      );
    assert.deepEqual(
      (await call('GET', '/api/conversations/c2/events?limit=0')).body.events,
      [],
      'limit 0 is accepted, as the real server',
    );
    assert.deepEqual(await call('GET', '/api/conversations/nope/events?limit=1'), {
      status: 404,
      body: { detail: 'Conversation nope not found' },
    });
    assert.equal((await call('GET', '/api/conversations/c2/events?limit=abc')).status, 422);
  });

  test('stop ends the loop; a second stop says it was not running', async () => {
    const { call } = await configured();
    await call('POST', '/api/conversations', { conversation_id: 'c3' });
    const stopped = (await call('POST', '/api/conversations/c3/stop')).body;
    assert.equal(stopped.message, 'Conversation stopped successfully');
    assert.notEqual(
      stopped.conversation_status,
      'STOPPED',
      'as the real server, the body still says the status before the stop',
    );
    assert.equal((await call('POST', '/api/conversations/c3/stop')).body.message, 'Conversation was not running');
    assert.equal((await call('GET', '/api/conversations/c3')).body.status, 'STOPPED');
  });

  test('a restarted server keeps settings, secrets and events; the conversation resumes without repeating the first message', async () => {
    const first = await configured();
    await first.call('POST', '/api/secrets', { name: 'S', value: 'v' });
    await first.call('POST', '/api/conversations', { conversation_id: 'c4', initial_user_msg: 'before restart' });
    await ready(first.call, 'c4');
    await new Promise((r) => setTimeout(r, 50));
    const before = (await first.call('GET', '/api/conversations/c4/events?limit=100')).body.events;
    await first.emu.close();

    const second = await start({}, first.dir);
    assert.equal((await second.call('GET', '/api/conversations/c4')).body.status, 'STOPPED');
    assert.deepEqual((await second.call('GET', '/api/conversations/c4/events?limit=100')).body.events, before);
    const noLoop = await second.call('POST', '/api/conversations/c4/events', {
      action: 'message',
      args: { content: 'x' },
    });
    assert.deepEqual(
      noLoop,
      { status: 500, body: 'Internal Server Error' },
      "Starlette's plain-text 500, as the real server",
    );
    assert.equal(
      (await second.call('POST', '/api/secrets', { name: 'S', value: 'v' })).status,
      400,
      'secrets survived',
    );
    await second.call('POST', '/api/conversations', { conversation_id: 'c4', initial_user_msg: 'before restart' });
    await ready(second.call, 'c4');
    await second.call('POST', '/api/conversations/c4/events', {
      action: 'message',
      args: { content: 'after restart' },
    });
    const after = (await second.call('GET', '/api/conversations/c4/events?limit=100')).body.events;
    assert.deepEqual(after.slice(0, before.length), before);
    assert.deepEqual(
      after
        .filter((e: { source: string }) => e.source === 'user')
        .map((e: { args: { content: string } }) => e.args.content),
      ['before restart', 'after restart'],
    );
  });
});

describe('emulator: fault knobs', () => {
  test('a fixed status per route', async () => {
    const { call } = await configured({ FAULT_CREATE_CONVERSATION_STATUS: '503' });
    assert.equal((await call('POST', '/api/conversations', { conversation_id: 'c1' })).status, 503);
    assert.equal((await call('GET', '/alive')).status, 200, 'other routes unaffected');
  });

  test('an error rate of 1 always fails, 0 never', async () => {
    const { call } = await configured({ FAULT_GET_CONVERSATION_ERROR_RATE: '1', FAULT_SETTINGS_ERROR_RATE: '0' });
    for (let i = 0; i < 5; i++) assert.equal((await call('GET', '/api/conversations/c1')).status, 500);
    for (let i = 0; i < 5; i++) assert.equal((await call('GET', '/api/settings')).status, 200);
  });

  test('a stall delays the answer', async () => {
    const { call } = await start({ FAULT_ALIVE_STALL_MS: '200' });
    const t0 = Date.now();
    assert.equal((await call('GET', '/alive')).status, 200);
    assert.ok(Date.now() - t0 >= 190);
  });

  test('FAULT_API_* applies to every /api route but not /alive; a route knob of its own wins', async () => {
    const { call } = await start({ FAULT_API_STATUS: '502', FAULT_SETTINGS_STATUS: '418' });
    assert.equal((await call('GET', '/api/conversations/c1')).status, 502);
    assert.equal((await call('POST', '/api/secrets', { name: 'S', value: 'v' })).status, 502);
    assert.equal((await call('GET', '/api/settings')).status, 418);
    assert.equal((await call('GET', '/alive')).status, 200);
  });

  test('a reset closes the connection before any effect; a dropped reply after the effect', async () => {
    const reset = await start({ FAULT_SECRETS_RESET_RATE: '1' });
    await assert.rejects(
      reset.call('POST', '/api/secrets', { name: 'S', value: 'v' }),
      /other side closed|socket|ECONNRESET/i,
    );
    const dropped = await start({ FAULT_SECRETS_DROP_REPLY_RATE: '1' });
    await assert.rejects(
      dropped.call('POST', '/api/secrets', { name: 'S', value: 'v' }),
      /other side closed|socket|ECONNRESET/i,
    );
    // The secret was stored although its answer never arrived: the instance with no faults on its data says so.
    const { call } = await start({}, dropped.dir);
    assert.deepEqual(await call('POST', '/api/secrets', { name: 'S', value: 'v' }), {
      status: 400,
      body: { message: 'Secret S already exists' },
    });
  });

  test('a stalled post still takes effect after its caller gave up on it; a stall rate of 0 never stalls', async () => {
    const { call, emu } = await start({ FAULT_POST_EVENTS_STALL_MS: '300' });
    await call('POST', '/api/settings', { llm_model: 'm', llm_api_key: 'k' });
    await call('POST', '/api/conversations', { conversation_id: 'slow' });
    await ready(call, 'slow');
    const port = (emu.server.address() as { port: number }).port;
    await assert.rejects(
      request(`http://127.0.0.1:${port}/api/conversations/slow/events`, {
        method: 'POST',
        headers: { 'x-session-api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'message', args: { content: 'late' } }),
        signal: AbortSignal.timeout(50),
      }),
    );
    // The caller's own timeout is not the server's business: the message lands once the stall is over.
    const landed = async () =>
      (await call('GET', '/api/conversations/slow/events?limit=100')).body.events.some(
        (e: { args?: { content?: string } }) => e.args?.content === 'late',
      );
    assert.equal(await landed(), false, 'not before the stall is over');
    await waitFor(landed, 'the stalled post to land');
    assert.equal(
      configFromEnv({ FAULT_POST_EVENTS_STALL_MS: '300', FAULT_POST_EVENTS_STALL_RATE: '0' }).faults.post_events
        ?.stallRate,
      0,
    );
  });

  test('a reply stall: the request takes effect at once, its answer comes later', async () => {
    const stalled = await start({ FAULT_SECRETS_REPLY_STALL_MS: '1000' });
    let done = false;
    const answered = stalled.call('POST', '/api/secrets', { name: 'S', value: 'v' }).finally(() => (done = true));
    // Another instance on the same file store, without the fault, sees the secret before the answer arrives.
    const peer = await start({}, stalled.dir);
    await waitFor(
      async () =>
        (await peer.call('GET', '/api/secrets')).body?.custom_secrets?.some((x: { name: string }) => x.name === 'S'),
      'the secret to be stored',
    );
    assert.equal(done, false, 'stored before its answer came');
    assert.equal((await answered).status, 201);
  });

  test('AGENT_CHATTER_EVENTS: the agent adds that many events before each reply', async () => {
    const { call } = await start({ AGENT_CHATTER_EVENTS: '250' });
    await call('POST', '/api/settings', { llm_model: 'm', llm_api_key: 'k' });
    await call('POST', '/api/conversations', { conversation_id: 'chatty' });
    await ready(call, 'chatty');
    const before = (await call('GET', '/api/conversations/chatty/events?reverse=true&limit=1')).body.events[0]
      .id as number;
    await call('POST', '/api/conversations/chatty/events', { action: 'message', args: { content: 'go' } });
    const newest = async () =>
      (await call('GET', '/api/conversations/chatty/events?reverse=true&limit=1')).body.events[0];
    await waitFor(
      async () => (await newest()).extras?.agent_state === 'awaiting_user_input' && (await newest()).id > before + 1,
      'the agent to finish',
    );
    const after = (await call('GET', '/api/conversations/chatty/events?reverse=true&limit=1')).body.events[0]
      .id as number;
    // user message, agent state running, 250 chatter events, the reply, agent state awaiting input
    assert.equal(after - before, 254);
  });

  test('bad knob values are refused with the variable named', () => {
    assert.throws(
      () => configFromEnv({ FAULT_ALIVE_ERROR_RATE: '2' }),
      /FAULT_ALIVE_ERROR_RATE must be between 0 and 1/,
    );
    assert.throws(() => configFromEnv({ FAULT_API_RESET_RATE: '1.5' }), /FAULT_API_RESET_RATE must be between 0 and 1/);
    assert.throws(() => configFromEnv({ STARTUP_DELAY_MS: 'soon' }), /STARTUP_DELAY_MS must be a non-negative number/);
  });
});
