// Property-based tests (fast-check): random inputs at the edge schemas and at the emulator's routes get clear 4xx-style
// errors naming fields, never a crash or a 5xx.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { ScheduleResumeSchema } from '../../src/conversation/client';
import { NestorError } from '../../src/errors';
import {
  CloseInputSchema,
  ConversationIdSchema,
  SendMessageInputSchema,
  StartConversationInputSchema,
  parseInput,
  type StartConversationRequest,
} from '../../src/shared/schemas';
import { MAX_START_INPUT_BYTES } from '../../src/shared/constants';
import { configFromEnv, createEmulator, validConversationId, type Emulator } from '../../emulator/src/server';

const RUNS = Number(process.env.NESTOR_PROPERTY_RUNS ?? 300);

/** Every rejection is InvalidInput whose message lists `path: reason` items, and whose details list the same paths. */
function assertClearRejection(err: unknown, what: string): void {
  assert.ok(
    err instanceof NestorError,
    `a NestorError, not ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`,
  );
  assert.equal(err.type, 'InvalidInput');
  assert.equal(err.retryable, false);
  assert.ok(err.message.startsWith(`invalid ${what}: `), err.message);
  const issues = (err.details as { issues: Array<{ path: string; message: string }> }).issues;
  assert.ok(issues.length > 0);
  for (const i of issues) assert.ok(err.message.includes(`${i.path || '(root)'}: ${i.message}`), `${i.path} is named`);
}

const validStart = fc.record({
  conversationId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,60}$/),
  userId: fc.stringMatching(/^[a-z0-9@.]{1,40}$/),
  settings: fc.record({
    agent: fc.constant('CodeActAgent'),
    llmModel: fc.constantFrom('anthropic/claude-sonnet-4-5', 'openai/gpt-4o'),
    llmApiKey: fc.string({ maxLength: 50 }),
  }),
  initialMessage: fc.option(fc.string({ minLength: 1, maxLength: 200 }), { nil: undefined }),
});

