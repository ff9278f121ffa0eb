// The nested client against undici's MockAgent: every status code maps to the right typed, retryable-or-not error.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { MockAgent } from 'undici';
import { NestedClient } from '../../src/nested/client';
import { ErrorType, NestorError } from '../../src/errors';
import { createNestedActivities } from '../../src/conversation/activities/nested';

const BASE = 'http://nested.test';

function setup() {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(BASE);
  const client = new NestedClient({ baseUrl: BASE, sessionApiKey: 'k-123', dispatcher: agent, timeoutMs: 500 });
  return { agent, pool, client };
}

const cases: Array<[number, string, boolean]> = [
  [400, ErrorType.NestedBadRequest, false],
  [401, ErrorType.NestedUnauthorized, false],
  [403, ErrorType.NestedUnauthorized, false],
  [404, ErrorType.NestedNotFound, true],
  [422, ErrorType.NestedBadRequest, false],
  [429, ErrorType.NestedUnavailable, true],
  [500, ErrorType.NestedUnavailable, true],
  [502, ErrorType.NestedUnavailable, true],
  [503, ErrorType.NestedUnavailable, true],
  [504, ErrorType.NestedUnavailable, true],
  [418, ErrorType.NestedBadRequest, false],
];

describe('NestedClient status mapping', () => {
  for (const [status, type, retryable] of cases) {
    test(`${status} → ${type} (${retryable ? 'retryable' : 'non-retryable'})`, async () => {
      const { pool, client } = setup();
      // A transient failure is tried twice more before it is reported.
      pool
        .intercept({ path: '/api/settings', method: 'POST' })
        .reply(status, { error: 'x' })
        .times(type === ErrorType.NestedUnavailable ? 3 : 1);
      await assert.rejects(client.storeSettings({ llm_model: 'm' }), (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, type);
        assert.equal(err.retryable, retryable);
        assert.match(err.message, new RegExp(`POST /api/settings answered ${status}`));
        return true;
      });
    });
  }

  test('a transient failure that passes is not reported; an event post is never repeated by the client', async () => {
    const { agent, pool, client } = setup();
    pool.intercept({ path: '/api/settings', method: 'POST' }).reply(503, {});
    pool.intercept({ path: '/api/settings', method: 'POST' }).replyWithError(new Error('ECONNRESET'));
    pool.intercept({ path: '/api/settings', method: 'POST' }).reply(200, { message: 'Settings stored' });
    assert.deepEqual(await client.storeSettings({ llm_model: 'm' }), { message: 'Settings stored' });
    pool.intercept({ path: '/api/conversations/c/events', method: 'POST' }).reply(503, {});
    pool.intercept({ path: '/api/conversations/c/events', method: 'POST' }).reply(200, { success: true });
    await assert.rejects(
      client.postEvent('c', { action: 'message' }),
      (err) => err instanceof NestorError && err.type === ErrorType.NestedUnavailable,
    );
    assert.equal(agent.pendingInterceptors().length, 1, 'the second post was not made');
  });

  test('a 422 keeps where and why, never the echoed input', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/api/conversations', method: 'POST' }).reply(422, {
      detail: [
        {
          type: 'extra_forbidden',
          loc: ['body', 'llm_key'],
          msg: 'Extra inputs are not permitted',
          input: 'sk-leaked',
        },
      ],
    });
    await assert.rejects(client.createConversation({ conversation_id: 'c' }), (err) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.message, 'POST /api/conversations answered 422 (body.llm_key: Extra inputs are not permitted)');
      assert.doesNotMatch(JSON.stringify(err.details), /sk-leaked/);
      return true;
    });
  });

  test('a connection error is NestedUnavailable and retryable', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/api/settings', method: 'POST' }).replyWithError(new Error('ECONNRESET'));
    await assert.rejects(
      client.storeSettings({}),
      (err) => err instanceof NestorError && err.type === ErrorType.NestedUnavailable && err.retryable,
    );
  });

  test('a stalled answer times out as NestedUnavailable', async () => {
    // MockAgent ignores timeouts, so a real server on loopback stalls instead.
    const server = createServer(() => {}).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const client = new NestedClient({ baseUrl: `http://127.0.0.1:${port}`, sessionApiKey: 'k', timeoutMs: 300 });
    try {
      await assert.rejects(
        client.storeSettings({}),
        (err) => err instanceof NestorError && err.type === ErrorType.NestedUnavailable && err.retryable,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('sends the session key on /api routes and not on /alive', async () => {
    const { pool, client } = setup();
    pool
      .intercept({ path: '/alive', method: 'GET', headers: (h) => !('x-session-api-key' in h) })
      .reply(200, { status: 'ok' });
    pool
      .intercept({ path: '/api/settings', method: 'GET', headers: { 'x-session-api-key': 'k-123' } })
      .reply(200, { llm_model: 'm' });
    assert.equal(await client.alive(), true);
    assert.deepEqual(await client.getSettings(), { llm_model: 'm' });
  });

  test('a secret that already exists is replaced (DELETE, then POST), so a changed value reaches the server; another 400 fails', async () => {
    const { pool, client } = setup();
    const posted: string[] = [];
    pool
      .intercept({ path: '/api/secrets', method: 'POST', body: (b) => (posted.push(b), true) })
      .reply(201, { message: 'Secret created successfully' });
    pool.intercept({ path: '/api/secrets', method: 'POST' }).reply(400, { message: 'Secret FOO already exists' });
    pool
      .intercept({ path: '/api/secrets/FOO', method: 'DELETE' })
      .reply(200, { message: 'Secret deleted successfully' });
    pool
      .intercept({ path: '/api/secrets', method: 'POST', body: (b) => (posted.push(b), true) })
      .reply(201, { message: 'Secret created successfully' });
    pool.intercept({ path: '/api/secrets', method: 'POST' }).reply(400, { message: 'bad name' });
    assert.equal(await client.putSecret({ name: 'FOO', value: 'v1' }), 'created');
    assert.equal(await client.putSecret({ name: 'FOO', value: 'v2' }), 'replaced');
    assert.deepEqual(
      [...new Set(posted.map((b) => JSON.parse(b).value))],
      ['v1', 'v2'],
      'the new value was posted (matchers may run more than once)',
    );
    await assert.rejects(
      client.putSecret({ name: 'FOO', value: 'v' }),
      (err) => err instanceof NestorError && err.type === ErrorType.NestedBadRequest && /bad name/.test(err.message),
    );
  });

  test('allEvents follows has_more pages', async () => {
    const { pool, client } = setup();
    const ev = (id: number) => ({ id, source: 'user' });
    pool
      .intercept({ path: '/api/conversations/c1/events?start_id=0&limit=100', method: 'GET' })
      .reply(200, { events: [ev(0), ev(1)], has_more: true });
    pool
      .intercept({ path: '/api/conversations/c1/events?start_id=2&limit=100', method: 'GET' })
      .reply(200, { events: [ev(2)], has_more: false });
    assert.deepEqual(
      (await client.allEvents('c1')).map((e) => e.id),
      [0, 1, 2],
    );
  });
});

describe('nested activities', () => {
  test('waitForReady fails with NotReady when the bound passes, never returning silently', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    // The conversation exists but never reaches RUNNING.
    pool
      .intercept({ path: '/api/conversations/c1', method: 'GET' })
      .reply(200, { conversation_id: 'c1', status: 'STARTING' })
      .persist();
    const acts = createNestedActivities({ dispatcher: agent });
    await assert.rejects(
      acts.waitForReady({ url: BASE, sessionApiKey: 'k', conversationId: 'c1', readyTimeoutMs: 300 }),
      (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, ErrorType.NotReady);
        assert.equal(err.retryable, false);
        assert.match(err.message, /not ready after \d+ ms and \d+ polls \(last: conversation status STARTING\)/);
        return true;
      },
    );
  });

  test('sendEvent: a retry whose first post landed finds it past the cursor and does not post again', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    // Events after cursor 4: our message (id 5, posted by the lost attempt) and the echo.
    pool.intercept({ path: '/api/conversations/c1/events?start_id=5&limit=100', method: 'GET' }).reply(200, {
      events: [
        { id: 5, source: 'user', action: 'message', args: { content: 'hello' } },
        { id: 6, source: 'agent', action: 'message', args: { content: 'echo: hello' } },
      ],
      has_more: false,
    });
    const acts = createNestedActivities({ dispatcher: agent });
    const env = new MockActivityEnvironment({ attempt: 2 });
    const res = await env.run(acts.sendEvent, {
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      content: 'hello',
      afterEventId: 4,
    });
    assert.deepEqual(res, { eventId: 5, recovered: true, newestEventId: 6 });
    agent.assertNoPendingInterceptors();
  });

  test('sendEvent: a first attempt posts, then reports its event ID', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    let posted = '';
    // One intercept, consumed once: a second POST would fail as unmatched. (Body matchers may run more than once.)
    pool
      .intercept({ path: '/api/conversations/c1/events', method: 'POST', body: (b) => ((posted ||= b), true) })
      .reply(200, { success: true });
    pool.intercept({ path: '/api/conversations/c1/events?start_id=5&limit=100', method: 'GET' }).reply(200, {
      events: [{ id: 5, source: 'user', action: 'message', args: { content: 'hello' } }],
      has_more: false,
    });
    const acts = createNestedActivities({ dispatcher: agent });
    const res = await new MockActivityEnvironment({ attempt: 1 }).run(acts.sendEvent, {
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      content: 'hello',
      afterEventId: 4,
    });
    assert.deepEqual(res, { eventId: 5, recovered: false, newestEventId: 5 });
    assert.equal(JSON.parse(posted).args.content, 'hello');
    agent.assertNoPendingInterceptors();
  });

  test('sendEvent: a delivery the workflow marks as possibly posted looks first even on its first attempt', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    pool.intercept({ path: '/api/conversations/c1/events?start_id=5&limit=100', method: 'GET' }).reply(200, {
      events: [{ id: 5, source: 'user', action: 'message', args: { content: 'hello' } }],
      has_more: false,
    });
    const acts = createNestedActivities({ dispatcher: agent });
    const res = await new MockActivityEnvironment({ attempt: 1 }).run(acts.sendEvent, {
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      content: 'hello',
      afterEventId: 4,
      mayHavePosted: true,
    });
    assert.deepEqual(res, { eventId: 5, recovered: true, newestEventId: 5 });
    agent.assertNoPendingInterceptors();
  });

  test("sendEvent: not found at once, an earlier post is given settleMs to land; another writer's identical message before the mark is never ours", async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    // Event 3 (before the mark, 4) is someone else's "yes"; first look: nothing after the mark; second look: ours.
    pool
      .intercept({ path: '/api/conversations/c1/events?start_id=5&limit=100', method: 'GET' })
      .reply(200, { events: [{ id: 5, source: 'agent', action: 'run', args: {} }], has_more: false });
    pool.intercept({ path: '/api/conversations/c1/events?start_id=5&limit=100', method: 'GET' }).reply(200, {
      events: [
        { id: 5, source: 'agent', action: 'run', args: {} },
        { id: 6, source: 'user', action: 'message', args: { content: 'yes' } },
      ],
      has_more: false,
    });
    const acts = createNestedActivities({ dispatcher: agent, settleMs: 50 });
    const res = await new MockActivityEnvironment({ attempt: 1 }).run(acts.sendEvent, {
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      content: 'yes',
      afterEventId: 4,
      mayHavePosted: true,
    });
    assert.deepEqual(res, { eventId: 6, recovered: true, newestEventId: 6 });
    agent.assertNoPendingInterceptors();
  });

  test('sendEvent: a chatty agent is paged only as far as our message', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    pool.intercept({ path: '/api/conversations/c1/events', method: 'POST' }).reply(200, { success: true });
    // Our message is on the first page after the mark; the 2000 events after it are never asked for.
    pool.intercept({ path: '/api/conversations/c1/events?start_id=11&limit=100', method: 'GET' }).reply(200, {
      events: [
        { id: 11, source: 'user', action: 'message', args: { content: 'go' } },
        ...Array.from({ length: 99 }, (_, i) => ({ id: 12 + i, source: 'agent', action: 'run', args: {} })),
      ],
      has_more: true,
    });
    const acts = createNestedActivities({ dispatcher: agent });
    const res = await new MockActivityEnvironment({ attempt: 1 }).run(acts.sendEvent, {
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      content: 'go',
      afterEventId: 10,
    });
    assert.deepEqual(res, { eventId: 11, recovered: false, newestEventId: 110 });
    agent.assertNoPendingInterceptors();
  });

  test('waitForReady stops at once on 401', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get(BASE)
      .intercept({ path: /^\/api\//, method: 'GET' })
      .reply(401, { detail: 'Unauthorized' })
      .persist();
    const acts = createNestedActivities({ dispatcher: agent });
    await assert.rejects(
      acts.waitForReady({ url: BASE, sessionApiKey: 'k', conversationId: 'c1', readyTimeoutMs: 10_000 }),
      (err) => err instanceof NestorError && err.type === ErrorType.NestedUnauthorized,
    );
  });

  test('configureNestedServer calls settings, providers, secrets, exp-config in order, in snake_case', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    const seen = new Map<string, string>(); // body matchers may run more than once; keep the first
    const see = (k: string, b: string) => {
      if (!seen.has(k)) seen.set(k, b);
      return true;
    };
    pool
      .intercept({ path: '/api/settings', method: 'POST', body: (b) => see('settings', b) })
      .reply(200, { message: 'Settings stored' });
    pool
      .intercept({ path: '/api/add-git-providers', method: 'POST', body: (b) => see('providers', b) })
      .reply(200, { message: 'Git providers stored' });
    pool
      .intercept({ path: '/api/secrets', method: 'POST', body: (b) => see('secret', b) })
      .reply(400, { message: 'Secret S already exists' });
    pool.intercept({ path: '/api/secrets/S', method: 'DELETE' }).reply(200, { message: 'Secret deleted successfully' });
    pool.intercept({ path: '/api/secrets', method: 'POST' }).reply(201, { message: 'Secret created successfully' });
    pool
      .intercept({ path: '/api/conversations/c1/exp-config', method: 'POST', body: (b) => see('exp', b) })
      .reply(200, 'false');
    const acts = createNestedActivities({ dispatcher: agent });
    const r = await acts.configureNestedServer({
      url: BASE,
      sessionApiKey: 'k',
      conversationId: 'c1',
      settings: { agent: 'CodeActAgent', llmModel: 'm', llmApiKey: 'sk', maxIterations: 5 },
      providerTokens: { github: { token: 'ghp', host: 'github.com' } },
      customSecrets: [{ name: 'S', value: 'v' }],
    });
    assert.deepEqual(r, { secretsCreated: 0, secretsReplaced: 1, warnings: [] });
    assert.deepEqual([...seen.keys()], ['settings', 'providers', 'secret', 'exp']);
    assert.deepEqual(JSON.parse(seen.get('settings')!), {
      agent: 'CodeActAgent',
      llm_model: 'm',
      llm_api_key: 'sk',
      llm_base_url: null,
      max_iterations: 5,
    });
    assert.deepEqual(JSON.parse(seen.get('providers')!), {
      provider_tokens: { github: { token: 'ghp', user_id: null, host: 'github.com' } },
    });
  });
});

