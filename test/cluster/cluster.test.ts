// nestor on a real Temporal cluster: two temporal-server processes on PostgreSQL (src/dev/cluster.ts), a worker and
// the client on frontend `a`, sandboxes on Docker with the emulator. The core scenarios, then faults: server `b`
// killed (SIGKILL) during starts and deliveries, PostgreSQL restarted, both servers restarted.
// needs: temporal, docker, cluster
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { msToTs } from '@temporalio/common/lib/time';
import { ConversationClient } from '../../src/conversation/client';
import { loadConfig, type NestorConfig } from '../../src/config';
import { startWorker } from '../../src/worker';
import type { LocalCluster } from '../../src/dev/cluster';
import { ConversationStatusKey } from '../../src/shared/constants';
import { clusterEnv, startTestCluster } from '../helpers/cluster';
import { containersFor } from '../helpers/docker';
import { e2eInput, startE2e, userMessages, type E2e } from '../helpers/e2e';
import { eventually, waitFor } from '../helpers/eventually';
import { testWorkerDataConverter, uniqueId } from '../helpers/temporal';
import { preflight, preflightProblems } from '../../src/preflight';
import { ConfigError } from '../../src/errors';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';

type Env = Awaited<ReturnType<ReturnType<typeof clusterEnv>>>;

