// A client whose encryption key the worker lacks (or the other way round): every call fails at once with
// EncryptionKeyMismatch naming the step and both sides' key IDs, and the conversation keeps working for its real
// clients (before, the worker failed its workflow task on the unreadable payload and wedged the conversation).
// needs: temporal
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../src/config';
import { KNOWN_ERRORS } from '../../src/activities';
import { castKnownErrors } from '../../src/errors/cast-known-errors';
import { closeSignal, sendMessageUpdate } from '../../src/conversation/messages';
import { WORKFLOW_TYPES, conversationWorkflowId } from '../../src/shared/constants';
import { generateKeySpec, parseEncryptionKeys } from '../../src/codec/encryption';
import { nestorDataConverter } from '../../src/codec/keys';
import { ConversationClient, ConversationError } from '../../src/conversation/client';
import { createTestEnv, uniqueId, workflowBundle } from '../helpers/temporal';
import { fakeActivities, input, withFakeWorker } from '../helpers/fake-activities';

const run = promisify(execFile);

describe('encryption keys that do not match', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  const isMismatch = (step: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ConversationError, String(err));
    assert.equal(err.type, 'EncryptionKeyMismatch');
    assert.match(err.message, step);
    assert.match(err.message, /key 'stranger'/);
    assert.match(err.message, /NESTOR_ENCRYPTION_KEYS/);
    return true;
  };

  test('start, message and status from a stranger fail naming the keys; the conversation is unharmed', async () => {
    const { acts, sent } = fakeActivities();
    await withFakeWorker(env, acts, async (client, taskQueue) => {
      const stranger = new ConversationClient({
        client: new Client({
          connection: env.client.connection,
          dataConverter: nestorDataConverter(parseEncryptionKeys(generateKeySpec('stranger'))),
        }),
        taskQueue,
      });
      await assert.rejects(
        stranger.start(input(uniqueId('km-start'))),
        isMismatch(/^waitReady: the input is encrypted with key 'stranger'/),
      );
      const id = uniqueId('km');
      await client.start(input(id));
      await assert.rejects(stranger.sendMessage(id, 'let me in'), isMismatch(/^message: /));
      await assert.rejects(
        stranger.status(id),
        (err) =>
          err instanceof ConversationError &&
          err.type === 'EncryptionKeyMismatch' &&
          /which this client does not have \(it has: stranger\)/.test(err.message),
      );
      // The real client carries on: nothing was wedged, nothing delivered for the stranger.
      assert.equal((await client.sendMessage(id, 'still here')).messageId.length > 0, true);
      assert.deepEqual(sent, ['still here']);
      // The CLI says the same, with the type, for a stranger's message and status.
      // Run asynchronously: this process hosts the worker that must answer the CLI.
      const cli = (...args: string[]) =>
        run(process.execPath, [join(PROJECT_ROOT, 'dist/src/cli.js'), ...args], {
          timeout: 60_000,
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: env.address,
            NESTOR_TASK_QUEUE: taskQueue,
            NESTOR_ENCRYPTION_KEYS: generateKeySpec('stranger'),
          },
        }).then(
          () => ({ status: 0, stderr: '' }),
          (e: { code: number; stderr: string }) => ({ status: e.code, stderr: e.stderr }),
        );
      const send = await cli('send', id, 'from the command line');
      assert.equal(send.status, 1);
      assert.match(
        send.stderr,
        /^error \(EncryptionKeyMismatch\): message: the input is encrypted with key 'stranger', which this worker does not have/m,
      );
      const status = await cli('status', id);
      assert.match(
        status.stderr,
        /^error \(EncryptionKeyMismatch\): the worker's answer is encrypted with key '[^']+', which this client does not have \(it has: stranger\)/m,
      );
      assert.equal((await client.close(id)).status, 'STOPPED');
    });
  });

  test('with NESTOR_REQUIRE_ENCRYPTION, input nobody encrypted is refused (start, message) or ignored (close), never obeyed', async () => {
    const { acts, sent } = fakeActivities();
    const keys = parseEncryptionKeys(generateKeySpec('shared'));
    const taskQueue = uniqueId('require-encryption');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      dataConverter: nestorDataConverter(keys, { role: 'worker', refusePlaintext: true }),
      activities: acts,
      interceptors: { activity: [castKnownErrors(KNOWN_ERRORS)] },
    });
    const keyed = new ConversationClient({
      client: new Client({ connection: env.connection, dataConverter: nestorDataConverter(keys) }),
      taskQueue,
    });
    // A plain SDK client in any language, without nestor's codec: its payloads reach the server in clear.
    const plain = new Client({ connection: env.connection });
    const notEncrypted = (err: unknown) => {
      const cause = (err as { cause?: ApplicationFailure }).cause;
      assert.equal(cause?.type, 'EncryptionKeyMismatch', String(err));
      assert.match(
        cause?.message ?? '',
        /not encrypted, and this worker accepts only encrypted input \(NESTOR_REQUIRE_ENCRYPTION\)/,
      );
      return true;
    };
    await worker.runUntil(async () => {
      const id = uniqueId('keyed');
      await keyed.start(input(id));
      const handle = plain.workflow.getHandle(conversationWorkflowId(id));
      await assert.rejects(handle.executeUpdate(sendMessageUpdate, { args: [{ content: 'injected' }] }), notEncrypted);
      await handle.signal(closeSignal, { reason: 'from a stranger' });
      assert.equal((await keyed.status(id)).status, 'RUNNING', 'a close nobody encrypted is no instruction');
      await keyed.sendMessage(id, 'from its owner');
      assert.deepEqual(sent, ['from its owner']);
      // A start in clear (its LLM key in history in clear) is refused as it arrives.
      const stranger = uniqueId('plain');
      await assert.rejects(
        plain.workflow.execute(WORKFLOW_TYPES.startConversation, {
          taskQueue,
          workflowId: conversationWorkflowId(stranger),
          args: [input(stranger)],
        }),
        (err) => notEncrypted(err),
      );
      assert.equal((await keyed.close(id)).status, 'STOPPED');
    });
  });
});
