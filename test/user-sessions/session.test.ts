// acquireSession's checks: known agent, LLM key, agent/model capability pairing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import {
  AGENT_REGISTRY,
  DEFAULT_MODEL_CAPABILITIES,
  capabilitiesOf,
  resolveSession,
} from '../../src/user-sessions/session';
import { ErrorType, NestorError } from '../../src/errors';
import { toApplicationFailure } from '../../src/errors/cast-known-errors';
import { KNOWN_ERRORS } from '../../src/activities';

const base = { conversationId: 'c', userId: 'u' };
function reject(settings: Parameters<typeof resolveSession>[0]['settings'], field: string, pattern: RegExp) {
  assert.throws(
    () => resolveSession({ ...base, settings }, DEFAULT_MODEL_CAPABILITIES),
    (err) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, 'InvalidSettings');
      assert.equal(err.retryable, false);
      assert.equal(err.details.field, field);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('acquireSession checks', () => {
  test('sandbox env that configures the server (OH_*, SESSION_API_KEY) is InvalidSettings naming the variable, for any image', () => {
    const settings = { agent: 'CodeActAgent', llmModel: 'gpt-4o', llmApiKey: 'k' };
    reject(
      { ...settings, sandbox: { env: { SESSION_API_KEY: 'mine' } } },
      'settings.sandbox.env.SESSION_API_KEY',
      /configures the sandbox's server itself/,
    );
    reject({ ...settings, sandbox: { env: { OH_WEB_URL: 'x' } } }, 'settings.sandbox.env.OH_WEB_URL', /choose another/);
  });

  test('on the current agent server (V1): an agent or setting it has no counterpart for is InvalidSettings naming it', () => {
    const v1 = { kind: 'openhands-v1', memoryFloorMb: 512 };
    const check = (settings: Parameters<typeof resolveSession>[0]['settings']) =>
      resolveSession({ ...base, settings }, DEFAULT_MODEL_CAPABILITIES, undefined, v1);
    const ok = { agent: 'CodeActAgent', llmModel: 'gpt-4o', llmApiKey: 'k' };
    assert.equal(check(ok).agent, 'CodeActAgent');
    for (const [settings, field] of [
      [{ ...ok, agent: 'ReadOnlyAgent' }, 'settings.agent'],
      [{ ...ok, maxBudgetPerTask: 2 }, 'settings.maxBudgetPerTask'],
      [{ ...ok, securityAnalyzer: 'llm' }, 'settings.securityAnalyzer'],
    ] as const) {
      assert.throws(
        () => check(settings),
        (err) =>
          err instanceof NestorError &&
          err.type === 'InvalidSettings' &&
          err.details.field === field &&
          err.message.startsWith(`${field}: not supported by the current OpenHands agent server`),
      );
    }
    // The same settings are fine for the V0 server.
    assert.equal(
      resolveSession({ ...base, settings: { ...ok, agent: 'ReadOnlyAgent' } }, DEFAULT_MODEL_CAPABILITIES).agent,
      'ReadOnlyAgent',
    );
  });

  test('knows at least the five OpenHands agents', () => {
    for (const a of ['CodeActAgent', 'BrowsingAgent', 'VisualBrowsingAgent', 'ReadOnlyAgent', 'LocAgent'])
      assert.ok(AGENT_REGISTRY[a], a);
  });

  test('resolves a compatible pair without returning the key', () => {
    const lease = resolveSession(
      { ...base, settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk' } },
      DEFAULT_MODEL_CAPABILITIES,
    );
    assert.deepEqual(lease.capabilities, { functionCalling: true, vision: true });
    assert.ok(!JSON.stringify(lease).includes('sk'));
  });

  test('an unknown agent names settings.agent', () =>
    reject(
      { agent: 'Nope', llmModel: 'gpt-4o', llmApiKey: 'k' },
      'settings.agent',
      /unknown agent 'Nope'; expected one of CodeActAgent/,
    ));
  test('a missing key names settings.llmApiKey', () =>
    reject({ agent: 'CodeActAgent', llmModel: 'gpt-4o', llmApiKey: ' ' }, 'settings.llmApiKey', /API key is required/));
  test('bedrock models need no key', () => {
    const table = { 'bedrock/*': { functionCalling: true } };
    assert.equal(
      resolveSession({ ...base, settings: { agent: 'CodeActAgent', llmModel: 'bedrock/claude' } }, table).llmModel,
      'bedrock/claude',
    );
  });
  test('a vision agent on a text-only model is incompatible', () =>
    reject(
      { agent: 'VisualBrowsingAgent', llmModel: 'deepseek/deepseek-chat', llmApiKey: 'k' },
      'settings.llmModel',
      /needs vision; model 'deepseek\/deepseek-chat' lacks vision/,
    ));
  test('as OpenHands, a tool-using agent runs on any model: function calling is emulated where it is not native', () => {
    for (const llmModel of ['ollama/llama3', 'acme/unknown', 'openai/stand-in']) {
      for (const agent of ['CodeActAgent', 'ReadOnlyAgent', 'LocAgent']) {
        assert.equal(
          resolveSession({ ...base, settings: { agent, llmModel, llmApiKey: 'k' } }, DEFAULT_MODEL_CAPABILITIES).agent,
          agent,
          `${agent} on ${llmModel}`,
        );
      }
    }
  });
  test('a model missing from the table runs even the vision agent (unknown is not "lacks")', () => {
    assert.equal(
      resolveSession(
        { ...base, settings: { agent: 'VisualBrowsingAgent', llmModel: 'acme/unknown', llmApiKey: 'k' } },
        DEFAULT_MODEL_CAPABILITIES,
      ).agent,
      'VisualBrowsingAgent',
    );
  });
  test("a memory request below the runtime image's floor is InvalidSettings naming settings.sandbox.memoryMb", () => {
    const settings = { agent: 'CodeActAgent', llmModel: 'gpt-4o', llmApiKey: 'k' };
    const image = { kind: 'openhands', memoryFloorMb: 1536 };
    assert.throws(
      () =>
        resolveSession(
          { ...base, settings: { ...settings, sandbox: { memoryMb: 1024 } } },
          DEFAULT_MODEL_CAPABILITIES,
          undefined,
          image,
        ),
      (err) => {
        assert.ok(err instanceof NestorError && err.type === 'InvalidSettings');
        assert.equal(err.details.field, 'settings.sandbox.memoryMb');
        assert.match(err.message, /1024 is below the 1536 MB the openhands runtime image needs/);
        return true;
      },
    );
    assert.equal(
      resolveSession(
        { ...base, settings: { ...settings, sandbox: { memoryMb: 2048 } } },
        DEFAULT_MODEL_CAPABILITIES,
        undefined,
        image,
      ).agent,
      'CodeActAgent',
    );
  });
  test('the table is configurable, first match wins', () => {
    assert.deepEqual(capabilitiesOf('acme/x', { 'acme/*': { vision: true }, '*': { vision: false } }), {
      vision: true,
    });
  });

  test('sandbox limits above the operator maxima are refused, naming the field', () => {
    const settings = { agent: 'CodeActAgent', llmModel: 'gpt-4o', llmApiKey: 'k' };
    for (const [key, value] of [
      ['cpus', 5],
      ['memoryMb', 8193],
      ['pidsLimit', 5000],
    ] as const) {
      assert.throws(
        () =>
          resolveSession({ ...base, settings: { ...settings, sandbox: { [key]: value } } }, DEFAULT_MODEL_CAPABILITIES),
        (err) => {
          assert.ok(err instanceof NestorError);
          assert.equal(err.type, 'InvalidSettings');
          assert.equal(err.details.field, `settings.sandbox.${key}`);
          assert.match(err.message, /above the operator's maximum/);
          return true;
        },
      );
    }
    const within = resolveSession(
      { ...base, settings: { ...settings, sandbox: { cpus: 2 } } },
      DEFAULT_MODEL_CAPABILITIES,
      { cpus: 2, memoryMb: 512, pidsLimit: 64 },
    );
    assert.equal(within.agent, 'CodeActAgent');
  });
});

test('failures leaving an activity name the step, the cause and what to check', () => {
  const f = toApplicationFailure(
    new NestorError(ErrorType.NotReady, 'not ready after 100 ms', false),
    KNOWN_ERRORS,
    'waitForReady',
    'c-1',
  ) as ApplicationFailure;
  assert.equal(f.type, 'NotReady');
  assert.equal(f.nonRetryable, true);
  assert.equal(
    f.message,
    "waitForReady: not ready after 100 ms; check 'docker logs nestor-conv-c-1' for the agent's start-up and timeouts.readyTimeoutMs",
  );
  const img = toApplicationFailure(
    new NestorError(
      ErrorType.RuntimeImageNotFound,
      "image 'x' not found locally; build it with 'npm run setup'",
      false,
    ),
    KNOWN_ERRORS,
    'createRuntime',
  ) as ApplicationFailure;
  assert.equal(
    img.message,
    "createRuntime: image 'x' not found locally; build it with 'npm run setup'",
    'a message that says what to do gets no second hint',
  );
  const down = toApplicationFailure(
    new Error('connect ENOENT /var/run/docker.sock'),
    KNOWN_ERRORS,
    'createRuntime',
    'c-3',
  ) as ApplicationFailure;
  assert.equal(down.type, 'RuntimeStartFailed');
  assert.equal(down.nonRetryable, false);
  assert.match(
    down.message,
    /^createRuntime: the Docker engine does not answer \(connect ENOENT \/var\/run\/docker\.sock\); check .*'docker info'/,
  );
  for (const type of [
    ErrorType.RuntimeStartFailed,
    ErrorType.NestedUnauthorized,
    ErrorType.NestedBadRequest,
    ErrorType.NestedNotFound,
    ErrorType.NestedUnavailable,
  ]) {
    const g = toApplicationFailure(
      new NestorError(type, 'cause', true),
      KNOWN_ERRORS,
      'step',
      'c-2',
    ) as ApplicationFailure;
    assert.match(g.message, /^step: cause; check .+/, type);
  }
});
