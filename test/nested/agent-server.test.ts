// The current agent server's (V1) client and steps against undici's MockAgent, and the settings table: what V1 answers
// differently from V0 (201/200, 404 as "unknown", 429 as "saved"), messages at most once, secrets never in a URL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MockAgent } from 'undici';
import {
  AgentServerClient,
  agentConversationId,
  isUserMessageV1,
  messageContent,
  type AgentEvent,
} from '../../src/nested/agent-server';
import { agentSettingsOf, ignoredByV1, refusedForV1 } from '../../src/nested/agent-server-settings';
import { mcpServersOf } from '../../src/nested/agent-server-mcp';
import { ErrorType, NestorError } from '../../src/errors';
import { createNestedActivities } from '../../src/conversation/activities/nested';
import { secretsOf } from '../../src/conversation/activities/agent-server';
import type { UserSettings } from '../../src/shared/schemas';

const BASE = 'http://agent.test';
const ID = agentConversationId('conv-1');
const path = (rest = '') => `/api/conversations/${ID}${rest}`;

function setup() {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get(BASE);
  const client = new AgentServerClient({ baseUrl: BASE, sessionApiKey: 'k', dispatcher: agent, timeoutMs: 500 });
  const acts = createNestedActivities({ dispatcher: agent, requestTimeoutMs: 500, settleMs: 10 });
  const target = { url: BASE, sessionApiKey: 'k', conversationId: 'conv-1', protocol: 'v1' as const };
  return { agent, pool, client, acts, target };
}

const userMessage = (id: string, text: string): AgentEvent => ({
  id,
  kind: 'MessageEvent',
  source: 'user',
  llm_message: { role: 'user', content: [{ type: 'text', text }] },
});

const settings: UserSettings = { agent: 'CodeActAgent', llmModel: 'openai/m', llmApiKey: 'sk-1' };

