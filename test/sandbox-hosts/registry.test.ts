// The sandbox-host registry (SandboxHosts) on a real Temporal dev server, with no Docker: liveness by heartbeat with a
// bound (never one conversation's verdict), a registry started afresh learning its hosts from their heartbeats, and
// placements of closed conversations given back by themselves. The bounds are the registry's input, shortened here.
// needs: temporal
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createHostActivities, registryStartOptions } from '../../src/sandbox-hosts/activities';
import { listHosts, registerHost, sendHostHeartbeat, setHostDraining } from '../../src/sandbox-hosts/hosts';
import {
  SANDBOX_HOSTS_WORKFLOW_ID,
  hostLostSignal,
  hostsQuery,
  placeUpdate,
  registryShards,
  registryWorkflowId,
  shardOf,
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
    sendHostHeartbeat(env.client, { taskQueue, hostId, capacity, sandboxes });
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

  test('a registry of three shards: each places the conversations that hash to it on its share of every host', async () => {
    const shards = registryShards(3);
    const shard = (index: number) => env.client.workflow.getHandle(registryWorkflowId(index));
    try {
      await registerHost(env.client, { taskQueue, hostId: 'h1', capacity: 300, shards: 3 });
      await registerHost(env.client, { taskQueue, hostId: 'h2', capacity: 300, shards: 3 });
      for (const { index } of shards) {
        const hosts = await shard(index).query(hostsQuery);
        assert.deepEqual(
          hosts.map((h) => [h.hostId, h.capacity, h.declaredCapacity]),
          [
            ['h1', 100, 300],
            ['h2', 100, 300],
          ],
          `shard ${index}: a third of each host`,
        );
      }
      // A host worker's beat reaches every shard: one started afresh (terminated here) learns the host from it.
      await shard(2).terminate('reset by an operator');
      await sendHostHeartbeat(env.client, { taskQueue, hostId: 'h1', capacity: 300, sandboxes: 0, shards: 3 });
      await sendHostHeartbeat(env.client, { taskQueue, hostId: 'h2', capacity: 300, sandboxes: 0, shards: 3 });
      await eventually(async () =>
        assert.deepEqual(
          (await shard(2).query(hostsQuery)).map((h) => [h.hostId, h.capacity]),
          [
            ['h1', 100],
            ['h2', 100],
          ],
        ),
      );
      // Placed through the step's own activity, as a conversations worker told of three shards does.
      const acts = createHostActivities({ sandboxHosts: true, registryShards: 3 });
      const act = new MockActivityEnvironment({ taskQueue }, { client: env.client });
      const ids = Array.from({ length: 60 }, () => uniqueId('sharded'));
      for (const conversationId of ids) await act.run(acts.placeSandbox, { conversationId });
      for (const { index } of shards) {
        const placed = (await shard(index).query(hostsQuery)).flatMap((h) => h.placed).sort();
        assert.deepEqual(placed, ids.filter((id) => shardOf(id, 3).index === index).sort(), `shard ${index}`);
        assert.ok(placed.length > 0, `shard ${index} placed some of 60`);
      }
      // The operator's view adds the shards up: one record per host.
      const merged = await listHosts(env.client, 3);
      assert.deepEqual(
        merged.map((h) => [h.hostId, h.capacity, h.declaredCapacity]),
        [
          ['h1', 300, undefined],
          ['h2', 300, undefined],
        ],
      );
      assert.deepEqual(merged.flatMap((h) => h.placed).sort(), [...ids].sort());
      // Asked again, a conversation keeps its host; given back, it leaves its own shard.
      const [first] = ids;
      const where = merged.find((h) => h.placed.includes(first))!.hostId;
      const again: unknown = await act.run(acts.placeSandbox, { conversationId: first });
      assert.equal((again as { hostId: string }).hostId, where);
      await act.run(acts.releaseSandbox, { conversationId: first });
      await eventually(async () => {
        const placed = (await shard(shardOf(first, 3).index).query(hostsQuery)).flatMap((h) => h.placed);
        assert.ok(!placed.includes(first));
        assert.equal(placed.length, ids.filter((id) => shardOf(id, 3).index === shardOf(first, 3).index).length - 1);
      });
    } finally {
      for (const { index } of shards)
        await shard(index)
          .terminate('next test')
          .catch(() => {});
    }
  });

  test('a shard with no share of a host left refuses with its own number, even while another shard has room', async () => {
    const shard = (index: number) => env.client.workflow.getHandle(registryWorkflowId(index));
    try {
      // One sandbox of room over two shards: one shard has it, the other none.
      await registerHost(env.client, { taskQueue, hostId: 'tiny', capacity: 1, shards: 2 });
      const shares = await Promise.all([0, 1].map(async (i) => (await shard(i).query(hostsQuery))[0].capacity));
      assert.deepEqual([...shares].sort(), [0, 1]);
      const empty = shares.indexOf(0);
      const acts = createHostActivities({ sandboxHosts: true, registryShards: 2 });
      const act = new MockActivityEnvironment({ taskQueue }, { client: env.client });
      let id = uniqueId('refused');
      while (shardOf(id, 2).index !== empty) id = uniqueId('refused');
      await assert.rejects(act.run(acts.placeSandbox, { conversationId: id }), (err: Error & { type?: string }) => {
        assert.equal(err.type, 'NoSandboxHost');
        assert.match(err.message, new RegExp(`registry shard ${empty} of 2`));
        assert.match(err.message, /NESTOR_HOST_REGISTRY_SHARDS=2/);
        assert.match(err.message, /tiny: full \(0\)/);
        return true;
      });
    } finally {
      for (const i of [0, 1])
        await shard(i)
          .terminate('next test')
          .catch(() => {});
    }
  });

  test('a registry started for one shard refuses callers that count two, changing nothing, and ignores their beats', async () => {
    const mismatch = (err: Error & { type?: string }) => {
      assert.equal(err.type, 'RegistryShardsMismatch');
      assert.match(err.message, /shard 0 of 1/);
      assert.match(err.message, /NESTOR_HOST_REGISTRY_SHARDS=2/);
      assert.match(err.message, /terminate the sandbox-hosts\* workflows/);
      return true;
    };
    try {
      await startRegistry({});
      await registerHost(env.client, { taskQueue, hostId: 'h1', capacity: 2 });
      const acts = createHostActivities({ sandboxHosts: true, registryShards: 2 });
      const act = new MockActivityEnvironment({ taskQueue }, { client: env.client });
      let id = uniqueId('two-shards');
      while (shardOf(id, 2).index !== 0) id = uniqueId('two-shards');
      // Placed by shard 0 on the whole host while shard 1 places on half of it: refused instead, never retried.
      await assert.rejects(act.run(acts.placeSandbox, { conversationId: id }), mismatch);
      await assert.rejects(registerHost(env.client, { taskQueue, hostId: 'h2', capacity: 2, shards: 2 }), mismatch);
      await assert.rejects(setHostDraining(env.client, 'h1', true, 2), mismatch);
      await sendHostHeartbeat(env.client, { taskQueue, hostId: 'h1', capacity: 9, sandboxes: 0, shards: 2 });
      const hosts = await registry().query(hostsQuery);
      assert.deepEqual(
        hosts.map((h) => [h.hostId, h.capacity, h.placed, h.draining]),
        [['h1', 2, [], false]],
        'shard 0 as it was: no placement, no new host, not draining, its capacity not changed by the beat',
      );
      // A caller of the registry's own count is served as before.
      const same = createHostActivities({ sandboxHosts: true, registryShards: 1 });
      const placed: unknown = await act.run(same.placeSandbox, { conversationId: id });
      assert.equal((placed as { hostId: string }).hostId, 'h1');
    } finally {
      await env.client.workflow
        .getHandle(registryWorkflowId(1))
        .terminate('next test')
        .catch(() => {});
    }
  });
});