/** The real OpenHands 1.4.0 server's answers, recorded by test/nested/contract.test.ts (RECORD_OPENHANDS_ANSWERS=1). */
const REAL: Record<string, { status: number; kind: 'json' | 'text'; body: unknown }> = JSON.parse(
  readFileSync(join(__dirname, '../../../test/fixtures/openhands-1.4.0-answers.json'), 'utf8'),
);
function replyReal(pool: ReturnType<MockAgent['get']>, opts: { path: string; method: string }, step: string) {
  const a = REAL[step];
  assert.ok(a, `no recorded answer for '${step}'`);
  const text = a.kind === 'json' ? JSON.stringify(a.body) : String(a.body);
  return pool.intercept(opts).reply(a.status, text, {
    headers: { 'content-type': a.kind === 'json' ? 'application/json' : 'text/plain; charset=utf-8' },
  });
}

describe('each difference of the real server, on its recorded answer', () => {
  const target = { url: BASE, sessionApiKey: 'k', conversationId: 'c1' };
  const settings = { agent: 'CodeActAgent', llmModel: 'm', llmApiKey: 'sk' };

  test("add-git-providers' 401 is GitProviderRejected naming the provider with the server's reason, not NestedUnauthorized", async () => {
    const { pool, client } = setup();
    replyReal(pool, { path: '/api/add-git-providers', method: 'POST' }, 'git token rejected');
    await assert.rejects(client.addGitProviders({ github: { token: 'ghp', user_id: null, host: null } }), (err) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, ErrorType.GitProviderRejected);
      assert.equal(err.retryable, false);
      assert.match(
        err.message,
        /rejected the github token: Invalid token\. Please make sure it is a valid github token\./,
      );
      assert.deepEqual(err.details.providers, ['github']);
      return true;
    });
    // The session key's own 401 on the same route stays NestedUnauthorized.
    replyReal(pool, { path: '/api/add-git-providers', method: 'POST' }, 'no key');
    await assert.rejects(
      client.addGitProviders({ github: { token: 'ghp', user_id: null, host: null } }),
      (err) => err instanceof NestorError && err.type === ErrorType.NestedUnauthorized,
    );
  });

  test('a rejected git token: the start goes on with a warning, unless its repository needs that provider', async () => {
    const run = async (extra: { repository?: string }) => {
      const agent = new MockAgent();
      agent.disableNetConnect();
      const pool = agent.get(BASE);
      pool.intercept({ path: '/api/settings', method: 'POST' }).reply(200, { message: 'Settings stored' });
      replyReal(pool, { path: '/api/add-git-providers', method: 'POST' }, 'git token rejected');
      replyReal(pool, { path: '/api/conversations/c1/exp-config', method: 'POST' }, 'exp-config');
      return createNestedActivities({ dispatcher: agent }).configureNestedServer({
        ...target,
        settings,
        providerTokens: { github: { token: 'ghp' } },
        ...extra,
      });
    };
    const r = await run({});
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0], /github token: Invalid token.*runs without them/);
    await assert.rejects(
      run({ repository: 'o/r' }),
      (err) =>
        err instanceof NestorError &&
        err.type === ErrorType.GitProviderRejected &&
        /repository o\/r needs the github token/.test(err.message),
    );
  });

  test('exp-config absent (1.5.0+: 404 Not Found) is a warning, not a retry; its 422 names the key, never the value', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/api/conversations/c1/exp-config', method: 'POST' }).reply(404, { detail: 'Not Found' });
    assert.equal(await client.setExperimentConfig('c1', {}), 'unsupported');
    replyReal(pool, { path: '/api/conversations/c1/exp-config', method: 'POST' }, 'exp-config');
    assert.equal(await client.setExperimentConfig('c1', {}), 'stored');
    replyReal(pool, { path: '/api/conversations/c1/exp-config', method: 'POST' }, 'exp-config not strings');
    await assert.rejects(client.setExperimentConfig('c1', { a: '1' }), (err) => {
      assert.ok(err instanceof NestorError && err.type === ErrorType.NestedBadRequest);
      assert.match(err.message, /body\.config\.a: Input should be a valid string/);
      assert.doesNotMatch(JSON.stringify(err.details), /"input"/);
      return true;
    });
  });

  test("errors carry the server's reason from `detail`, `error` or `message` bodies", async () => {
    const { pool, client } = setup();
    replyReal(pool, { path: '/api/settings', method: 'GET' }, 'settings before any');
    await assert.rejects(
      client.getSettings(),
      (err) =>
        err instanceof NestorError &&
        err.type === ErrorType.NestedNotFound &&
        /\(Settings not found\)/.test(err.message),
    );
    replyReal(
      pool,
      { path: '/api/conversations/c1/events?limit=1', method: 'GET' },
      'events of an unknown conversation',
    );
    await assert.rejects(
      client.getEvents('c1', { limit: 1 }),
      (err) => err instanceof NestorError && /\(Conversation contract-nope not found\)/.test(err.message),
    );
    replyReal(pool, { path: '/api/conversations/c1/events?limit=101', method: 'GET' }, 'limit over 100');
    await assert.rejects(
      client.getEvents('c1', { limit: 101 }),
      (err) =>
        err instanceof NestorError && err.type === ErrorType.NestedBadRequest && /Invalid limit/.test(err.message),
    );
  });

  test('an unknown conversation is 200 null: waiting for it ends in NotReady saying so, never a crash', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    replyReal(agent.get(BASE), { path: '/api/conversations/c1', method: 'GET' }, 'unknown conversation').persist();
    await assert.rejects(
      createNestedActivities({ dispatcher: agent }).waitForReady({ ...target, readyTimeoutMs: 300 }),
      (err) =>
        err instanceof NestorError &&
        err.type === ErrorType.NotReady &&
        /conversation status unknown/.test(err.message),
    );
  });

  test('a message posted to a stopped conversation (plain-text 500) fails at once, naming its status, for the workflow to recover it', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    replyReal(pool, { path: '/api/conversations/c1/events', method: 'POST' }, 'post to a stopped conversation');
    replyReal(pool, { path: '/api/conversations/c1', method: 'GET' }, 'conversation after stop');
    const env = new MockActivityEnvironment();
    await assert.rejects(
      env.run(createNestedActivities({ dispatcher: agent }).sendEvent, { ...target, content: 'hi', afterEventId: -1 }),
      (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, ErrorType.NestedUnavailable);
        assert.equal(err.retryable, false, 'a new attempt would meet the same stopped conversation');
        assert.match(
          err.message,
          /answered 500 \(Internal Server Error\): the nested conversation is STOPPED, not running/,
        );
        return true;
      },
    );
  });

  test("a retried delivery finds its own message among the real stream's other kinds (system prompt, recall, agent state) and does not post again", async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    const recorded = (
      REAL.events.body as {
        events: Array<{ id: number; source: string; action?: string; args?: { content?: string } }>;
      }
    ).events;
    assert.ok(
      recorded.some((e) => e.action === 'system') && recorded.some((e) => e.action === 'recall'),
      'the recording holds the other kinds',
    );
    const mine = recorded.find(
      (e) => e.source === 'user' && e.action === 'message' && e.args?.content === 'second message',
    )!;
    const first = recorded.find((e) => e.source === 'user' && e.action === 'message')!;
    pool
      .intercept({ path: `/api/conversations/c1/events?start_id=${first.id + 1}&limit=100`, method: 'GET' })
      .reply(200, { events: recorded.filter((e) => e.id > first.id), has_more: false });
    const env = new MockActivityEnvironment({ attempt: 2 });
    const sent = await env.run(createNestedActivities({ dispatcher: agent }).sendEvent, {
      ...target,
      content: 'second message',
      afterEventId: first.id,
    });
    assert.deepEqual(sent, { eventId: mine.id, recovered: true, newestEventId: recorded.at(-1)!.id });
    assert.deepEqual(agent.pendingInterceptors(), [], 'looked once, posted nothing');
  });

  test('a stop whose body still says RUNNING counts as stopped', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    replyReal(agent.get(BASE), { path: '/api/conversations/c1/stop', method: 'POST' }, 'stop');
    assert.deepEqual(await createNestedActivities({ dispatcher: agent }).stopConversation(target), { stopped: true });
  });

  test('settings are sent whole on every call (the server replaces what it stored): a resume sends what the start sent', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const pool = agent.get(BASE);
    const bodies: string[] = [];
    pool
      .intercept({ path: '/api/settings', method: 'POST', body: (b) => (bodies.push(b), true) })
      .reply(200, { message: 'Settings stored' })
      .times(2);
    pool.intercept({ path: '/api/conversations/c1/exp-config', method: 'POST' }).reply(200, 'false').times(2);
    const acts = createNestedActivities({ dispatcher: agent });
    const full = {
      ...settings,
      llmBaseUrl: 'http://llm/v1',
      maxIterations: 9,
      language: 'fr',
      gitUserName: 'n',
      gitUserEmail: 'e@x',
    };
    await acts.configureNestedServer({ ...target, settings: full });
    await acts.configureNestedServer({ ...target, settings: full });
    const unique = [...new Set(bodies)];
    assert.equal(unique.length, 1);
    assert.deepEqual(Object.keys(JSON.parse(unique[0])).sort(), [
      'agent',
      'git_user_email',
      'git_user_name',
      'language',
      'llm_api_key',
      'llm_base_url',
      'llm_model',
      'max_iterations',
    ]);
  });
});
