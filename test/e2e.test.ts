// End to end: a real dev server, a real worker, real Docker and the emulator image.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient, ConversationError } from '../src/conversation/client';
import { loadConfig } from '../src/config';
import { NestedClient } from '../src/nested/client';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES } from '../src/runtime/image-manifest';
import { ConversationStatusKey, REAPER_SCHEDULE_ID, conversationWorkflowId } from '../src/shared/constants';
import type { StartConversationRequest } from '../src/shared/schemas';
import { containersFor, docker, removeContainers, volumesFor } from './helpers/docker';
import { eventually, waitFor } from './helpers/eventually';
import { createTestEnv, startWorker, uniqueId } from './helpers/temporal';

const run = promisify(execFile);
const CLI = require.resolve('../src/cli');

describe('StartConversation end to end (Temporal + Docker + emulator)', () => {
  let env: TestWorkflowEnvironment;
  let stopWorker: () => Promise<void>;
  let client: ConversationClient;
  let taskQueue: string;
  const made = new Set<string>();
  // A local OAuth token endpoint: GitHub refreshes succeed, GitLab's fail.
  const refreshes: string[] = [];
  const oauthServer = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    refreshes.push(`${req.url} ${new URLSearchParams(body).get('refresh_token')}`);
    if (req.url === '/gitlab') return res.writeHead(500).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ access_token: 'ghp-refreshed', refresh_token: 'r2', expires_in: 28_800 }));
  });

  const input = (id: string, extra: Partial<StartConversationRequest> = {}): StartConversationRequest => {
    made.add(id);
    return {
      conversationId: id,
      userId: 'e2e-user',
      settings: {
        agent: 'CodeActAgent',
        llmModel: 'anthropic/claude-sonnet-4-5',
        llmApiKey: 'sk-e2e-llm-key',
        sandbox: { env: { CONVERSATION_START_DELAY_MS: '100' } },
      },
      customSecrets: [{ name: 'MY_SECRET', value: 'custom-secret-value' }],
      timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000 },
      ...extra,
    };
  };

  before(async () => {
    env = await createTestEnv();
    oauthServer.listen(0, '127.0.0.1');
    await once(oauthServer, 'listening');
    const oauthBase = `http://127.0.0.1:${(oauthServer.address() as AddressInfo).port}`;
    taskQueue = uniqueId('e2e');
    ({ client, stop: stopWorker } = await startWorker(env, taskQueue, {
      runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }),
      oauth: {
        github: { tokenUrl: `${oauthBase}/github`, clientId: 'id' },
        gitlab: { tokenUrl: `${oauthBase}/gitlab` },
      },
    }));
  });

  after(async () => {
    await stopWorker?.();
    await removeContainers(made);
    oauthServer.close();
    await env?.teardown();
  });

  test('start → RUNNING; three messages delivered once, in order; close removes the container', async () => {
    const id = uniqueId('life');
    const info = await client.start(input(id, { initialMessage: 'hello' }));
    assert.equal(info.status, 'RUNNING');
    assert.match(info.url!, /^http:\/\/127\.0\.0\.1:\d+\/api\/conversations\//);
    assert.ok(info.sessionApiKey && info.sessionApiKey.length >= 43, 'a 32-byte random session key');
    assert.ok(
      info.timings?.runtimeReadyMs !== undefined && info.timings.startToRunningMs! >= info.timings.runtimeReadyMs,
    );
    const [container] = await containersFor(id);
    assert.equal(container.Labels['nestor.managed'], 'true');
    assert.equal(container.Labels['nestor.user-id'], 'e2e-user');
    assert.equal(container.Ports.find((p) => p.PrivatePort === 3000)?.IP, '127.0.0.1');

    const acks = [];
    for (const text of ['first', 'second', 'third']) acks.push(await client.sendMessage(id, text));
    assert.deepEqual(
      acks.map((a) => typeof a.eventId),
      ['number', 'number', 'number'],
    );

    const nested = NestedClient.forConversation(info);
    const events = await nested.allEvents(id);
    const userMessages = events
      .filter((e) => e.source === 'user' && e.action === 'message')
      .map((e) => e.args?.content);
    assert.deepEqual(userMessages, ['hello', 'first', 'second', 'third'], 'each message exactly once, in order');
    assert.deepEqual(
      acks.map((a) => a.eventId),
      events.filter((e) => e.source === 'user' && e.args?.content !== 'hello').map((e) => e.id),
    );
    // The echo agent answered, and the key is needed to read any of it.
    await assert.rejects(
      NestedClient.forConversation({ ...info, sessionApiKey: 'wrong' }).getEvents(id),
      /answered 401/,
    );

    const status = await client.status(id);
    assert.equal(status.messagesDelivered, 3);
    assert.equal(status.sessionApiKey, undefined);

    const closed = await client.close(id, 'e2e done');
    assert.equal(closed.status, 'STOPPED');
    assert.deepEqual(await containersFor(id), [], 'no container with this conversation label remains');
    assert.deepEqual(await volumesFor(id), [], 'nor its data volume');
    const desc = await client.handle(id).describe();
    assert.equal(desc.status.name, 'COMPLETED');
    assert.equal(desc.typedSearchAttributes.get(ConversationStatusKey), 'STOPPED');
  });

  test('git tokens expiring within 4 h are refreshed before the nested server gets them; a failed refresh warns and keeps the old one', async () => {
    const id = uniqueId('tokens');
    const soon = new Date(Date.now() + 60 * 60 * 1000).toISOString();
    const later = new Date(Date.now() + 24 * 60 * 60 * 1000).toISOString();
    refreshes.length = 0;
    const req = input(id, {
      gitProviderTokens: {
        github: { token: 'ghp-old', refreshToken: 'r-gh', expiresAt: soon, host: 'github.com' },
        gitlab: { token: 'glpat-old', refreshToken: 'r-gl', expiresAt: soon },
        bitbucket: { token: 'bb-old', refreshToken: 'r-bb', expiresAt: later },
      },
    });
    // The tokens the emulator's provider check accepts: the refreshed one and the two kept.
    req.settings.sandbox = {
      ...req.settings.sandbox,
      env: { ...req.settings.sandbox?.env, VALID_GIT_TOKENS: 'ghp-refreshed,glpat-old,bb-old' },
    };
    const info = await client.start(req);
    assert.equal(info.status, 'RUNNING', 'a failed refresh never fails the start');
    assert.deepEqual(refreshes.sort(), ['/github r-gh', '/gitlab r-gl']);
    assert.deepEqual(info.warnings, ['gitlab: refresh failed (token endpoint answered 500); kept the old token']);
    const nested = NestedClient.forConversation(info);
    assert.deepEqual((await nested.getSettings()).provider_tokens_set, {
      github: 'github.com',
      gitlab: null,
      bitbucket: null,
    });
    await client.close(id);
  });

  test('a conversation without egress runs on the internal network, reached at its address', async () => {
    const id = uniqueId('noegress');
    const req = input(id);
    req.settings.sandbox = { ...req.settings.sandbox, egress: false };
    const info = await client.start(req);
    assert.match(info.url!, /^http:\/\/\d+\.\d+\.\d+\.\d+:3000\/api\/conversations\//);
    assert.equal(typeof (await client.sendMessage(id, 'inside the fence')).eventId, 'number');
    await client.close(id);
    assert.deepEqual(await containersFor(id), []);
  });

  test('20 concurrent starts of one ID: one run, one container, the same runtime ID for all', async () => {
    const id = uniqueId('twenty');
    const results = await Promise.all(Array.from({ length: 20 }, () => client.start(input(id))));
    assert.equal(new Set(results.map((r) => r.runtimeId)).size, 1);
    assert.ok(results.every((r) => r.status === 'RUNNING'));
    assert.equal((await containersFor(id)).length, 1);
    const runs = [];
    for await (const wf of env.client.workflow.list({ query: `WorkflowId = '${conversationWorkflowId(id)}'` }))
      runs.push(wf.runId);
    assert.equal(runs.length, 1, `one workflow run, saw ${runs.length}`);
    await client.close(id);
    assert.deepEqual(await containersFor(id), []);
  });

  test('the emulator failing POST /api/conversations: the workflow fails naming that step, ERROR, no container left', async () => {
    const id = uniqueId('failing');
    const req = input(id);
    req.settings.sandbox = { env: { FAULT_CREATE_CONVERSATION_STATUS: '500' } };
    await assert.rejects(client.start(req), (err) => {
      assert.ok(err instanceof ConversationError);
      assert.equal(err.type, 'ConversationStartFailed');
      assert.match(
        err.message,
        /^createConversation failed: createConversation: POST \/api\/conversations answered 500/,
      );
      // ...and what to check.
      assert.ok(err.message.includes(`; check 'docker logs nestor-conv-${id}'`), err.message);
      assert.doesNotMatch(err.message, /sk-e2e-llm-key|custom-secret-value/);
      return true;
    });
    const status = await client.status(id);
    assert.equal(status.status, 'ERROR');
    assert.equal(status.lastError?.step, 'createConversation');
    assert.deepEqual(await containersFor(id), []);
    const desc = await client.handle(id).describe();
    assert.equal(desc.status.name, 'FAILED');
    assert.equal(desc.typedSearchAttributes.get(ConversationStatusKey), 'ERROR');
    // An operator's query `ConversationStatus="ERROR"` finds it.
    await waitFor(
      async () => (await client.list({ userId: 'e2e-user', status: 'ERROR' })).some((c) => c.conversationId === id),
      'visibility to find it by ConversationStatus="ERROR"',
    );
  });

  test('an unknown agent fails acquireSession as InvalidSettings without creating a container', async () => {
    const id = uniqueId('badagent');
    const req = input(id);
    req.settings.agent = 'NoSuchAgent';
    await assert.rejects(
      client.start(req),
      /acquireSession failed: acquireSession: settings\.agent: unknown agent 'NoSuchAgent'/,
    );
    assert.equal((await client.status(id)).lastError?.type, 'InvalidSettings');
    assert.deepEqual(await containersFor(id), []);
  });

  test('invalid input: a clear error naming each field, and no workflow', async () => {
    const id = uniqueId('invalid');
    const bad = {
      conversationId: id,
      userId: '',
      settings: { llmModel: '', extra: 1 },
    } as unknown as StartConversationRequest;
    await assert.rejects(client.start(bad), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'InvalidInput');
      assert.match(err.message, /userId: /);
      assert.match(err.message, /settings\.llmModel: /);
      assert.match(err.message, /settings: Unrecognized key: "extra"/);
      return true;
    });
    await assert.rejects(client.handle(id).describe(), /not found/i);
  });

  test('the CLI: invalid input exits 2 and starts nothing; start, status and close work and mask the key', async () => {
    const cliEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      NESTOR_TASK_QUEUE: taskQueue,
      LLM_API_KEY: 'sk-cli-key',
    };
    const bad = await run('node', [CLI, 'start', '-c', 'bad/id', '-u', 'u', '--model', 'anthropic/claude-x'], {
      env: cliEnv,
    }).catch((e) => e);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error \(InvalidInput\): invalid start input: conversationId: /);

    const id = uniqueId('cli');
    made.add(id);
    const { stdout } = await run(
      'node',
      [CLI, '--json', 'start', '-c', id, '-u', 'cli-user', '--model', 'anthropic/claude-x', '-m', 'hi from the CLI'],
      { env: cliEnv },
    );
    const started = JSON.parse(stdout);
    assert.equal(started.status, 'RUNNING');
    assert.match(started.sessionApiKey, /…\(\d+ chars, use --show-secrets\)$/);
    assert.doesNotMatch(stdout, /sk-cli-key/);
    const status = await run('node', [CLI, 'status', id], { env: cliEnv });
    assert.match(status.stdout, new RegExp(`conversation ${id} \\(user cli-user\\): RUNNING`));
    const paused = await run('node', [CLI, 'pause', id, '-r', 'cli pause'], { env: cliEnv });
    assert.match(paused.stdout, /: PAUSED/);
    assert.match(paused.stdout, /paused: .* \(cli pause\)/);
    const sched = JSON.parse(
      (await run('node', [CLI, '--json', 'schedule', id, '--every', '1h', '-m', 'later'], { env: cliEnv })).stdout,
    );
    assert.match(
      (await run('node', [CLI, 'schedules', id], { env: cliEnv })).stdout,
      new RegExp(`${sched.scheduleId}\\t${id}\\tnext .*\\tmessage: later`),
    );
    await run('node', [CLI, 'unschedule', sched.scheduleId], { env: cliEnv });
    assert.match((await run('node', [CLI, 'schedules', id], { env: cliEnv })).stdout, /no scheduled resumes/);
    const badSchedule = await run('node', [CLI, 'schedule', id, '--every', 'soon'], { env: cliEnv }).catch((e) => e);
    assert.equal(badSchedule.code, 2);
    assert.match(badSchedule.stderr, /every: /);
    assert.match((await run('node', [CLI, 'resume', id], { env: cliEnv })).stdout, /: RUNNING/);
    // What was said, read from the nested server with the conversation's own key (never printed).
    const said = (await run('node', [CLI, 'events', id], { env: cliEnv })).stdout;
    assert.match(said, /^#\d+ user: hi from the CLI$/m);
    assert.match(said, /^#\d+ agent: echo: hi from the CLI$/m);
    assert.doesNotMatch(said, /session/i);
    await waitFor(
      async () =>
        (await run('node', [CLI, 'list', '-u', 'cli-user', '-s', 'RUNNING'], { env: cliEnv })).stdout.includes(
          `${id}\tcli-user\tRUNNING`,
        ),
      '`nestor list` to show it RUNNING',
      { everyMs: 200 },
    );
    const closed = await run('node', [CLI, '--json', 'close', id, '-r', 'cli test'], { env: cliEnv });
    assert.equal(JSON.parse(closed.stdout).status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);
  });

  test('`nestor worker` serves its task queue from the environment and drains on SIGINT', async () => {
    const queue = uniqueId('cli-worker');
    const child = spawn('node', [CLI, 'worker'], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, NESTOR_TASK_QUEUE: queue, NESTOR_METRICS_PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = once(child, 'exit');
    try {
      const id = uniqueId('via-cli-worker');
      const other = new ConversationClient({ client: env.client, taskQueue: queue });
      const info = await other.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal((await other.close(id)).status, 'STOPPED');
      assert.deepEqual(await containersFor(id), []);
      // The worker made the orphan reaper's schedule at start.
      const reaper = await env.client.schedule.getHandle(REAPER_SCHEDULE_ID).describe();
      assert.equal(reaper.action.type === 'startWorkflow' && reaper.action.taskQueue, queue);
      await env.client.schedule.getHandle(REAPER_SCHEDULE_ID).delete();
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`task queue ${queue}`));
  });

  const userMessages = async (info: { url?: string; sessionApiKey?: string }, id: string) => {
    const nested = NestedClient.forConversation(info);
    return (await nested.allEvents(id)).filter((e) => e.source === 'user' && e.action === 'message');
  };

  test('a message sent while starting and one sent while paused are each delivered once, after ready, in order', async () => {
    const id = uniqueId('queued');
    const req = input(id, { timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000, idleTimeoutMs: 1500 } });
    req.settings.sandbox = { env: { CONVERSATION_START_DELAY_MS: '1500' } };
    const starting = client.start(req);
    // Sent while the nested conversation is still STARTING (update-with-start made the workflow already): its
    // readiness wait has begun, and the emulator holds the conversation STARTING for 1.5 s more.
    await waitFor(
      async () => (await client.status(id).catch(() => undefined))?.step === 'waitForReady',
      'the start to wait for readiness',
    );
    assert.equal((await client.status(id)).status, 'STARTING', 'the message below really is sent while starting');
    const early = client.sendMessage(id, { content: 'sent while starting', messageId: 'early-1' });
    const info = await starting;
    await early;
    await waitFor(async () => (await client.status(id)).status === 'PAUSED', 'the idle pause');
    const [container] = await containersFor(id);
    assert.equal(container.State, 'exited', 'paused: the container is stopped, not removed');
    await client.sendMessage(id, { content: 'sent while paused', messageId: 'paused-1' });
    const resumed = await client.start(req); // attach: gives the (possibly new) URL and key
    const msgs = await userMessages(resumed, id);
    assert.deepEqual(
      msgs.map((e) => e.args?.content),
      ['sent while starting', 'sent while paused'],
    );
    assert.equal(resumed.runtimeId, info.runtimeId, 'the same container came back');
    await client.close(id);
    assert.deepEqual(await containersFor(id), []);
  });

  test('the same message ID sent 20 times at once is delivered once', async () => {
    const id = uniqueId('dup');
    const info = await client.start(input(id));
    const acks = await Promise.all(
      Array.from({ length: 20 }, () => client.sendMessage(id, { content: 'only once', messageId: 'same-id' })),
    );
    assert.equal(new Set(acks.map((a) => a.eventId)).size, 1);
    assert.equal((await userMessages(info, id)).filter((e) => e.args?.content === 'only once').length, 1);
    assert.equal((await client.status(id)).messagesDelivered, 1);
    await client.close(id);
  });

  test('a forced continue-as-new while 50 messages are sent at once: all delivered once, in acceptance order, across runs', async () => {
    const id = uniqueId('can');
    const info = await client.start(input(id, { continueAsNewAfterEvents: 120 }));
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.sendMessage(id, { content: `m${i}`, messageId: `can-${i}` })),
    );
    const msgs = await userMessages(info, id);
    const contents = msgs.map((e) => e.args?.content);
    assert.equal(contents.length, 50);
    assert.equal(new Set(contents).size, 50, 'each exactly once');
    // Every acknowledgement points at its own message's event: delivery order is the order the workflow accepted them.
    for (const [i, ack] of acks.entries()) assert.equal(msgs.find((e) => e.id === ack.eventId)?.args?.content, `m${i}`);
    const status = await client.status(id);
    assert.ok((status.runNumber ?? 1) >= 2, `ran across ${status.runNumber} runs`);
    assert.equal(status.messagesDelivered, 50);
    await client.close(id);
  });

  test('a resume schedule triggered now resumes a paused conversation and delivers its message; listing and cancelling work', async () => {
    const id = uniqueId('sched');
    const info = await client.start(input(id));
    await client.pause(id, 'for the schedule');
    const scheduleId = await client.scheduleResume(id, { every: '1h', message: 'from the schedule' });
    const other = await client.scheduleResume(id, { at: new Date(Date.now() + 24 * 3_600_000).toISOString() });
    const listed = await eventually(async () => {
      const rows = await client.listScheduledResumes(id);
      assert.deepEqual(rows.map((s) => s.scheduleId).sort(), [scheduleId, other].sort());
      return rows;
    });
    assert.equal(listed.find((s) => s.scheduleId === scheduleId)?.message, 'from the schedule');
    await env.client.schedule.getHandle(scheduleId).trigger();
    await waitFor(
      async () => (await client.status(id)).messagesDelivered >= 1,
      "the schedule's message to be delivered",
    );
    assert.equal((await client.status(id)).status, 'RUNNING');
    const again = await client.start(input(id));
    assert.deepEqual(
      (await userMessages(again, id)).map((e) => e.args?.content),
      ['from the schedule'],
    );
    assert.equal(again.runtimeId, info.runtimeId);
    await client.cancelScheduledResume(scheduleId);
    await client.cancelScheduledResume(other);
    await eventually(async () => assert.deepEqual(await client.listScheduledResumes(id), []));
    await assert.rejects(client.cancelScheduledResume(scheduleId), /scheduleId: no schedule/);
    await client.close(id);
  });

  test('ResumeConversation on a conversation that is not running fails non-retryably with ConversationNotFound', async () => {
    await assert.rejects(
      env.client.workflow.execute('ResumeConversation', {
        taskQueue,
        workflowId: uniqueId('resume-nobody'),
        args: [{ conversationId: 'nobody-here' }],
      }),
      (err) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = (err.cause as ActivityFailure).cause as ApplicationFailure;
        assert.equal(cause.type, 'ConversationNotFound');
        assert.match(cause.message, /conversation nobody-here does not exist/);
        return true;
      },
    );
  });

  test("close deletes the conversation's resume schedules; a scheduled resume of the closed conversation ends at once", async () => {
    const id = uniqueId('sched-close');
    await client.start(input(id));
    await client.scheduleResume(id, { every: '1h', message: 'never' });
    await eventually(async () => assert.equal((await client.listScheduledResumes(id)).length, 1));
    await client.close(id);
    await eventually(async () => assert.deepEqual(await client.listScheduledResumes(id), []));
    // Had one fired (or been started by hand): ConversationNotFound on its first attempt, not five retries.
    const handle = await env.client.workflow.start('ResumeConversation', {
      taskQueue,
      workflowId: uniqueId('resume-closed'),
      args: [{ conversationId: id, message: 'late' }],
    });
    await assert.rejects(
      handle.result(),
      (err) =>
        err instanceof WorkflowFailedError &&
        ((err.cause as ActivityFailure).cause as ApplicationFailure).type === 'ConversationNotFound',
    );
    const attempts = (await handle.fetchHistory()).events
      ?.filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1]);
  });

  test('list filters by user and by status', async () => {
    const alice = uniqueId('alice');
    const bob = uniqueId('bob');
    const [a1, a2, b1] = [uniqueId('la'), uniqueId('la'), uniqueId('lb')];
    await Promise.all([
      client.start(input(a1, { userId: alice })),
      client.start(input(a2, { userId: alice })),
      client.start(input(b1, { userId: bob })),
    ]);
    await client.pause(a2);
    const listed = (f: Parameters<typeof client.list>[0], expected: string[]) =>
      eventually(async () =>
        assert.deepEqual((await client.list(f)).map((c) => c.conversationId).sort(), [...expected].sort()),
      );
    await listed({ userId: alice }, [a1, a2]);
    await listed({ userId: alice, status: 'PAUSED' }, [a2]);
    await listed({ userId: alice, status: 'RUNNING' }, [a1]);
    await listed({ userId: bob }, [b1]);
    await Promise.all([a1, a2, b1].map((c) => client.close(c)));
    await listed({ userId: alice, status: 'STOPPED' }, [a1, a2]);
  });

  describe('per-user limit of 2', () => {
    let limited: ConversationClient;
    let stopLimited: () => Promise<void>;
    before(async () => {
      ({ client: limited, stop: stopLimited } = await startWorker(env, uniqueId('limit'), {
        runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }),
        maxConversationsPerUser: 2,
      }));
    });
    after(() => stopLimited());

    test('a third start pauses the least recently active conversation, with the reason in its status', async () => {
      const user = uniqueId('limited-user');
      const [c1, c2, c3] = [uniqueId('lim'), uniqueId('lim'), uniqueId('lim')];
      await limited.start(input(c1, { userId: user }));
      await limited.start(input(c2, { userId: user }));
      await limited.sendMessage(c1, 'c1 was active last'); // so c2 is now the least recently active
      await limited.start(input(c3, { userId: user }));
      const s2 = await limited.status(c2);
      assert.equal(s2.status, 'PAUSED');
      assert.equal(s2.pauseReason, 'too many conversations');
      assert.equal((await limited.status(c1)).status, 'RUNNING');
      assert.equal((await limited.status(c3)).status, 'RUNNING');
      assert.equal((await containersFor(c2))[0].State, 'exited');
      // Resuming takes a slot again, pausing the next least recently active: c1, whose message came before c3 started.
      await limited.resume(c2);
      assert.equal((await limited.status(c1)).pauseReason, 'too many conversations');
      assert.equal((await limited.status(c3)).status, 'RUNNING');
      await Promise.all([c1, c2, c3].map((c) => limited.close(c)));
    });

    test('three concurrent starts for one user never leave more than two running', async () => {
      const user = uniqueId('burst-user');
      const ids = [uniqueId('burst'), uniqueId('burst'), uniqueId('burst')];
      const since = Math.floor(Date.now() / 1000) - 1;
      const infos = await Promise.all(ids.map((id) => limited.start(input(id, { userId: user }))));
      // Docker's own record of every start and stop of this user's sandboxes: no moment between two looks is missed.
      const maxRunning = await mostRunningAtOnce(user, since);
      assert.ok(
        infos.every((i) => i.status === 'RUNNING'),
        'every start got its answer',
      );
      assert.ok(maxRunning <= 2, `at most two running at any time, saw ${maxRunning}`);
      const statuses = await Promise.all(ids.map((id) => limited.status(id)));
      assert.deepEqual(statuses.map((s) => s.status).sort(), ['PAUSED', 'RUNNING', 'RUNNING']);
      await Promise.all(ids.map((id) => limited.close(id)));
    });
  });
});

/** The most containers of this user running at once since `since` (seconds), replayed from Docker's event log. */
async function mostRunningAtOnce(userId: string, since: number): Promise<number> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const stream = (await docker.getEvents({
    since,
    until,
    filters: { type: ['container'], event: ['start', 'die'], label: [`nestor.user-id=${userId}`] },
  })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  let running = 0;
  let most = 0;
  for (const line of text.split('\n').filter(Boolean)) {
    running += (JSON.parse(line) as { Action: string }).Action === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}