describe('the agent server (V1) adapter', () => {
  test("the server's conversation ID: a version-5 UUID of nestor's ID, the same every time, different per ID", () => {
    assert.equal(agentConversationId('conv-1'), agentConversationId('conv-1'));
    assert.notEqual(agentConversationId('conv-1'), agentConversationId('conv-2'));
    assert.match(ID, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('a user message is recognised by its exact text and images; content carries images after the text', () => {
    const e = userMessage('e1', 'hi');
    assert.ok(isUserMessageV1(e, 'hi'));
    assert.ok(!isUserMessageV1(e, 'hi '));
    assert.ok(!isUserMessageV1({ ...e, source: 'agent' }, 'hi'));
    assert.ok(!isUserMessageV1(e, 'hi', ['http://x/a.png']));
    const withImage = { ...e, llm_message: { content: messageContent('hi', ['http://x/a.png']) } } as AgentEvent;
    assert.ok(isUserMessageV1(withImage, 'hi', ['http://x/a.png']));
  });

  test('settings: CodeActAgent and the LLM are used; what V1 lacks is refused naming the field; UI-only ones ignored', () => {
    assert.equal(refusedForV1(settings), undefined);
    assert.deepEqual(agentSettingsOf({ ...settings, llmBaseUrl: 'http://llm/v1', maxIterations: 7 }), {
      agent_settings: { llm: { model: 'openai/m', usage_id: 'agent', api_key: 'sk-1', base_url: 'http://llm/v1' } },
      max_iterations: 7,
      confirmation_policy: { kind: 'NeverConfirm' },
    });
    assert.equal(refusedForV1({ ...settings, agent: 'BrowsingAgent' })?.field, 'settings.agent');
    assert.equal(refusedForV1({ ...settings, searchApiKey: 'x' })?.field, 'settings.searchApiKey');
    assert.equal(refusedForV1({ ...settings, enableDefaultCondenser: true, condenserMaxSize: 80 }), undefined);
    assert.deepEqual(
      agentSettingsOf({ ...settings, enableDefaultCondenser: false, condenserMaxSize: 80 }, 'be brief').agent_settings,
      {
        llm: { model: 'openai/m', usage_id: 'agent', api_key: 'sk-1' },
        condenser: { condenser_kind: 'llm_summarizing', enabled: false, max_size: 80 },
        agent_context: { system_message_suffix: 'be brief' },
      },
    );
    assert.deepEqual(
      ignoredByV1({ ...settings, language: 'fr' }).map((w) => w.split(' ')[0]),
      ['settings.language'],
    );
  });

  test('secrets: custom secrets and git tokens (as <PROVIDER>_TOKEN) become StaticSecrets', () => {
    assert.deepEqual(secretsOf([{ name: 'A', value: 'a', description: 'd' }], { github: { token: 'ghp' } }), {
      GITHUB_TOKEN: { kind: 'StaticSecret', value: 'ghp' },
      A: { kind: 'StaticSecret', value: 'a', description: 'd' },
    });
  });

  test('create: 201 is new, 200 existing; a 422 is NestedBadRequest with the reason, never the input values', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: '/api/conversations', method: 'POST' }).reply(201, { id: ID, execution_status: 'idle' });
    assert.equal((await client.createConversation({})).created, true);
    pool.intercept({ path: '/api/conversations', method: 'POST' }).reply(200, { id: ID, execution_status: 'idle' });
    assert.equal((await client.createConversation({})).created, false);
    pool.intercept({ path: '/api/conversations', method: 'POST' }).reply(422, {
      detail: [{ loc: ['body', 'secrets', 'X'], msg: 'Input should be a valid dictionary', input: 'the-secret' }],
    });
    await assert.rejects(client.createConversation({}), (err) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, ErrorType.NestedBadRequest);
      assert.equal(err.retryable, false);
      assert.match(err.message, /body\.secrets\.X: Input should be a valid dictionary/);
      assert.doesNotMatch(err.message, /the-secret/);
      return true;
    });
  });

  test('an unknown conversation is undefined (404), not an error; run 409 is "already running"; a post 429 is "saved"', async () => {
    const { pool, client } = setup();
    pool.intercept({ path: path(), method: 'GET' }).reply(404, { detail: 'Not Found' });
    assert.equal(await client.getConversation(ID), undefined);
    pool.intercept({ path: path('/run'), method: 'POST' }).reply(409, { detail: 'Conversation already running' });
    assert.equal(await client.run(ID), 'already-running');
    pool.intercept({ path: path('/events'), method: 'POST' }).reply(429, { detail: 'capacity' });
    assert.equal(await client.postMessage(ID, 'x'), 'saved-not-running');
  });

  test('a delivery that may have posted finds its message after the cursor and posts nothing; /run makes sure it runs', async () => {
    const { agent, pool, acts, target } = setup();
    const search = path('/events/search?kind=MessageEvent&source=user&sort_order=TIMESTAMP&limit=100');
    // Two earlier messages with the same text are before the cursor (2): the third is ours.
    pool
      .intercept({ path: search, method: 'GET' })
      .reply(200, { items: [userMessage('a', 'same'), userMessage('b', 'same'), userMessage('c', 'same')] });
    pool.intercept({ path: path('/run'), method: 'POST' }).reply(200, { success: true });
    pool.intercept({ path: path('/events/count?kind=MessageEvent&source=user'), method: 'GET' }).reply(200, '3');
    const sent = await acts.sendEvent({ ...target, content: 'same', afterEventId: 2, mayHavePosted: true });
    assert.deepEqual(sent, { recovered: true, nestedEventId: 'c', newestEventId: 3 });
    agent.assertNoPendingInterceptors();
  });

  test('a first delivery posts once with run:true; a 429 answer is followed by /run, never a second post', async () => {
    const { agent, pool, acts, target } = setup();
    const bodies: unknown[] = [];
    pool
      .intercept({ path: path('/events'), method: 'POST', body: (b) => (bodies.push(JSON.parse(b)), true) })
      .reply(429, { detail: 'capacity' });
    pool.intercept({ path: path('/run'), method: 'POST' }).reply(200, { success: true });
    pool
      .intercept({ path: path('/events/search?kind=MessageEvent&source=user&sort_order=TIMESTAMP&limit=100') })
      .reply(200, { items: [userMessage('m1', 'hello')] });
    const sent = await acts.sendEvent({ ...target, content: 'hello', afterEventId: 0 });
    assert.deepEqual(sent, { recovered: false, nestedEventId: 'm1', newestEventId: 1 });
    // One interceptor for the post: a second post would find none (and the network is closed).
    assert.deepEqual(bodies[0], { role: 'user', content: [{ type: 'text', text: 'hello' }], run: true });
    agent.assertNoPendingInterceptors();
  });

  test('start-input fields V1 cannot take are InvalidInput naming the field, before any request', async () => {
    const { acts, target } = setup();
    for (const extra of [{ replayJson: '[]' }]) {
      await assert.rejects(acts.createConversation({ ...target, settings, ...extra }), (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, ErrorType.InvalidInput);
        assert.equal(err.retryable, false);
        assert.match(err.message, new RegExp(`^${Object.keys(extra)[0]}: .*NESTOR_RUNTIME=openhands-v0`));
        return true;
      });
    }
  });

  test("mcpConfig: V0's three lists become V1's named servers; V1's own map passes through; anything else names its field", () => {
    assert.deepEqual(
      mcpServersOf({
        sse_servers: ['http://sse.example/sse', { url: 'http://keyed.example/sse', api_key: 'k1' }],
        stdio_servers: [{ name: 'fetch', command: 'uvx', args: ['mcp-server-fetch'], env: { A: '1' } }],
        shttp_servers: [{ url: 'http://h.example/mcp', api_key: 'k2', timeout: 30 }],
      }),
      {
        'sse-1': { url: 'http://sse.example/sse', transport: 'sse' },
        'sse-2': { url: 'http://keyed.example/sse', transport: 'sse', headers: { Authorization: 'Bearer k1' } },
        fetch: { command: 'uvx', transport: 'stdio', args: ['mcp-server-fetch'], env: { A: '1' } },
        'http-1': {
          url: 'http://h.example/mcp',
          transport: 'http',
          headers: { Authorization: 'Bearer k2' },
          timeout: 30,
        },
      },
    );
    const v1 = { fetch: { command: 'uvx', args: ['mcp-server-fetch'] } };
    assert.deepEqual(mcpServersOf(v1), v1);
    assert.deepEqual(mcpServersOf({ mcpServers: v1 }), v1);
    for (const [config, field] of [
      [{ sse_servers: [{ api_key: 'k' }] }, 'mcpConfig.sse_servers[0]'],
      [{ stdio_servers: [{ name: 'x' }] }, 'mcpConfig.stdio_servers[0]'],
      [{ stdio_servers: [{ name: 'x', command: 'c', args: [1] }] }, 'mcpConfig.stdio_servers[0].args'],
      [
        {
          stdio_servers: [
            { name: 'a', command: 'c' },
            { name: 'a', command: 'd' },
          ],
        },
        'mcpConfig.stdio_servers[1]',
      ],
      [{ sse_servers: 'http://x' }, 'mcpConfig.sse_servers'],
      [{ sse_servers: [], tools: [] }, 'mcpConfig.tools'],
      [{ fetch: 'uvx' }, 'mcpConfig.fetch'],
    ] as const) {
      assert.throws(
        () => mcpServersOf(config as Record<string, unknown>),
        (err) => {
          assert.ok(err instanceof NestorError);
          assert.equal(err.type, ErrorType.InvalidInput);
          assert.equal(err.details?.field, field);
          assert.ok(err.message.startsWith(`${field}: expected`), err.message);
          return true;
        },
        field,
      );
    }
  });

  test('close deletes the conversation on the server; gone already is not a failure', async () => {
    const { pool, acts, target } = setup();
    pool.intercept({ path: path(), method: 'DELETE' }).reply(200, { success: true });
    assert.deepEqual(await acts.stopConversation(target), { stopped: true });
    pool.intercept({ path: path(), method: 'DELETE' }).reply(404, { detail: 'Not Found' });
    assert.deepEqual(await acts.stopConversation(target), { stopped: false });
  });
});
