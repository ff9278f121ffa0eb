// The two protocols under one workflow, on the emulator's two images (V0 and V1): a conversation keeps the protocol of
// the image it started on, whatever the worker's image is now; a V1 conversation's whole life on the V1 emulator.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { containersFor, removeContainers, volumesFor } from '../helpers/docker';
import { userMessages } from '../helpers/e2e';
import { eventsUntil, said } from '../helpers/agent-server';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';

describe('protocols: V0 and V1 conversations under one workflow (Temporal + Docker + the emulator images)', () => {
  let env: TestWorkflowEnvironment;
  const made = new Set<string>();
  const v0 = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator });
  const v1 = new DockerRuntimeProvider({ image: RUNTIME_IMAGES['emulator-v1'] });
  // Each test's own user: a user's slot registry runs on the task queue of the worker that first asked for it.
  const input = (id: string, userId = 'protocols'): StartConversationRequest => {
    made.add(id);
    return {
      conversationId: id,
      userId,
      settings: { agent: 'CodeActAgent', llmModel: 'openai/gpt-4o', llmApiKey: 'sk-protocols' },
      customSecrets: [{ name: 'MY_SECRET', value: 'protocols-secret' }],
      timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000 },
    };
  };

  before(async () => {
    env = await createTestEnv();
  });
  after(async () => {
    await removeContainers(made);
    await env?.teardown();
  });

  test("a V0 conversation paused before the worker's image became V1 resumes, talks and closes on V0; new ones start on V1", async () => {
    const taskQueue = uniqueId('protocols');
    const before = await startWorker(env, taskQueue, { runtime: v0 });
    const id = uniqueId('stays-v0');
    let client: ConversationClient = before.client;
    try {
      // An agent V1 has no counterpart for: fine on V0, and still fine when it resumes on V0 after the switch.
      const req = input(id);
      const info = await client.start({
        ...req,
        settings: { ...req.settings, agent: 'ReadOnlyAgent' },
        initialMessage: 'on V0',
      });
      assert.equal(info.protocol, 'v0');
      assert.equal((await client.pause(id)).status, 'PAUSED');
    } finally {
      await before.stop();
    }
    // The operator moves the default to V1: the same queue, a worker of the V1 image.
    const afterSwitch = await startWorker(env, taskQueue, { runtime: v1 });
    client = afterSwitch.client;
    try {
      await client.sendMessage(id, 'after the switch');
      const resumed = await client.connection(id);
      assert.equal(resumed.status, 'RUNNING');
      assert.equal(resumed.protocol, 'v0', 'it keeps the protocol of its sandbox');
      assert.deepEqual(
        (await userMessages(resumed, id)).map((e) => e.args?.content),
        ['on V0', 'after the switch'],
      );
      const fresh = uniqueId('new-v1');
      const v1info = await client.start({ ...input(fresh), initialMessage: 'on V1' });
      assert.equal(v1info.protocol, 'v1');
      await eventsUntil(v1info, (ev) => said(ev, 'agent').includes('echo: on V1'), 30_000);
      assert.equal((await client.close(id)).status, 'STOPPED');
      assert.equal((await client.close(fresh)).status, 'STOPPED');
      for (const c of [id, fresh]) {
        assert.deepEqual(await containersFor(c), []);
        assert.deepEqual(await volumesFor(c), []);
      }
    } finally {
      await afterSwitch.stop();
    }
  });

  test('a V1 conversation on the V1 emulator: start, messages once each, a repeated ID, pause and resume, close', async () => {
    const w = await startWorker(env, uniqueId('v1-emulator'), { runtime: v1 });
    try {
      const id = uniqueId('v1-emu');
      const info = await w.client.start({ ...input(id, 'protocols-v1'), initialMessage: 'first' });
      assert.equal(info.protocol, 'v1');
      const acks = await Promise.all(
        Array.from({ length: 5 }, () => w.client.sendMessage(id, { messageId: 'same', content: 'once' })),
      );
      assert.equal(new Set(acks.map((a) => a.nestedEventId)).size, 1, 'one ID, one event');
      await w.client.sendMessage(id, 'second');
      await w.client.pause(id);
      await w.client.sendMessage(id, 'while paused');
      const live = await w.client.connection(id);
      const events = await eventsUntil(live, (ev) => said(ev, 'agent').includes('echo: while paused'), 30_000);
      assert.deepEqual(said(events, 'user'), ['first', 'once', 'second', 'while paused']);
      assert.equal((await w.client.close(id)).status, 'STOPPED');
      assert.deepEqual(await containersFor(id), []);
    } finally {
      await w.stop();
    }
  });

  test('on V1 as on V0: the per-user limit pauses the least recently active, and a scheduled resume delivers its message', async () => {
    const w = await startWorker(env, uniqueId('v1-limits'), { runtime: v1, maxConversationsPerUser: 1 });
    try {
      const user = uniqueId('v1-limited');
      const [a, b] = [uniqueId('v1-lim'), uniqueId('v1-lim')];
      await w.client.start(input(a, user));
      await w.client.start(input(b, user));
      const paused = await w.client.status(a);
      assert.deepEqual([paused.status, paused.pauseReason], ['PAUSED', 'too many conversations']);
      // A schedule resumes it (pausing the other) and delivers its message.
      const scheduleId = await w.client.scheduleResume(a, { every: '1h', message: 'from the schedule' });
      await env.client.schedule.getHandle(scheduleId).trigger();
      const deadline = Date.now() + 60_000;
      while ((await w.client.status(a)).messagesDelivered < 1) {
        assert.ok(Date.now() < deadline, "the schedule's message was never delivered");
        await new Promise((r) => setTimeout(r, 250));
      }
      const resumed = await w.client.connection(a);
      assert.equal(resumed.protocol, 'v1');
      const events = await eventsUntil(resumed, (ev) => said(ev, 'agent').includes('echo: from the schedule'), 30_000);
      assert.deepEqual(said(events, 'user'), ['from the schedule']);
      assert.equal((await w.client.status(b)).pauseReason, 'too many conversations');
      await w.client.cancelScheduledResume(scheduleId);
      await Promise.all([a, b].map((c) => w.client.close(c)));
      for (const c of [a, b]) assert.deepEqual(await containersFor(c), []);
    } finally {
      await w.stop();
    }
  });
});
