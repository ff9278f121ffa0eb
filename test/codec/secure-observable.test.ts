// Secrets never stored in clear, JSON logs that name the conversation and hide secrets, and the metrics endpoint:
// one conversation carrying an LLM key, a git token and a custom secret (and a failed one) through `nestor worker`.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient, ConversationError } from '../../src/conversation/client';
import { EncryptionCodec, ENCODING_ENCRYPTED, parseEncryptionKeys } from '../../src/codec/encryption';
import { METRICS, conversationWorkflowId } from '../../src/shared/constants';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { userSessionsWorkflowId } from '../../src/user-sessions/messages';
import { containersFor, removeContainers } from '../helpers/docker';
import { eventually } from '../helpers/eventually';
import { createTestEnv, uniqueId } from '../helpers/temporal';
import { freePort } from '../helpers/net';

const CLI = require.resolve('../../src/cli');
const secret = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

describe('secure by default and observable (`nestor worker`, Docker, emulator)', () => {
  let env: TestWorkflowEnvironment;
  let worker: ChildProcess;
  let client: ConversationClient;
  let metricsPort: number;
  let stderr = '';
  const userId = uniqueId('secure-user');
  const ok = uniqueId('secure-ok');
  const failed = uniqueId('secure-failed');
  const secrets = { llm: secret('sk-llm'), git: secret('ghp'), custom: secret('custom'), refresh: secret('ghr') };
  let sessionApiKey = '';

  const input = (id: string, sandboxEnv: Record<string, string> = {}): StartConversationRequest => ({
    conversationId: id,
    userId,
    settings: {
      agent: 'CodeActAgent',
      llmModel: 'anthropic/claude-sonnet-4-5',
      llmApiKey: secrets.llm,
      sandbox: { env: { CONVERSATION_START_DELAY_MS: '100', VALID_GIT_TOKENS: secrets.git, ...sandboxEnv } },
    },
    gitProviderTokens: { github: { token: secrets.git, refreshToken: secrets.refresh } },
    customSecrets: [{ name: 'DEPLOY_KEY', value: secrets.custom }],
    repository: 'octo/hello',
    timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000 },
  });

  before(async () => {
    env = await createTestEnv();
    metricsPort = await freePort();
    const taskQueue = uniqueId('secure');
    // The child inherits NESTOR_ENCRYPTION_KEYS from the test helper: the same key as this process's client.
    worker = spawn('node', [CLI, 'worker'], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        NESTOR_TASK_QUEUE: taskQueue,
        NESTOR_METRICS_PORT: String(metricsPort),
        NESTOR_LOG_LEVEL: 'INFO',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d) => (stderr += d));
    client = new ConversationClient({ client: env.client, taskQueue });

    const info = await client.start(input(ok));
    sessionApiKey = info.sessionApiKey!;
    assert.ok(sessionApiKey.length >= 32);
    await client.sendMessage(ok, { content: 'first' });
    await client.sendMessage(ok, { content: 'second' });
    await client.pause(ok, 'for the test');
    await client.resume(ok);
    await client.close(ok);
    // A start that fails at createConversation, with the same secrets in its input.
    await assert.rejects(
      client.start(input(failed, { FAULT_CREATE_CONVERSATION_STATUS: '400' })),
      (err: ConversationError) => {
        // With the codec the client reads the encoded failure: its type, step and cause.
        assert.equal(err.type, 'ConversationStartFailed');
        assert.match(err.message, /createConversation failed/);
        return true;
      },
    );
  });

  after(async () => {
    worker?.kill('SIGINT');
    if (worker && worker.exitCode === null) await once(worker, 'exit');
    await removeContainers([ok, failed]);
    await env?.teardown();
  });

  test('the raw history, search attributes and memo hold none of the secrets; payloads and failures are encrypted', async () => {
    const values = [secrets.llm, secrets.git, secrets.custom, secrets.refresh, sessionApiKey];
    // A client without the codec sees what Temporal stores.
    const raw = new Client({ connection: await Connection.connect({ address: env.address }) });
    try {
      const ids = [conversationWorkflowId(ok), conversationWorkflowId(failed), userSessionsWorkflowId(userId)];
      let failureSeen = false;
      let inputsSeen = 0;
      for (const id of ids) {
        const history = await raw.workflow.getHandle(id).fetchHistory();
        const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
        for (const v of values) assert.ok(!bytes.includes(v), `history of ${id} holds a secret in clear`);
        const started = history.events![0].workflowExecutionStartedEventAttributes!;
        for (const p of started.input?.payloads ?? []) {
          assert.equal(Buffer.from(p.metadata!.encoding!).toString(), ENCODING_ENCRYPTED);
          inputsSeen++;
        }
        for (const e of history.events!) {
          const failure =
            e.workflowExecutionFailedEventAttributes?.failure ?? e.activityTaskFailedEventAttributes?.failure;
          if (failure) {
            failureSeen = true;
            assert.equal(failure.message, 'Encoded failure', 'failure messages travel encrypted');
            assert.equal(Buffer.from(failure.encodedAttributes!.metadata!.encoding!).toString(), ENCODING_ENCRYPTED);
          }
        }
        const described = await raw.workflowService.describeWorkflowExecution({
          namespace: 'default',
          execution: { workflowId: id },
        });
        const d = Buffer.from(
          temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(described).finish(),
        );
        for (const v of values)
          assert.ok(!d.includes(v), `memo, search attributes or pending state of ${id} hold a secret`);
      }
      assert.ok(inputsSeen >= 2, 'inputs were checked');
      assert.ok(failureSeen, 'the failed start left failures to check');

      // With the codec, the client reads everything back.
      const keys = parseEncryptionKeys(process.env.NESTOR_ENCRYPTION_KEYS!);
      const history = await env.client.workflow.getHandle(conversationWorkflowId(ok)).fetchHistory();
      const [decoded] = await new EncryptionCodec(keys).decode(
        history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!,
      );
      const startInput = defaultPayloadConverter.fromPayload<StartConversationRequest>(decoded);
      assert.equal(startInput.settings.llmApiKey, secrets.llm);
      assert.equal(startInput.customSecrets![0].value, secrets.custom);
      const memo = (await env.client.workflow.getHandle(conversationWorkflowId(ok)).describe()).memo;
      assert.equal(memo?.repository, 'octo/hello');
    } finally {
      await raw.connection.close();
    }
  });

  test('worker logs are JSON lines naming conversation, user and step, with no secret in them', async () => {
    // Workflow log lines leave the worker after the task that made them completes: wait for the last one.
    await eventually(async () => assert.match(stderr, /"msg":"start failed"/));
    const lines = stderr.split('\n').filter(Boolean);
    const records = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return assert.fail(`not a JSON log line: ${l}`);
      }
    });
    for (const v of [secrets.llm, secrets.git, secrets.custom, secrets.refresh, sessionApiKey])
      assert.ok(!stderr.includes(v), 'a secret reached the logs');
    assert.ok(
      records.some((r) => /development key|NESTOR_ENCRYPTION_KEYS/.test(String(r.msg))),
      'says where the key comes from',
    );
    const steps = records.filter((r) => r.msg === 'step started' && r.conversationId === ok);
    for (const step of [
      'acquireSession',
      'createRuntime',
      'refreshTokens',
      'configureNestedServer',
      'createConversation',
      'waitForReady',
      'sendEvent',
      'pauseRuntime',
      'resumeRuntime',
      'removeRuntime',
    ]) {
      const rec = steps.find((r) => r.step === step);
      assert.ok(rec, `a 'step started' line for ${step}`);
      assert.equal(rec.userId, userId, `${step} names the user`);
    }
    const transitions = records.filter((r) => String(r.msg).startsWith('conversation ') && r.conversationId === ok);
    assert.deepEqual(
      [...new Set(transitions.map((r) => r.status))],
      ['STARTING', 'RUNNING', 'PAUSED', 'STOPPED'],
      'the workflow logs each transition',
    );
    assert.ok(transitions.every((r) => r.userId === userId && typeof r.step === 'string'));
    const failure = records.find((r) => r.msg === 'start failed' && r.conversationId === failed);
    assert.equal(failure?.step, 'createConversation');
  });

  test('the Prometheus endpoint serves the SDK metrics and nestor counters and histogram after the conversations', async () => {
    const scrape = async () => {
      const res = await request(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(res.statusCode, 200);
      return res.body.text();
    };
    const value = (text: string, name: string, labels: Record<string, string> = {}) =>
      text
        .split('\n')
        .filter(
          (l) =>
            (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) &&
            Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
        )
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const text = await eventually(async () => {
      const t = await scrape();
      assert.ok(value(t, `${METRICS.messagesDelivered}`) >= 2, 'messages delivered');
      return t;
    });
    assert.match(text, /^temporal_workflow_completed\{/m, 'the SDK runtime metrics are there');
    assert.match(text, /^temporal_activity_execution_latency_bucket\{/m);
    assert.equal(value(text, `${METRICS.starts}`), 2);
    assert.equal(value(text, `${METRICS.startFailures}`, { step: 'createConversation' }), 1);
    assert.equal(value(text, `${METRICS.timeToReady}_count`), 1);
    assert.ok(value(text, `${METRICS.timeToReady}_sum`) > 0);
    assert.equal(value(text, `${METRICS.messagesDelivered}`), 2);
    assert.equal(value(text, `${METRICS.pauses}`), 1);
    assert.equal(value(text, `${METRICS.resumes}`), 1);
    assert.deepEqual(await containersFor(ok), []);
    assert.deepEqual(await containersFor(failed), []);
  });
});
