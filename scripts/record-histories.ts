// Record the histories of representative runs into test/histories/, which `npm test` replays (test/service/replay.test.ts)
// so that a change breaking determinism fails CI. Runs on a real dev server, worker, Docker and the emulator image:
//   npm run record-histories
// Payloads are recorded without the encryption codec (the secrets in them are made up), so the files stay readable
// and replay needs no key; failures use nestor's failure converter, as in production.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import Docker from 'dockerode';
import { ConversationClient } from '../src/conversation/client';
import { FAILURE_CONVERTER_PATH } from '../src/codec/keys';
import { PROJECT_ROOT } from '../src/config';
import { containerName, poolNameFor } from '../src/runtime/container-spec';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { WORKFLOW_TYPES, conversationWorkflowId, poolWorkflowId } from '../src/shared/constants';
import { drainPool, poolStatus, resizePool, setPoolEnabled } from '../src/sandbox-pools/pools';
import type { StartConversationRequest } from '../src/shared/schemas';
import { userSessionsWorkflowId } from '../src/user-sessions/messages';
import { createWorker } from '../src/worker';
import { registryStart } from '../src/sandbox-hosts/activities';
import { registerHost, sendHostHeartbeat } from '../src/sandbox-hosts/hosts';
import {
  SANDBOX_HOSTS_WORKFLOW_ID,
  hostTaskQueue,
  hostsQuery,
  placeUpdate,
  registryWorkflowId,
  releaseSignal,
} from '../src/sandbox-hosts/messages';
import { createTestEnv, uniqueId, workflowBundle } from '../test/helpers/temporal';

// The emulator's fault knobs and quick boots are what this script measures against; the real image has its own runs.
process.env.NESTOR_RUNTIME ??= 'emulator';

export const HISTORIES_DIR = join(PROJECT_ROOT, 'test/histories');

