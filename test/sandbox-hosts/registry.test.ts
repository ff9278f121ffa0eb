// The sandbox-host registry (SandboxHosts) on a real Temporal dev server, with no Docker: liveness by heartbeat with a
// bound (never one conversation's verdict), a registry started afresh learning its hosts from their heartbeats, and
// placements of closed conversations given back by themselves. The bounds are the registry's input, shortened here.
// needs: temporal
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createHostActivities, registryStartOptions } from '../../src/sandbox-hosts/activities';
import { listHosts, registerHost } from '../../src/sandbox-hosts/hosts';
import {
  SANDBOX_HOSTS_WORKFLOW_ID,
  hostHeartbeatSignal,
  hostLostSignal,
  placeUpdate,
  type SandboxHostsInput,
} from '../../src/sandbox-hosts/messages';
import { WORKFLOW_TYPES, conversationWorkflowId } from '../../src/shared/constants';
import { eventually } from '../helpers/eventually';
import { createTestEnv, testWorkerDataConverter, uniqueId, workflowBundle } from '../helpers/temporal';

describe('the sandbox-host registry heals itself (heartbeats, fresh start, closed conversations)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = uniqueId('registry');

  before(async () => {
    env = await createTestEnv();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      dataConverter: testWorkerDataConverter,
      activities: createHostActivities({ sandboxHosts: true }),
    });
    running = worker.run();
  });

  after(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  afterEach(async () => {
    await env.client.workflow
      .getHandle(SANDBOX_HOSTS_WORKFLOW_ID)
      .terminate('next test')
      .catch(() => {});
  });

  const registry = () => env.client.workflow.getHandle(SANDBOX_HOSTS_WORKFLOW_ID);
  const startRegistry = (input: SandboxHostsInput) =>
    env.client.workflow.start(WORKFLOW_TYPES.sandboxHosts, {
      ...registryStartOptions(taskQueue),
      args: [input],
    });
  const beat = (hostId: string, capacity = 2, sandboxes?: number) =>
    env.client.workflow.signalWithStart(WORKFLOW_TYPES.sandboxHosts, {
      ...registryStartOptions(taskQueue),
      signal: hostHeartbeatSignal,
      signalArgs: [{ hostId, capacity, sandboxes }],
    });
  const place = (conversationId: string) => registry().executeUpdate(placeUpdate, { args: [{ conversationId }] });

  test("one conversation's pickup timeout marks no host lost; a host whose heartbeats stop is, until its next one", async () => {
    await startRegistry({ lostAfterMs: 3000 });
    for (const hostId of ['h1', 'h2']) await registerHost(env.client, { taskQueue, hostId, capacity: 2 });
    // Any client can set a short pickup bound: its timeout is its own, not everyone's.
    await registry().signal(hostLostSignal, { hostId: 'h1', reason: 'createRuntime not picked up within 1000 ms' });
    assert.equal((await place('c1')).hostId, 'h1', 'h1 (first by ID among equals) still takes sandboxes');
    const h1 = (await listHosts(env.client)).find((h) => h.hostId === 'h1')!;
    assert.equal(h1.lost, undefined);
    assert.match(h1.reported ?? '', /not picked up within 1000 ms/);
    // h1's worker goes silent; h2's keeps beating.
    for (let i = 0; i < 4; i++) {
      await beat('h2');
      await sleep(1000);
    }
    assert.equal((await place('c2')).hostId, 'h2');
    assert.match((await listHosts(env.client)).find((h) => h.hostId === 'h1')?.lost ?? '', /no heartbeat/);
    await beat('h1');
    assert.equal((await listHosts(env.client)).find((h) => h.hostId === 'h1')?.lost, undefined, 'live again');
    assert.equal((await place('c3')).hostId, 'h1');
  });

  test('a registry started afresh learns its hosts, and how full they are, from their heartbeats', async () => {
    await registerHost(env.client, { taskQueue, hostId: 'h1', capacity: 2 });
    await registry().terminate('reset by an operator');
    // No registry runs now: the host worker's next beat (signal-with-start) starts one and registers the host in it.
    await beat('h1', 5);
    const hosts = await eventually(async () => {
      const hs = await listHosts(env.client);
      assert.equal(hs.length, 1);
      return hs;
    });
    assert.deepEqual(
      hosts.map((h) => [h.hostId, h.capacity, h.lost]),
      [['h1', 5, undefined]],
    );
    assert.equal((await place('after-reset')).hostId, 'h1');
    // It knows how full each host is from the beats too (its placements start empty): a full host takes no more.
    await beat('h1', 5, 5);
    await assert.rejects(place('one-too-many'), (err: Error) =>
      /h1: full \(5\)/.test(String((err as { cause?: Error }).cause?.message)),
    );
  });

  test('the placements of conversations whose workflow closed are given back by themselves', async () => {
    await startRegistry({ healEveryMs: 1000 });
    await registerHost(env.client, { taskQueue, hostId: 'h1', capacity: 3 });
    // A live conversation (its workflow runs) and two ended abnormally: one terminated, one never there at all.
    const live = uniqueId('live');
    const terminated = uniqueId('terminated');
    for (const id of [live, terminated])
      await env.client.workflow.start('NeverPolled', {
        taskQueue: uniqueId('nobody'),
        workflowId: conversationWorkflowId(id),
      });
    await env.client.workflow.getHandle(conversationWorkflowId(terminated)).terminate('operator');
    for (const id of [live, terminated, uniqueId('absent')]) assert.equal((await place(id)).hostId, 'h1');
    await eventually(async () => {
      await beat('h1', 3);
      assert.deepEqual((await listHosts(env.client))[0].placed, [live]);
    }, 20_000);
    await env.client.workflow.getHandle(conversationWorkflowId(live)).terminate('done');
  });
});
