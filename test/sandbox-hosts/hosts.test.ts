// Sandboxes on two Docker hosts: the machine's engine and a second dockerd (own socket, data root, no bridge), each
// with a host worker (`nestor host-worker`, a child process polling `sandbox-host-<id>`), and the conversations'
// worker placing sandboxes between them. A real dev server, real engines, the emulator image.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../../src/config';
import type { ConversationClient, ConversationError } from '../../src/conversation/client';
import { ExtraDockerEngine } from '../../src/dev/extra-docker-engine';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { listHosts, registerHost, setHostDraining } from '../../src/sandbox-hosts/hosts';
import { LABELS } from '../../src/shared/constants';
import { poolNameFor } from '../../src/runtime/container-spec';
import { drainPool, poolStatus } from '../../src/sandbox-pools/pools';
import { reaperScheduleId } from '../../src/reaper/schedule';
import { containersFor } from '../helpers/docker';
import { e2eInput, startE2e, userMessages, type E2e } from '../helpers/e2e';
import { waitFor } from '../helpers/eventually';
import { HostWorkers } from '../helpers/host-worker';
import { uniqueId } from '../helpers/temporal';

describe('sandboxes on two Docker hosts, each with its host worker', () => {
  let lab: E2e;
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  const engine2 = new ExtraDockerEngine(join(loadConfig().dataDir, `e2-${process.pid}`));
  let hostWorkers: HostWorkers;
  const made = new Set<string>();
  const base = e2eInput(made);
  // Each conversation its own user (the per-user limit is not what is tested); a short pickup bound for lost hosts.
  const input = (id: string, pickupMs = 60_000, extra = {}) =>
    base(id, { userId: `u-${id}`, timeouts: { ...base(id).timeouts, hostPickupTimeoutMs: pickupMs }, ...extra });

  const startHostWorker = (hostId: string, dockerHost?: string, env: Record<string, string> = {}) =>
    hostWorkers.start(hostId, { dockerHost, env });
  const killHostWorker = (hostId: string) => hostWorkers.kill(hostId);

  /** The engine that holds a conversation's sandbox, by looking in both. */
  async function engineOf(id: string): Promise<string[]> {
    const found: string[] = [];
    if ((await containersFor(id)).length) found.push('h1');
    const on2 = await engine2.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.conversationId}=${id}`] },
    });
    if (on2.length) found.push('h2');
    return found;
  }

  before(async () => {
    await engine2.start();
    await engine2.loadImage(RUNTIME_IMAGES.emulator);
    lab = await startE2e(made, { sandboxHosts: true });
    ({ env, client } = lab);
    hostWorkers = new HostWorkers({ address: env.address, taskQueue: lab.taskQueue, client: env.client });
    await startHostWorker('h1');
    await startHostWorker('h2', engine2.dockerHost);
  });

  after(async () => {
    await hostWorkers?.killAll();
    await lab?.stop();
    await engine2.destroy();
  });

  test('conversations spread over both hosts; each sandbox is on the host its status names; close frees the room', async () => {
    const ids = [0, 1, 2, 3].map(() => uniqueId('hosts'));
    const infos = await Promise.all(ids.map((id) => client.start(input(id, 60_000, { initialMessage: 'hi' }))));
    const placed = infos.map((i) => i.sandboxHost);
    assert.deepEqual([...placed].sort(), ['h1', 'h1', 'h2', 'h2'], 'two on each: the emptier host first');
    for (const [n, id] of ids.entries()) {
      assert.deepEqual(await engineOf(id), [placed[n]], `${id}: its sandbox is on ${placed[n]} only`);
      await client.sendMessage(id, 'second');
      assert.deepEqual(
        (await userMessages(await client.connection(id), id)).map((e) => e.args?.content),
        ['hi', 'second'],
      );
      const desc = await client.handle(id).describe();
      assert.equal(desc.memo?.sandboxHost, placed[n], 'the memo names the host');
    }
    const hosts = await listHosts(env.client);
    assert.deepEqual(
      hosts.map((h) => [h.hostId, h.placed.length]),
      [
        ['h1', 2],
        ['h2', 2],
      ],
    );
    await Promise.all(ids.map((id) => client.close(id)));
    for (const id of ids) assert.deepEqual(await engineOf(id), []);
    assert.deepEqual(
      (await listHosts(env.client)).map((h) => h.placed.length),
      [0, 0],
    );
  });

  test("a host worker killed and started again: its conversation's message waits for it and is delivered once", async () => {
    await setHostDraining(env.client, 'h2', true);
    const id = uniqueId('hosts-kill');
    assert.equal((await client.start(input(id))).sandboxHost, 'h1');
    await setHostDraining(env.client, 'h2', false);
    await killHostWorker('h1');
    const sending = client.sendMessage(id, 'while h1 was down');
    await new Promise((r) => setTimeout(r, 1500));
    await startHostWorker('h1');
    await sending;
    assert.deepEqual(
      (await userMessages(await client.connection(id), id)).map((e) => e.args?.content),
      ['while h1 was down'],
    );
    await client.close(id);
    assert.deepEqual(await engineOf(id), []);
  });

  test('drain: new sandboxes go to the other host; a paused conversation on the drained host resumes there and says why', async () => {
    const paused = uniqueId('hosts-drain');
    await setHostDraining(env.client, 'h1', true);
    assert.equal((await client.start(input(paused))).sandboxHost, 'h2');
    await client.pause(paused, 'before the drain');
    await setHostDraining(env.client, 'h1', false);
    await setHostDraining(env.client, 'h2', true);
    const fresh = [uniqueId('hosts-drain'), uniqueId('hosts-drain')];
    for (const id of fresh) assert.equal((await client.start(input(id))).sandboxHost, 'h1', 'nothing new on h2');
    const resumed = await client.resume(paused);
    assert.equal(resumed.status, 'RUNNING');
    assert.equal(resumed.sandboxHost, 'h2');
    assert.ok(
      resumed.warnings.some((w) => /h2 is draining; resumed there anyway: .*cannot move/.test(w)),
      resumed.warnings.join('\n'),
    );
    await assert.rejects(setHostDraining(env.client, 'nope', true), (e: Error) => e.name === 'HostNotFound');
    await setHostDraining(env.client, 'h2', false);
    await Promise.all([paused, ...fresh].map((id) => client.close(id)));
  });

  test("a host worker whose NESTOR_TASK_QUEUE is not the conversations' refuses to start, naming the registry's queue", async () => {
    await assert.rejects(startHostWorker('h3', undefined, { NESTOR_TASK_QUEUE: 'another-service' }), (e: Error) => {
      assert.match(e.message, /host registry: it runs on task queue (\S+) .*NESTOR_TASK_QUEUE is another-service/);
      assert.ok(e.message.includes(`set NESTOR_TASK_QUEUE=${lab.taskQueue}`), e.message);
      return true;
    });
    assert.ok(!(await listHosts(env.client)).some((h) => h.hostId === 'h3'), 'h3 was not registered');
  });

  test('a host that never picks up its work is reported lost and the start placed again elsewhere', async () => {
    // A host registered with the most free room but no worker: every placement picks it first.
    await registerHost(env.client, { taskQueue: lab.taskQueue, hostId: 'ghost', capacity: 1000 });
    const id = uniqueId('hosts-ghost');
    const info = await client.start(input(id, 2_000));
    assert.equal(info.status, 'RUNNING');
    assert.ok(['h1', 'h2'].includes(info.sandboxHost!), `placed again on a live host, not ${info.sandboxHost}`);
    assert.ok(info.warnings.some((w) => /sandbox host ghost lost: .*placing the sandbox again/.test(w)));
    const ghost = (await listHosts(env.client)).find((h) => h.hostId === 'ghost');
    // Shown, not a verdict: whether a host is lost is its heartbeat's to say (the ghost's is lost after the bound).
    assert.match(ghost?.reported ?? '', /did not pick up createRuntime/);
    await setHostDraining(env.client, 'ghost', true);
    await client.close(id);
  });

  test("a host lost for good: its conversation's message fails with SandboxHostLost within the bound and it pauses; a close ends in ERROR; the host's own reaper removes the sandbox when it is back", async () => {
    await setHostDraining(env.client, 'h1', true);
    const id = uniqueId('hosts-lost');
    assert.equal((await client.start(input(id, 3_000))).sandboxHost, 'h2');
    await setHostDraining(env.client, 'h1', false);
    await killHostWorker('h2');

    // The delivery and then the recovery's resume each wait at most the pickup bound.
    await assert.rejects(client.sendMessage(id, 'to a lost host'), (e: ConversationError) => {
      assert.equal(e.type, 'SandboxHostLost', e.message);
      assert.match(e.message, /did not pick up .* in time/);
      return true;
    });
    // Nothing there answers: it does not stay RUNNING.
    await waitFor(async () => (await client.status(id)).status === 'PAUSED', `${id} paused`);
    const paused = await client.status(id);
    assert.match(paused.pauseReason ?? '', /sandbox host h2 lost/);
    assert.equal(paused.lastError?.type, 'SandboxHostLost', JSON.stringify(paused.lastError));
    assert.equal(paused.sandboxHost, 'h2', 'it still names the host its data is on');
    // While the host is gone, a message tries to resume it there and fails within the bound; it stays PAUSED.
    await assert.rejects(client.sendMessage(id, 'still gone'), /did not pick up resumeRuntime in time/);
    assert.equal((await client.status(id)).status, 'PAUSED');

    // The close cannot remove the sandbox: ERROR, saying why, rather than a clean STOPPED.
    const closed = await client.close(id, 'host gone');
    assert.equal(closed.status, 'ERROR');
    assert.equal(closed.lastError?.type, 'SandboxHostLost');
    assert.equal(closed.lastError?.step, 'closing');
    assert.match(closed.lastError?.message ?? '', /removeRuntime: .*did not pick up removeRuntime in time/);
    await assert.rejects(client.handle(id).result(), (e: WorkflowFailedError) => {
      assert.equal((e.cause as ApplicationFailure).type, 'ConversationCloseFailed');
      return true;
    });
    const h2 = (await listHosts(env.client)).find((h) => h.hostId === 'h2');
    assert.ok(!h2?.placed.includes(id), 'its room on h2 is given back');
    assert.deepEqual(await engineOf(id), ['h2'], 'the sandbox is still on h2: nothing could remove it');

    // h2 comes back with its reaper on (no grace): one pass of its own schedule removes what the close could not.
    await startHostWorker('h2', engine2.dockerHost, {
      NESTOR_REAPER_INTERVAL_MS: '3600000',
      NESTOR_REAPER_GRACE_MS: '0',
    });
    const schedule = env.client.schedule.getHandle(reaperScheduleId('h2'));
    await schedule.trigger();
    await waitFor(async () => (await engineOf(id)).length === 0, `the sandbox of ${id} reaped on h2`, {
      timeoutMs: 60_000,
    });
    const volumes = await engine2.docker.listVolumes({ filters: { label: [`${LABELS.conversationId}=${id}`] } });
    assert.deepEqual(volumes.Volumes ?? [], [], 'its volume too');
    const action = (await schedule.describe()).info.recentActions.at(-1)?.action;
    assert.ok(action?.type === 'startWorkflow', 'the pass was started by the schedule');
    const pass = await env.client.workflow.getHandle(action.workflow.workflowId).result();
    assert.ok(pass.removed.includes(id), JSON.stringify(pass));
  });

  test("a host back after its conversation paused for it: the host's reaper stops the sandbox left running; a message resumes it there", async () => {
    await setHostDraining(env.client, 'h2', true);
    const id = uniqueId('hosts-back');
    assert.equal((await client.start(input(id, 3_000))).sandboxHost, 'h1');
    await setHostDraining(env.client, 'h2', false);
    await killHostWorker('h1');
    await assert.rejects(client.sendMessage(id, 'while h1 is down'), /SandboxHostLost|did not pick up/);
    await waitFor(async () => (await client.status(id)).status === 'PAUSED', `${id} paused`);
    // The pause never reached h1: its sandbox (and agent) still run there, with nothing to stop them but h1's reaper.
    const state = async () => (await containersFor(id)).map((c) => c.State);
    assert.deepEqual(await state(), ['running']);
    await startHostWorker('h1', undefined, { NESTOR_REAPER_INTERVAL_MS: '3600000', NESTOR_REAPER_GRACE_MS: '0' });
    const schedule = env.client.schedule.getHandle(reaperScheduleId('h1'));
    await schedule.trigger();
    await waitFor(async () => (await state())[0] === 'exited', `the sandbox of ${id} stopped on h1`, {
      timeoutMs: 60_000,
    });
    const action = (await schedule.describe()).info.recentActions.at(-1)?.action;
    assert.ok(action?.type === 'startWorkflow');
    const pass = await env.client.workflow.getHandle(action.workflow.workflowId).result();
    assert.deepEqual(pass.stopped, [id], JSON.stringify(pass));
    await client.sendMessage(id, 'with h1 back');
    assert.equal((await client.status(id)).status, 'RUNNING');
    assert.deepEqual(
      (await userMessages(await client.connection(id), id)).map((e) => e.args?.content),
      ['with h1 back'],
    );
    await client.close(id);
    assert.deepEqual(await engineOf(id), []);
  });

  test("one host's engine stopped: its conversation's message fails and it is PAUSED naming the engine (bounded); its worker refuses to start without it; with the engine back it resumes", async () => {
    await setHostDraining(env.client, 'h1', true);
    const id = uniqueId('hosts-engine');
    assert.equal((await client.start(input(id, 5_000))).sandboxHost, 'h2');
    await setHostDraining(env.client, 'h1', false);
    await engine2.stop();
    // The message cannot reach the sandbox; the recovery cannot start it again: the message fails and the
    // conversation is PAUSED saying why (after the failed resume's clean-up has tried its stop for a Docker hiccup's
    // worth, about 2.5 minutes: bounded by the CLEANUP retries in steps.ts).
    await assert.rejects(client.sendMessage(id, 'into the void'), (e: ConversationError) => {
      assert.equal(e.type, 'ConversationResumeFailed', e.message);
      return true;
    });
    const status = await client.status(id);
    assert.equal(status.status, 'PAUSED');
    assert.equal(status.lastError?.type, 'RuntimeStartFailed', JSON.stringify(status.lastError));
    assert.equal(status.lastError?.step, 'resumeRuntime');
    assert.match(status.lastError?.message ?? '', /the Docker engine does not answer/);
    await killHostWorker('h2');
    await assert.rejects(startHostWorker('h2', engine2.dockerHost), /sandbox engine: .*DOCKER_HOST/);
    await engine2.start();
    await startHostWorker('h2', engine2.dockerHost);
    // With its engine back, the conversation resumes on it, with its data, and takes messages again.
    const resumed = await client.resume(id);
    assert.equal(resumed.status, 'RUNNING');
    await client.sendMessage(id, 'after the engine came back');
    assert.deepEqual(
      (await userMessages(await client.connection(id), id)).map((e) => e.args?.content),
      ['after the engine came back'],
    );
    await client.close(id);
    assert.deepEqual(await engineOf(id), []);
  });

  test("a host's warm pool is its own: a start placed on that host claims from it", async () => {
    const pool = `${poolNameFor(RUNTIME_IMAGES.emulator)}-h2`;
    await killHostWorker('h2');
    await startHostWorker('h2', engine2.dockerHost, { NESTOR_POOL_SIZE: '1' });
    // The host registers first, then starts its pool: not found until then.
    await waitFor(
      async () => ((await poolStatus(env.client, pool).catch(() => undefined))?.ready ?? 0) >= 1,
      `pool ${pool} ready`,
    );
    const members = await engine2.docker.listContainers({ all: true, filters: { label: [`${LABELS.pool}=${pool}`] } });
    assert.equal(members.length, 1, "the member is in h2's engine");
    await setHostDraining(env.client, 'h1', true);
    const id = uniqueId('hosts-pool');
    // No sandbox env of its own, so the pooled member fits it.
    const info = await client.start(input(id, 60_000, { settings: { ...base(id).settings, sandbox: {} } }));
    await setHostDraining(env.client, 'h1', false);
    assert.equal(info.sandboxHost, 'h2');
    assert.equal(info.startPath, 'pool', info.coldReason);
    await client.close(id);
    assert.deepEqual(await engineOf(id), []);
    await drainPool(env.client, pool);
  });
});