async function main() {
  const env = await createTestEnv();
  const taskQueue = uniqueId('record');
  const dataConverter = { failureConverterPath: FAILURE_CONVERTER_PATH };
  const owner = uniqueId('record-owner');
  const worker = await createWorker({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    dataConverter,
    deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner }) },
  });
  const running = worker.run();
  const raw = new Client({ connection: env.connection, dataConverter });
  const client = new ConversationClient({ client: raw, taskQueue });
  const user = 'recorded-user';
  const input = (id: string, extra: Partial<StartConversationRequest> = {}): StartConversationRequest => ({
    conversationId: id,
    userId: user,
    timeouts: { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000 },
    settings: {
      agent: 'CodeActAgent',
      llmModel: 'anthropic/claude-sonnet-4-5',
      llmApiKey: 'sk-made-up',
      sandbox: { env: { CONVERSATION_START_DELAY_MS: '50' } },
    },
    gitProviderTokens: { github: { token: 'ghp-made-up' } },
    customSecrets: [{ name: 'MADE_UP', value: 'not-a-secret' }],
    ...extra,
  });
  const recorded: Array<{ name: string; workflowId: string }> = [];
  const record = (name: string, workflowId: string) => recorded.push({ name, workflowId });

  try {
    await client.start(input('rec-start-close', { initialMessage: 'hello' }));
    await client.close('rec-start-close', 'recorded');
    record('start-close', conversationWorkflowId('rec-start-close'));

    await client
      .start(
        input('rec-failed', {
          settings: { ...input('x').settings, sandbox: { env: { FAULT_CREATE_CONVERSATION_STATUS: '400' } } },
        }),
      )
      .catch(() => {});
    record('failed-start', conversationWorkflowId('rec-failed'));

    await client.start(input('rec-messages'));
    for (const m of ['one', 'two', 'three']) await client.sendMessage('rec-messages', { content: m });
    await client.close('rec-messages');
    record('messages', conversationWorkflowId('rec-messages'));

    await client.start(input('rec-pause-resume'));
    await client.pause('rec-pause-resume', 'recorded pause');
    await client.sendMessage('rec-pause-resume', { content: 'wakes it up' });
    await client.pause('rec-pause-resume', 'again');
    await client.resume('rec-pause-resume');
    await raw.workflow.execute(WORKFLOW_TYPES.resumeConversation, {
      taskQueue,
      workflowId: 'rec-resume-workflow',
      args: [{ conversationId: 'rec-pause-resume', message: 'scheduled' }],
    });
    record('resume-workflow', 'rec-resume-workflow');
    await client.close('rec-pause-resume');
    record('pause-resume', conversationWorkflowId('rec-pause-resume'));

    await client.start(input('rec-continue-as-new', { continueAsNewAfterEvents: 60 }));
    for (let i = 0; i < 12; i++) await client.sendMessage('rec-continue-as-new', { content: `message ${i}` });
    await client.close('rec-continue-as-new');
    record('continue-as-new', conversationWorkflowId('rec-continue-as-new'));

    // The sandbox restarted under a running conversation (new port): the delivery recovers it (patch
    // recover-unreachable-sandbox), then looks for its earlier post before posting again (delivery-cursor).
    await client.start(input('rec-recover'));
    await client.sendMessage('rec-recover', { content: 'before the restart' });
    await new Docker().getContainer(containerName('rec-recover')).restart({ t: 0 });
    await client.sendMessage('rec-recover', { content: 'after the restart' });
    await client.close('rec-recover');
    record('recover-sandbox', conversationWorkflowId('rec-recover'));

    // The idle timer runs out while the agent still works (it answers after 4 s): not idle yet (idle-counts-agent).
    await client.start(
      input('rec-idle-busy', {
        settings: { ...input('x').settings, sandbox: { env: { AGENT_REPLY_DELAY_MS: '4000' } } },
        timeouts: { idleTimeoutMs: 1500 },
      }),
    );
    await client.sendMessage('rec-idle-busy', { content: 'take your time' });
    while ((await client.status('rec-idle-busy')).status !== 'PAUSED') await new Promise((r) => setTimeout(r, 200));
    await client.close('rec-idle-busy');
    record('idle-agent-busy', conversationWorkflowId('rec-idle-busy'));

    // One user at the limit (3): the fourth start checks the slots (self-healing-slots), then evicts the idlest.
    const crowd = ['rec-crowd-1', 'rec-crowd-2', 'rec-crowd-3', 'rec-crowd-4'];
    for (const id of crowd) await client.start(input(id, { userId: 'recorded-crowd' }));
    for (const id of crowd) await client.close(id);
    record('user-sessions-at-limit', userSessionsWorkflowId('recorded-crowd'));

    await raw.workflow.execute(WORKFLOW_TYPES.reapOrphanRuntimes, {
      taskQueue,
      workflowId: 'rec-reaper',
      args: [{ graceMs: 0 }],
    });
    record('reaper', 'rec-reaper');
    record('user-sessions', userSessionsWorkflowId(user));

    // A warm pool: filled, claimed by a start (which says so), resized, disabled, drained.
    const pool = poolNameFor(RUNTIME_IMAGES.emulator);
    await resizePool(raw, { taskQueue, pool, size: 1 });
    while ((await poolStatus(raw, pool)).ready < 1) await new Promise((r) => setTimeout(r, 100));
    const pooled = await client.start(input('rec-pooled', { settings: { ...input('x').settings, sandbox: {} } }));
    if (pooled.startPath !== 'pool') throw new Error(`rec-pooled started ${pooled.startPath}: ${pooled.coldReason}`);
    await client.close('rec-pooled');
    record('pooled-start', conversationWorkflowId('rec-pooled'));
    await resizePool(raw, { taskQueue, pool, size: 2 });
    while ((await poolStatus(raw, pool)).ready < 2) await new Promise((r) => setTimeout(r, 100));
    await setPoolEnabled(raw, pool, false);
    await drainPool(raw, pool);
    record('sandbox-pool', poolWorkflowId(pool));

    // The current agent server's protocol (V1), on the emulator's V1 image: a start with a message, two messages, a
    // pause, a message that resumes it, a close (nested steps take the V1 branch; the command sequence is the same).
    const v1Queue = uniqueId('record-v1');
    const v1Worker = await createWorker({
      connection: env.nativeConnection,
      taskQueue: v1Queue,
      workflowBundle: await workflowBundle(),
      dataConverter,
      deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES['emulator-v1'], owner }) },
    });
    const v1Run = v1Worker.run();
    const v1Client = new ConversationClient({ client: raw, taskQueue: v1Queue });
    const v1Input = input('rec-v1', { initialMessage: 'hello V1' });
    const v1Info = await v1Client.start({ ...v1Input, settings: { ...v1Input.settings, sandbox: undefined } });
    if (v1Info.protocol !== 'v1') throw new Error(`rec-v1 started on ${v1Info.protocol}`);
    for (const m of ['one', 'two']) await v1Client.sendMessage('rec-v1', { content: m });
    await v1Client.pause('rec-v1', 'recorded pause');
    await v1Client.sendMessage('rec-v1', { content: 'wakes it up' });
    await v1Client.close('rec-v1');
    record('v1-life', conversationWorkflowId('rec-v1'));
    v1Worker.shutdown();
    await v1Run;

    // Sandbox hosts: a service whose sandboxes go to a registered host (its own worker on `sandbox-host-rec-host`):
    // placed, a message, paused, resumed on its host, closed (placement released).
    const hostedQueue = uniqueId('record-hosted');
    const hosted = await createWorker({
      connection: env.nativeConnection,
      taskQueue: hostedQueue,
      workflowBundle: await workflowBundle(),
      dataConverter,
      deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner }), sandboxHosts: true },
    });
    const startHostWorker = async () =>
      createWorker({
        connection: env.nativeConnection,
        taskQueue: hostTaskQueue('rec-host'),
        workflowBundle: await workflowBundle(),
        dataConverter,
        deps: { runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner }) },
      });
    let hostWorker = await startHostWorker();
    const hostedRuns = [hosted.run()];
    let hostRun = hostWorker.run();
    await registerHost(raw, { taskQueue: hostedQueue, hostId: 'rec-host', capacity: 2 });
    const hostedClient = new ConversationClient({ client: raw, taskQueue: hostedQueue });
    const onHost = await hostedClient.start(input('rec-hosted', { initialMessage: 'on a host' }));
    if (onHost.sandboxHost !== 'rec-host') throw new Error(`rec-hosted placed on ${onHost.sandboxHost}`);
    await hostedClient.sendMessage('rec-hosted', { content: 'delivered on the host' });
    await hostedClient.pause('rec-hosted', 'recorded pause');
    await hostedClient.resume('rec-hosted');
    await hostedClient.close('rec-hosted');
    record('hosted-start', conversationWorkflowId('rec-hosted'));

    // Its host lost while running (patch host-lost-pauses): the message is not picked up and fails, the conversation
    // pauses; with the host's worker back, a resume brings it back on that host and a close removes it.
    const lostTimeouts = { ...input('x').timeouts, hostPickupTimeoutMs: 1000 };
    await hostedClient.start(input('rec-host-lost', { timeouts: lostTimeouts }));
    hostWorker.shutdown();
    await hostRun;
    const lost = await hostedClient.sendMessage('rec-host-lost', { content: 'to a lost host' }).then(
      () => undefined,
      (err: { type?: string }) => err.type,
    );
    if (lost !== 'SandboxHostLost') throw new Error(`rec-host-lost: the message's answer was ${lost ?? 'a delivery'}`);
    while ((await hostedClient.status('rec-host-lost')).status !== 'PAUSED')
      await new Promise((r) => setTimeout(r, 100));
    hostWorker = await startHostWorker();
    hostRun = hostWorker.run();
    await hostedClient.resume('rec-host-lost');
    await hostedClient.close('rec-host-lost');
    record('host-lost', conversationWorkflowId('rec-host-lost'));
    record('sandbox-hosts', SANDBOX_HOSTS_WORKFLOW_ID);

    // A registry of two shards (NESTOR_HOST_REGISTRY_SHARDS=2): its second shard, which holds its share of the host
    // (the first is the one-shard registry above, started before shards). A registration, a beat with the host's
    // count, a placement, a resume's placement on its host, a release.
    const second = { index: 1, of: 2 };
    await registerHost(raw, { taskQueue: hostedQueue, hostId: 'rec-host', capacity: 6, shards: 2 });
    await sendHostHeartbeat(raw, { taskQueue: hostedQueue, hostId: 'rec-host', capacity: 6, sandboxes: 1, shards: 2 });
    const placeInSecond = (conversationId: string, current?: string) =>
      raw.workflow.executeUpdateWithStart(placeUpdate, {
        args: [{ conversationId, exclude: [], current }],
        startWorkflowOperation: registryStart(hostedQueue, second),
      });
    await placeInSecond('rec-sharded');
    await placeInSecond('rec-sharded-resumed', 'rec-host');
    await raw.workflow.getHandle(registryWorkflowId(1)).signal(releaseSignal, { conversationId: 'rec-sharded' });
    await raw.workflow.getHandle(registryWorkflowId(1)).query(hostsQuery);
    record('sandbox-hosts-shard', registryWorkflowId(1));
    hosted.shutdown();
    hostWorker.shutdown();
    await Promise.all([...hostedRuns, hostRun]);

    mkdirSync(HISTORIES_DIR, { recursive: true });
    // RECORD_ONLY=<name>,…: write just those (a new path's recording), leaving the others as they were recorded.
    const only = process.env.RECORD_ONLY?.split(',').filter(Boolean);
    if (!only) for (const f of readdirSync(HISTORIES_DIR)) if (f.endsWith('.json')) rmSync(join(HISTORIES_DIR, f));
    for (const { name, workflowId } of recorded.filter((r) => !only || only.includes(r.name))) {
      // Walk back from the latest run through continue-as-new to the first, then write them in order.
      const runs = [];
      let runId: string | undefined;
      for (;;) {
        const history = await raw.workflow.getHandle(workflowId, runId).fetchHistory();
        runs.unshift(history);
        runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
        if (!runId) break;
      }
      runs.forEach((history, n) => {
        const file = `${name}${n ? `-run${n + 1}` : ''}.json`;
        writeFileSync(
          join(HISTORIES_DIR, file),
          `${JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1)}\n`,
        );
        console.log(`recorded ${file}: ${history.events?.length} events`);
      });
    }
  } finally {
    worker.shutdown();
    await running;
    await env.teardown();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