describe('nestor on a Temporal cluster (two server processes, PostgreSQL)', () => {
  let cluster: LocalCluster;
  let lab: E2e<Env>;
  let client: ConversationClient;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    cluster = await startTestCluster({
      // Temporal's own defaults, for namespaces the start-up checks must find wanting.
      dynamicConfig: {
        'history.maxInFlightUpdates': [{ namespace: 'nestor-bare', value: 10 }],
        'frontend.enableUpdateWorkflowExecution': [{ namespace: 'nestor-no-updates', value: false }],
      },
    });
    lab = await startE2e(made, { env: clusterEnv(cluster, 'a') });
    client = lab.client;
  });

  after(async () => {
    await lab?.stop();
    await cluster?.stop({ wipe: true });
  });

  /** The user messages the conversation's nested server holds, in order. */
  const delivered = async (id: string) =>
    (await userMessages(await client.connection(id), id)).map((e) => e.args?.content);

  test('start, messages, pause/resume, a resume schedule, list by search attribute, close; the UI reads the cluster', async () => {
    const id = uniqueId('cl-life');
    const userId = uniqueId('cl-user');
    const info = await client.start(input(id, { userId, initialMessage: 'hello' }));
    assert.equal(info.status, 'RUNNING');
    await client.sendMessage(id, 'first');
    await client.sendMessage(id, 'second');
    assert.equal((await client.pause(id, 'cluster test')).status, 'PAUSED');
    assert.equal((await client.resume(id)).status, 'RUNNING');
    await client.sendMessage(id, 'after resume');
    assert.deepEqual(await delivered(id), ['hello', 'first', 'second', 'after resume']);

    // A resume schedule (Temporal Schedules on the cluster) resumes the paused conversation with its message.
    await client.pause(id, 'for the schedule');
    const scheduleId = await client.scheduleResume(id, { every: '1h', message: 'from the schedule' });
    await lab.env.client.schedule.getHandle(scheduleId).trigger();
    await waitFor(async () => (await client.status(id)).messagesDelivered >= 4, "the schedule's message");
    assert.equal((await client.status(id)).status, 'RUNNING');
    await client.cancelScheduledResume(scheduleId);

    // SQL visibility on PostgreSQL: nestor's search attributes registered and filled.
    const listed = await eventually(async () => {
      const rows = await client.list({ userId });
      assert.deepEqual(
        rows.map((r) => r.conversationId),
        [id],
      );
      return rows;
    });
    assert.equal(listed[0].status, 'RUNNING');
    const closed = await client.close(id, 'cluster test done');
    assert.equal(closed.status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);
    await eventually(async () => {
      const desc = await client.handle(id).describe();
      assert.equal(desc.typedSearchAttributes.get(ConversationStatusKey), 'STOPPED');
    });

    await cluster.startUi();
    const ns = (await (await fetch(`${cluster.uiUrl}/api/v1/namespaces/default`)).json()) as {
      namespaceInfo?: { name?: string };
    };
    assert.equal(ns.namespaceInfo?.name, 'default', "the UI server answers from the cluster's frontend");
  });

  test("start:cluster's two workers (one per frontend, as `nestor cluster` runs them) own the same sandboxes: started and paused on one, resumed, answered and closed on the other", async () => {
    // Exactly what runCluster does: one worker per frontend address, the rest of the configuration alike.
    const base: NestorConfig = {
      ...loadConfig(),
      taskQueue: uniqueId('cl-two'),
      runtimeImage: RUNTIME_IMAGES.emulator,
      poolSize: 0,
      reaper: { intervalMs: 0, graceMs: 0 },
    };
    const serve = async (via: 'a' | 'b') => {
      const w = await startWorker({ ...base, temporalAddress: cluster.address(via) }, testWorkerDataConverter);
      const running = w.worker.run();
      return async () => {
        w.worker.shutdown();
        await running;
        await w.connection.close();
      };
    };
    const two = new ConversationClient({ client: lab.env.client, taskQueue: base.taskQueue });
    const id = uniqueId('cl-two');
    const stopA = await serve('a');
    try {
      // A user of its own: a user's slot registry runs on its first asker's queue, which this test's workers leave.
      await two.start(input(id, { userId: uniqueId('cl-two-user'), initialMessage: 'on worker a' }));
      assert.equal((await two.pause(id, 'handing over to worker b')).status, 'PAUSED');
    } finally {
      await stopA();
    }
    const stopB = await serve('b');
    try {
      // Before NESTOR_SERVICE_ID the owner label was the address's spelling: worker b refused a's sandbox for good.
      const resumed = await two.resume(id);
      assert.equal(resumed.status, 'RUNNING', JSON.stringify(resumed.lastError));
      await two.sendMessage(id, 'on worker b');
      assert.deepEqual(
        (await userMessages(await two.connection(id), id)).map((e) => e.args?.content),
        ['on worker a', 'on worker b'],
      );
      assert.equal((await containersFor(id)).length, 1, 'the same sandbox, adopted');
      assert.equal((await two.close(id)).status, 'STOPPED');
      assert.deepEqual(await containersFor(id), []);
    } finally {
      await stopB();
    }
  });

  test('server b killed (SIGKILL) during starts and deliveries: every start RUNNING once, every message delivered once, in order', async () => {
    // Each conversation its own user: nestor's per-user limit (two running) would pause the oldest otherwise.
    const own = (id: string, extra = {}) => input(id, { userId: `u-${id}`, ...extra });
    const ids = [0, 1, 2].map(() => uniqueId('cl-kill'));
    await Promise.all(ids.map((id) => client.start(own(id))));
    const later = [0, 1, 2].map(() => uniqueId('cl-kill-new'));
    const texts = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
    let acked = 0;
    const sends = ids.map(async (id) => {
      for (const t of texts) {
        await client.sendMessage(id, t);
        acked++;
      }
    });
    await waitFor(() => acked >= 3, 'the first deliveries');
    // Starts under way as the process dies: half of the history shards and task queue partitions were b's.
    const starts = later.map((id) => client.start(own(id, { initialMessage: 'started across the kill' })));
    await cluster.killServer('b', 'SIGKILL');
    const results = await Promise.allSettled([...sends, ...starts]);
    const failed = results
      .filter((r) => r.status === 'rejected')
      .map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failed, [], 'no start or delivery failed while only server a served');
    for (const id of ids) assert.deepEqual(await delivered(id), texts, `${id}: each message once, in order`);
    for (const id of later) {
      assert.equal((await client.status(id)).status, 'RUNNING');
      assert.equal((await containersFor(id)).length, 1, `${id}: one sandbox`);
      assert.deepEqual(await delivered(id), ['started across the kill']);
    }
    await cluster.startServer('b');
    await Promise.all([...ids, ...later].map((id) => client.close(id)));
    for (const id of [...ids, ...later]) assert.deepEqual(await containersFor(id), []);
  });

  test('PostgreSQL restarted under a running conversation: it keeps working, and new starts and messages work', async () => {
    const id = uniqueId('cl-pg');
    await client.start(input(id));
    const sending = (async () => {
      for (const t of ['p1', 'p2', 'p3', 'p4']) await client.sendMessage(id, t);
    })();
    await cluster.restartPostgres();
    await sending;
    await client.sendMessage(id, 'after the restart');
    const other = uniqueId('cl-pg-new');
    await client.start(input(other, { initialMessage: 'new after the restart' }));
    assert.deepEqual(await delivered(id), ['p1', 'p2', 'p3', 'p4', 'after the restart']);
    assert.deepEqual(await delivered(other), ['new after the restart']);
    await Promise.all([id, other].map((c) => client.close(c)));
  });

  test('both server processes killed and started again: conversations carry on from PostgreSQL, workers reconnect', async () => {
    const id = uniqueId('cl-both');
    const info = await client.start(input(id, { initialMessage: 'before' }));
    await cluster.killServer('a', 'SIGKILL');
    await cluster.killServer('b', 'SIGKILL');
    await cluster.startServer('a');
    await cluster.startServer('b');
    const again = await client.connection(id);
    assert.equal(again.status, 'RUNNING');
    assert.equal(again.runtimeId, info.runtimeId, 'the same sandbox, not a second one');
    await client.sendMessage(id, 'after');
    assert.deepEqual(await delivered(id), ['before', 'after']);
    const other = uniqueId('cl-both-new');
    await client.start(input(other));
    assert.equal((await client.close(other)).status, 'STOPPED');
    assert.equal((await client.close(id)).status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);
  });

  test("start-up checks: a namespace set up for nestor passes; missing search attributes, a low update limit, updates off, an unknown namespace, an unreachable Docker engine and a host worker's conversations queue nobody polls are each named with what to fix", async () => {
    const connection = { address: cluster.address('b') };
    const runtime = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator });
    assert.deepEqual(await preflightProblems({ connection, namespace: 'default', runtime }), []);

    for (const namespace of ['nestor-bare', 'nestor-no-updates'])
      await lab.env.connection.workflowService
        .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') })
        .catch((err: Error) => assert.match(err.message, /already/i));
    // A namespace just registered reaches the frontends' caches within about 10 s.
    const bare = await eventually(async () => {
      const p = await preflightProblems({ connection, namespace: 'nestor-bare' });
      assert.ok(p.length > 0 && !p.some((l) => /not found/i.test(l)), p.join('\n'));
      return p;
    }, 30_000);
    for (const sa of ['ConversationId', 'UserId', 'ConversationStatus'])
      assert.ok(
        bare.some((l) => l.includes(`search-attribute create -n nestor-bare --name ${sa} --type Keyword`)),
        `names ${sa} and the command: ${bare.join('\n')}`,
      );
    assert.ok(
      bare.some((l) => /at most 10 updates in flight .*history\.maxInFlightUpdates/.test(l)),
      `the update limit: ${bare.join('\n')}`,
    );

    const off = await eventually(async () => {
      const p = await preflightProblems({ connection, namespace: 'nestor-no-updates' });
      assert.ok(
        p.some((l) => l.includes('frontend.enableUpdateWorkflowExecution: true')),
        p.join('\n'),
      );
      return p;
    }, 30_000);
    assert.ok(off.every((l) => l.startsWith('namespace nestor-no-updates: ')));

    const unknown = await preflightProblems({ connection, namespace: 'no-such-namespace' });
    assert.equal(unknown.length, 1);
    assert.match(unknown[0], /^namespace no-such-namespace: .*temporal operator namespace create -n no-such-namespace/);

    const noEngine = new DockerRuntimeProvider({
      image: RUNTIME_IMAGES.emulator,
      docker: new Docker({ socketPath: '/nonexistent/docker.sock' }),
    });
    const engine = await preflightProblems({ connection, namespace: 'default', runtime: noEngine });
    assert.equal(engine.length, 1);
    assert.match(engine[0], /^sandbox engine: .*check that the Docker engine runs and is reachable \(DOCKER_HOST\)/);
    await assert.rejects(
      preflight({ connection, namespace: 'nestor-bare' }),
      (err: Error) => err instanceof ConfigError && /the worker cannot start, 4 problem/.test(err.message),
    );

    // A host worker's: the conversations' queue (where the host registry runs) must have a worker.
    const polled = { taskQueue: lab.taskQueue, waitMs: 0 };
    assert.deepEqual(await preflightProblems({ connection, namespace: 'default', hostRegistry: polled }), []);
    const unpolled = { taskQueue: 'nobody-polls-this', waitMs: 2000 };
    const lonely = await preflightProblems({ connection, namespace: 'default', hostRegistry: unpolled });
    assert.equal(lonely.length, 1, lonely.join('\n'));
    assert.match(
      lonely[0],
      /^task queue nobody-polls-this: no worker polls it.*NESTOR_SANDBOX_HOSTS=true and NESTOR_TASK_QUEUE=nobody-polls-this/,
    );
  });
});
