// The contract as the worker enforces it, whatever client sent the input: schema defaults and limits, the owner of a
// conversation, explicit ERROR when a slot cannot be given back, schedules gone with the conversation.
// Fake activities on a real dev server; starts made with the plain Temporal client, as another language would.
// needs: temporal
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import { ConversationError } from '../../src/conversation/client';
import { ConversationStatusKey, WORKFLOW_TYPES, conversationWorkflowId } from '../../src/shared/constants';
import { pauseUpdate, statusQuery, waitReadyUpdate } from '../../src/conversation/messages';
import { waitFor } from '../helpers/eventually';
import { createTestEnv, testWorkerDataConverter, uniqueId } from '../helpers/temporal';
import { fakeActivities, input, withFakeWorker, type FakeActivities } from '../helpers/fake-activities';
import { createHostActivities } from '../../src/sandbox-hosts/activities';
import { hostTaskQueue } from '../../src/sandbox-hosts/messages';

describe('the worker enforces the contract (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  /** Start as a plain SDK client would, with an input no TypeScript client checked. */
  const rawStart = (taskQueue: string, id: string, raw: unknown) =>
    env.client.workflow.start(WORKFLOW_TYPES.startConversation, {
      workflowId: conversationWorkflowId(id),
      taskQueue,
      args: [raw],
    });

  test("a start without settings.agent gets the schema's default agent", async () => {
    const { acts, acquireInputs } = fakeActivities();
    const id = uniqueId('no-agent');
    await withFakeWorker(env, acts, async (client, taskQueue) => {
      await rawStart(taskQueue, id, {
        conversationId: id,
        userId: 'alice',
        settings: { llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk' },
      });
      const info = await client.handle(id).executeUpdate(waitReadyUpdate, { args: [{ userId: 'alice' }] });
      assert.equal(info.status, 'RUNNING');
      await client.close(id);
    });
    assert.equal(acquireInputs[0].settings.agent, 'CodeActAgent');
  });

  for (const [field, sandbox] of [
    ['cpus', { cpus: 0 }],
    ['pidsLimit', { pidsLimit: -1 }],
  ] as const) {
    test(`sandbox ${field} ${Object.values(sandbox)[0]} (Docker's "unlimited") is refused by the worker, naming the field; nothing is created`, async () => {
      const { acts, calls } = fakeActivities();
      const id = uniqueId(`limit-${field}`);
      await withFakeWorker(env, acts, async (_client, taskQueue) => {
        const handle = await rawStart(taskQueue, id, { ...input(id), settings: { ...input(id).settings, sandbox } });
        await assert.rejects(handle.result(), (err) => {
          assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
          assert.equal(err.cause.type, 'InvalidInput');
          assert.match(err.cause.message, new RegExp(`settings\\.sandbox\\.${field}:`));
          return true;
        });
        assert.equal((await handle.describe()).typedSearchAttributes.get(ConversationStatusKey), 'ERROR');
      });
      assert.deepEqual(calls, []);
    });
  }

  test("a start input addressed to another conversation's workflow is refused", async () => {
    const { acts, calls } = fakeActivities();
    const id = uniqueId('addressed');
    await withFakeWorker(env, acts, async (_client, taskQueue) => {
      const handle = await rawStart(taskQueue, id, input(`${id}-other`));
      await assert.rejects(
        handle.result(),
        (err) =>
          err instanceof WorkflowFailedError && /is not this workflow's conversation/.test(String(err.cause?.message)),
      );
    });
    assert.deepEqual(calls, []);
  });

  test("another user's start of a live conversation is refused, and never sees its session key", async () => {
    const { acts } = fakeActivities();
    const id = uniqueId('owner');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      await assert.rejects(client.start({ ...input(id), userId: 'mallory' }), (err) => {
        assert.ok(err instanceof ConversationError);
        assert.equal(err.type, 'ConversationOwnedByAnotherUser');
        assert.doesNotMatch(err.message, /secret-session-key/);
        return true;
      });
      assert.equal((await client.start(input(id))).sessionApiKey, 'secret-session-key', 'the owner still joins');
      await client.close(id);
    });
  });

  test('a waitReady without the user (a caller implementing the contract with `{}`) is refused and gets no session key', async () => {
    const { acts } = fakeActivities();
    const id = uniqueId('no-waiter');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      for (const args of [{}, { userId: '' }, { userId: 7 }] as never[]) {
        await assert.rejects(client.handle(id).executeUpdate(waitReadyUpdate, { args: [args] }), (err) => {
          assert.ok(err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure);
          assert.equal(err.cause.type, 'InvalidInput');
          assert.match(err.cause.message, /waitReady input: userId: /);
          assert.doesNotMatch(err.cause.message, /secret-session-key/);
          return true;
        });
      }
      // Its owner still waits, and an operator's tool reads the owner from the status (ConversationClient.connection).
      assert.equal((await client.connection(id)).sessionApiKey, 'secret-session-key');
      await client.close(id);
    });
  });

  test('a start no sandbox host can take fails with NoSandboxHost at once, removes nothing anywhere and gives its slot back', async () => {
    // The conversations worker in hosts mode has no engine: a removal asked of it fails (here at once, for real
    // after minutes of retries), so the start must not ask.
    const { acts, calls } = fakeActivities({ removeFails: true });
    const id = uniqueId('no-host');
    const hosts = {
      ...createHostActivities({ sandboxHosts: true }),
      whereSandbox: async () => ({ here: false, canClaim: false }),
    };
    await withFakeWorker(env, { ...acts, ...hosts }, async (client) => {
      await assert.rejects(client.start(input(id)), (err) => {
        assert.ok(err instanceof ConversationError);
        assert.equal(err.type, 'ConversationStartFailed');
        return true;
      });
      const status = await client.status(id);
      assert.equal(status.status, 'ERROR');
      assert.equal(status.lastError?.type, 'NoSandboxHost');
      assert.deepEqual(
        status.warnings.filter((w) => /compensation/.test(w)),
        [],
      );
    });
    assert.deepEqual(calls, ['acquireSession', 'releaseSession']);
  });

  test('a resume whose sandbox host is lost fails at once and stays PAUSED, taking no slot (no conversation paused for it)', async () => {
    const { acts, calls } = fakeActivities();
    const hostId = `h${Date.now().toString(36)}`;
    let lost = false;
    const hosted: FakeActivities = {
      ...acts,
      // The registry's answer: this host, and (for a resume) whether its heartbeats stopped.
      // Sandbox hosts: the worker's engine holds none.
      async whereSandbox() {
        return { here: false, canClaim: false };
      },
      async placeSandbox(input) {
        calls.push('placeSandbox');
        return {
          hostId,
          taskQueue: hostTaskQueue(hostId),
          ...(input.current && lost && { lost: 'no heartbeat from its worker for 50 s' }),
        };
      },
    };
    // The host's worker: the same fakes, on the host's own queue.
    const hostWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: hostTaskQueue(hostId),
      activities: hosted,
      dataConverter: testWorkerDataConverter,
    });
    const id = uniqueId('lost-host');
    await hostWorker.runUntil(
      withFakeWorker(env, hosted, async (client) => {
        assert.equal((await client.start(input(id))).sandboxHost, hostId);
        await client.pause(id, 'idle');
        lost = true;
        const before = calls.length;
        await assert.rejects(
          client.resume(id),
          (err) => err instanceof ConversationError && /is lost/.test(err.message),
        );
        const status = await client.status(id);
        assert.equal(status.status, 'PAUSED');
        assert.equal(status.lastError?.type, 'SandboxHostLost');
        assert.deepEqual(calls.slice(before), ['placeSandbox'], 'no slot asked for, nothing sent to the host');
        lost = false;
        assert.equal((await client.resume(id)).status, 'RUNNING', 'back with its host');
        await client.close(id);
      }),
    );
  });

  test('a slot that cannot be given back while pausing ends in ERROR naming the cause; the sandbox is removed', async () => {
    const { acts, calls } = fakeActivities({ releaseFails: true });
    const id = uniqueId('release');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      const paused = await client.handle(id).executeUpdate(pauseUpdate, { args: [{ reason: 'test' }] });
      assert.equal(paused.status, 'ERROR', 'the waiting pause is answered');
      await assert.rejects(client.handle(id).result(), (err) => {
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
        assert.equal(err.cause.type, 'ConversationSessionReleaseFailed');
        assert.match(err.cause.message, /releaseSession: .*user-sessions-alice/);
        return true;
      });
      const status = await client.status(id);
      assert.equal(status.status, 'ERROR');
      assert.equal(status.lastError?.step, 'pausing');
      assert.equal((await client.handle(id).describe()).typedSearchAttributes.get(ConversationStatusKey), 'ERROR');
    });
    assert.deepEqual(calls.slice(-3), ['pauseRuntime', 'releaseSession', 'removeRuntime']);
  });

  test('a slot that cannot be given back while closing ends in ERROR, not a raw activity failure', async () => {
    const { acts } = fakeActivities({ releaseFails: true });
    const id = uniqueId('release-close');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      const closed = await client.close(id);
      assert.equal(closed.status, 'ERROR');
      await assert.rejects(
        client.handle(id).result(),
        (err) =>
          err instanceof WorkflowFailedError &&
          (err.cause as ApplicationFailure).type === 'ConversationSessionReleaseFailed',
      );
    });
  });

  test('a close while the slot is being asked for gives back the slot it may be granted later', async () => {
    const { acts, calls } = fakeActivities();
    // The user's registry is slow to answer (it waits for another conversation to pause).
    acts.acquireSession = async () => {
      calls.push('acquireSession');
      const ctx = Context.current();
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
    };
    const id = uniqueId('close-acquiring');
    await withFakeWorker(env, acts, async (client, taskQueue) => {
      const handle = await rawStart(taskQueue, id, input(id));
      await waitFor(
        async () => (await handle.query(statusQuery)).step === 'acquireSession' && calls.includes('acquireSession'),
        'the start to ask for a slot',
      );
      assert.equal((await client.close(id)).status, 'STOPPED');
    });
    assert.deepEqual(calls, ['acquireSession', 'releaseSession']);
  });

  test("closing deletes the conversation's resume schedules", async () => {
    const { acts, schedulesDeleted } = fakeActivities();
    const id = uniqueId('schedules');
    await withFakeWorker(env, acts, async (client) => {
      await client.start(input(id));
      await client.close(id);
    });
    assert.deepEqual(schedulesDeleted, [id]);
  });
});