describe('edge schemas under random input', () => {
  const schemas = [
    ['start input', StartConversationInputSchema],
    ['message', SendMessageInputSchema],
    ['close input', CloseInputSchema],
    ['schedule', ScheduleResumeSchema],
    ['conversationId', ConversationIdSchema],
  ] as const;

  for (const [what, schema] of schemas) {
    test(`${what}: any value is accepted or rejected as InvalidInput naming fields; never another error`, () => {
      fc.assert(
        fc.property(
          fc.anything({
            withBigInt: true,
            withDate: true,
            withMap: true,
            withSet: true,
            withTypedArray: true,
            withNullPrototype: true,
          }),
          (value) => {
            try {
              parseInput(schema as never, value, what);
            } catch (err) {
              assertClearRejection(err, what);
            }
          },
        ),
        { numRuns: RUNS },
      );
    });
  }

  test('valid start inputs are accepted; one field replaced by a random value is rejected naming that field, or accepted', () => {
    const keys = [
      'conversationId',
      'userId',
      'settings',
      'initialMessage',
      'timeouts',
      'customSecrets',
      'repository',
    ] as const;
    fc.assert(
      fc.property(validStart, fc.constantFrom(...keys), fc.anything(), (base, key, junk) => {
        parseInput(StartConversationInputSchema, base, 'start input');
        try {
          parseInput(StartConversationInputSchema, { ...base, [key]: junk }, 'start input');
        } catch (err) {
          assertClearRejection(err, 'start input');
          assert.match((err as Error).message, new RegExp(`(^|: |; )${key}(\\.|:)`), `names ${key}`);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('an unknown field anywhere in the start input is rejected, named', () => {
    fc.assert(
      fc.property(validStart, fc.stringMatching(/^[a-z]{3,12}$/), fc.jsonValue(), (base, extra, v) => {
        fc.pre(
          ![
            'conversationId',
            'userId',
            'settings',
            'initialMessage',
            'gitProviderTokens',
            'customSecrets',
            'replayJson',
            'repository',
            'branch',
            'gitProvider',
            'conversationInstructions',
            'mcpConfig',
            'title',
            'timeouts',
            'continueAsNewAfterEvents',
          ].includes(extra),
        );
        assert.throws(
          () => parseInput(StartConversationInputSchema, { ...base, [extra]: v }, 'start input'),
          (err: Error) => {
            assertClearRejection(err, 'start input');
            return err.message.includes(extra);
          },
        );
        assert.throws(
          () =>
            parseInput(
              StartConversationInputSchema,
              { ...base, settings: { ...base.settings, [extra]: v } },
              'start input',
            ),
          /settings/,
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('conversation IDs the schema accepts are IDs the nested server accepts (contract §7.1)', () => {
    fc.assert(
      fc.property(
        fc.string({
          maxLength: 120,
          unit: fc.constantFrom('a', 'Z', '0', '-', '_', '.', '/', '\\', '\u0000', ' ', 'é', '..'),
        }),
        (id) => {
          if (ConversationIdSchema.safeParse(id).success)
            assert.ok(validConversationId(id), `${JSON.stringify(id)} accepted by nestor but not by the nested server`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('the whole start input is bounded well under the 2 MB payload limit', () => {
    const big: StartConversationRequest = {
      conversationId: 'big',
      userId: 'u',
      settings: { agent: 'CodeActAgent', llmModel: 'openai/gpt-4o' },
      customSecrets: Array.from({ length: 20 }, (_, i) => ({ name: `S${i}`, value: 'x'.repeat(60_000) })),
    };
    assert.throws(
      () => parseInput(StartConversationInputSchema, big, 'start input'),
      new RegExp(`\\(root\\): the whole input is \\d+ bytes as JSON; at most ${MAX_START_INPUT_BYTES}`),
    );
  });
});

describe("the emulator's routes under random requests", () => {
  const KEY = 'property-session-key';
  let emu: Emulator;
  let base: string;
  before(async () => {
    emu = createEmulator(
      configFromEnv({
        SESSION_API_KEY: KEY,
        ALLOW_SET_CONVERSATION_ID: '1',
        FILE_STORE_PATH: mkdtempSync(join(tmpdir(), 'nestor-prop-')),
        port: '0',
        HOST: '127.0.0.1',
        CONVERSATION_START_DELAY_MS: '0',
        AGENT_REPLY_DELAY_MS: '0',
      }),
    );
    base = `http://127.0.0.1:${await emu.listen()}`;
  });
  after(() => emu?.close());

  const segment = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/),
    fc.constantFrom('..', '%2e%2e', '%00', 'a%2Fb', '', 'x'.repeat(150)),
  );
  const path = fc.oneof(
    fc.constantFrom(
      '/alive',
      '/health',
      '/api/settings',
      '/api/add-git-providers',
      '/api/secrets',
      '/api/conversations',
      '/api/options/models',
      '/nope',
    ),
    segment.map((id) => `/api/conversations/${id}`),
    fc
      .tuple(segment, fc.constantFrom('events', 'stop', 'start', 'message', 'unknown'))
      .map(([id, r]) => `/api/conversations/${id}/${r}`),
    fc
      .tuple(segment, fc.constantFrom('start_id=-1', 'start_id=abc', 'limit=0', 'limit=1000000', 'reverse=maybe'))
      .map(([id, q]) => `/api/conversations/${id}/events?${q}`),
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc
      .record(
        { conversation_id: segment, initial_user_msg: fc.string(), action: fc.string(), args: fc.jsonValue() },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    fc
      .record({ llm_model: fc.jsonValue(), llm_api_key: fc.jsonValue(), agent: fc.jsonValue() }, { requiredKeys: [] })
      .map((v) => JSON.stringify(v)),
  );

  test('never a 5xx or a crash; without the key every /api route answers 401 (405 for a wrong method); every answer is JSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        path,
        body,
        fc.constantFrom(KEY, 'wrong-key', null),
        async (method, p, b, key) => {
          const res = await request(`${base}${p}`, {
            method,
            headers: { ...(key !== null && { 'x-session-api-key': key }), 'content-type': 'application/json' },
            body: method === 'GET' ? undefined : b,
          });
          const text = await res.body.text();
          assert.ok(res.statusCode < 500, `${method} ${p} -> ${res.statusCode} ${text}`);
          // Without the key nothing under /api answers but 401, or 405 for a method the path does not take (FastAPI
          // routes by method before it runs the key check).
          if (p.startsWith('/api/') && key !== KEY)
            assert.ok([401, 405].includes(res.statusCode), `${method} ${p} without the key -> ${res.statusCode}`);
          if (text) JSON.parse(text);
        },
      ),
      { numRuns: RUNS },
    );
    // Still alive and well.
    const alive = await request(`${base}/alive`);
    assert.equal(alive.statusCode, 200);
    await alive.body.dump();
  });
});
