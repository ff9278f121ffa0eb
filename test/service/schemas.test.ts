// The zod schemas on good and bad input, and the published JSON Schema files kept current.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SCHEMA_DIR, renderSchemas } from '../../src/shared/json-schema';
import { NestorError } from '../../src/errors';
import { SendMessageInputSchema, StartConversationInputSchema, parseInput } from '../../src/shared/schemas';

const good = {
  conversationId: 'conv-1.a_b',
  userId: 'alice@example.com',
  settings: { llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk' },
};

function issuesOf(value: unknown): string {
  try {
    parseInput(StartConversationInputSchema, value, 'start input');
  } catch (err) {
    assert.ok(err instanceof NestorError);
    assert.equal(err.type, 'InvalidInput');
    assert.equal(err.retryable, false);
    return err.message;
  }
  assert.fail('expected the input to be rejected');
}

describe('start input schema', () => {
  test('accepts a minimal input and applies the default agent', () => {
    const parsed = parseInput(StartConversationInputSchema, good, 'start input');
    assert.equal(parsed.settings.agent, 'CodeActAgent');
  });

  test('accepts a full input', () => {
    parseInput(
      StartConversationInputSchema,
      {
        ...good,
        settings: {
          ...good.settings,
          agent: 'BrowsingAgent',
          llmBaseUrl: 'https://llm.example/v1',
          maxIterations: 10,
          sandbox: { cpus: 0.5, memoryMb: 512, pidsLimit: 128, env: { FAULT_ALIVE_STALL_MS: '10' } },
        },
        gitProviderTokens: { github: { token: 'ghp', refreshToken: 'r', expiresAt: '2026-11-21T10:00:00Z' } },
        customSecrets: [{ name: 'A', value: 'x' }],
        replayJson: '[{"action":"message"}]',
        repository: 'owner/repo',
        branch: 'main',
        timeouts: { aliveTimeoutMs: 1000, readyTimeoutMs: 1000 },
      },
      'start input',
    );
  });

  const bad: Array<[string, unknown, RegExp]> = [
    [
      'a conversation ID with a slash',
      { ...good, conversationId: 'a/b' },
      /conversationId: must start with a letter or digit/,
    ],
    ['a conversation ID with ..', { ...good, conversationId: 'a..b' }, /conversationId: must not contain "\.\."/],
    ['a conversation ID over 100 characters', { ...good, conversationId: 'x'.repeat(101) }, /conversationId: Too big/],
    ['an empty user ID', { ...good, userId: '' }, /userId: Too small/],
    [
      'a missing model',
      { ...good, settings: { llmApiKey: 'k' } },
      /settings\.llmModel: Invalid input: expected string, received undefined/,
    ],
    ['an unknown field', { ...good, colour: 'red' }, /\(root\): Unrecognized key: "colour"/],
    [
      'an unknown settings field',
      { ...good, settings: { ...good.settings, temperature: 2 } },
      /settings: Unrecognized key: "temperature"/,
    ],
    ['an unknown git provider', { ...good, gitProviderTokens: { sourceforge: { token: 't' } } }, /gitProviderTokens/],
    ['replay JSON that is not JSON', { ...good, replayJson: '{nope' }, /replayJson: must be valid JSON/],
    [
      'replay JSON with an initial message',
      { ...good, replayJson: '[]', initialMessage: 'hi' },
      /replayJson: cannot be combined with initialMessage/,
    ],
    [
      'duplicate secret names',
      {
        ...good,
        customSecrets: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      },
      /customSecrets\.1\.name: duplicate secret name 'A'/,
    ],
    [
      'a secret name that is not an env name',
      { ...good, customSecrets: [{ name: '1X', value: '1' }] },
      /customSecrets\.0\.name: must be a valid environment variable name/,
    ],
    [
      'a memory limit below 64 MB',
      { ...good, settings: { ...good.settings, sandbox: { memoryMb: 1 } } },
      /settings\.sandbox\.memoryMb: Too small/,
    ],
  ];
  for (const [what, value, expected] of bad) {
    test(`rejects ${what}, naming the field`, () => assert.match(issuesOf(value), expected));
  }

  test('lists every bad field at once and never echoes a secret value', () => {
    const msg = issuesOf({
      conversationId: '',
      userId: '',
      settings: { llmModel: '', llmApiKey: 42 },
      customSecrets: [{ name: 'OK', value: 'hunter2', extra: 1 }],
    });
    for (const field of ['conversationId', 'userId', 'settings.llmModel', 'settings.llmApiKey', 'customSecrets.0'])
      assert.match(msg, new RegExp(`${field.replace('.', '\\.')}: `));
    assert.doesNotMatch(msg, /hunter2/);
  });
});

describe('message schema', () => {
  test('accepts a message with an ID', () => {
    assert.deepEqual(parseInput(SendMessageInputSchema, { content: 'hi', messageId: 'm-1' }, 'message'), {
      content: 'hi',
      messageId: 'm-1',
    });
  });
  test('rejects an empty or oversized message', () => {
    assert.throws(() => parseInput(SendMessageInputSchema, { content: '' }, 'message'), /content: must not be empty/);
    assert.throws(
      () => parseInput(SendMessageInputSchema, { content: 'x'.repeat(70_000) }, 'message'),
      /content: Too big/,
    );
  });
});

describe('published JSON Schema files', () => {
  test('match the zod schemas (run `npm run schemas` after changing them)', () => {
    const rendered = renderSchemas();
    assert.deepEqual(readdirSync(SCHEMA_DIR).sort(), Object.keys(rendered).sort());
    for (const [file, text] of Object.entries(rendered)) {
      assert.equal(readFileSync(join(SCHEMA_DIR, file), 'utf8'), text, `${file} is out of date`);
    }
  });

  test('forbid unknown fields, as the zod schemas do', () => {
    const start = JSON.parse(readFileSync(join(SCHEMA_DIR, 'start-conversation-input.schema.json'), 'utf8'));
    assert.equal(start.additionalProperties, false);
    assert.deepEqual(start.required.sort(), ['conversationId', 'settings', 'userId']);
  });
});
