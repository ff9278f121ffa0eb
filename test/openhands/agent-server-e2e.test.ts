// End to end on the current OpenHands agent server (openhands-agent-server 1.58.2 in nestor-agent-server:1.58.2,
// under nestor's hardening), with the LLM stand-in as its model: a whole conversation's life, secrets and git tokens
// reaching the agent's terminal and nowhere else, an LLM that answers errors, a message whose answer was lost, refused
// settings, and a worker killed while it creates the sandbox.
// needs: temporal, docker, openhands
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../src/config';
import { ConversationClient, ConversationError } from '../../src/conversation/client';
import { DockerRuntimeProvider, demux } from '../../src/runtime/docker';
import { AgentServerClient, agentConversationId } from '../../src/nested/agent-server';
import { REPLY_PREFIX, RUN_MARKER, type LlmStandIn } from '../../src/llm-stand-in/server';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { containersFor, logsOnFailure, docker, removeContainers, volumesFor } from '../helpers/docker';
import { AGENT_SERVER_IMAGE, standInSettings, startStandInForSandboxes } from '../helpers/openhands';
import { LosesPostAnswers, allEvents, eventsUntil, said, serverOf } from '../helpers/agent-server';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';
import { cliWorkers, killOnceSandboxExists } from '../helpers/cli-worker';
import { createPoolActivities } from '../../src/sandbox-pools/activities';
import { startGitServer } from '../helpers/git-server';

const CLI = join(PROJECT_ROOT, 'dist/src/cli.js');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Run a command in the sandbox as its user; its output (Docker's multiplexed stream, demultiplexed). */
async function inSandbox(containerId: string, cmd: string): Promise<string> {
  const exec = await docker
    .getContainer(containerId)
    .exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, User: '10001' });
  return new Promise<string>((resolve, reject) => {
    exec.start({}, (err, stream) => {
      if (err || !stream) return reject(err);
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => resolve(demux(Buffer.concat(chunks))));
    });
  });
}

describe(
  'the current OpenHands agent server (V1) in the sandbox, with the LLM stand-in',
  { timeout: 1_200_000 },
  () => {
    let env: TestWorkflowEnvironment;
    let client: ConversationClient;
    let stopWorker: () => Promise<void>;
    let llm: LlmStandIn;
    const provider = new DockerRuntimeProvider({ image: AGENT_SERVER_IMAGE });
    const made = new Set<string>();

    const input = (
      id: string,
      extra: Partial<StartConversationRequest> = {},
      o: { error?: boolean } = {},
    ): StartConversationRequest => {
      made.add(id);
      return { conversationId: id, userId: 'agent-server-e2e', settings: standInSettings(llm, o), ...extra };
    };

    before(async () => {
      env = await createTestEnv();
      llm = await startStandInForSandboxes(provider);
      ({ client, stop: stopWorker } = await startWorker(env, uniqueId('v1'), { runtime: provider }));
      logsOnFailure(client); // a failed start or resume says what the server inside was doing
    });

    after(async () => {
      await stopWorker?.();
      await llm?.close();
      await removeContainers(made);
      await env?.teardown();
    });

    test('start with a message → answered; two messages once each, in order; a repeated ID; pause → resume keeps events and workspace; close leaves nothing', async () => {
      const id = uniqueId('v1-life');
      const req = input(id, {
        initialMessage: 'hello agent server',
        conversationInstructions: 'NESTOR-RULE: be brief.',
      });
      req.settings = { ...req.settings, enableDefaultCondenser: true, condenserMaxSize: 60, maxIterations: 40 };
      const info = await client.start(req);
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.protocol, 'v1');
      assert.equal(info.nestedConversationId, agentConversationId(id), "the server's ID is derived from nestor's");
      assert.match(info.nestedConversationId!, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const [container] = await containersFor(id);
      const inspected = await docker.getContainer(container.Id).inspect();
      assert.equal(inspected.Config.User, '10001:10001');
      assert.equal(inspected.HostConfig.ReadonlyRootfs, true);
      assert.equal(inspected.HostConfig.Init, true);
      assert.deepEqual(inspected.HostConfig.CapDrop, ['ALL']);
      assert.deepEqual(inspected.HostConfig.SecurityOpt, ['no-new-privileges:true']);
      assert.match(String(inspected.HostConfig.Tmpfs?.['/tmp']), /size=128m/, "the image's tmpfs size");
      assert.equal(inspected.HostConfig.Memory, 2048 * 1024 * 1024, "the image's default memory (its manifest)");
      const start = await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}hello agent server`));
      const prompt = start.find((e) => e.kind === 'SystemPromptEvent');
      assert.match(JSON.stringify(prompt), /NESTOR-RULE: be brief\./, 'the instructions are in its system prompt');
      const { c: server, id: nestedId } = serverOf(info);
      assert.equal((await server.getConversation(nestedId))?.max_iterations, 40);

      const first = await client.sendMessage(id, 'first question');
      const second = await client.sendMessage(id, 'second question');
      const events = await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}second question`));
      assert.deepEqual(
        said(events, 'user'),
        ['hello agent server', 'first question', 'second question'],
        'each message exactly once, in order',
      );
      const userEventIds = events.filter((e) => e.kind === 'MessageEvent' && e.source === 'user').map((e) => e.id);
      assert.deepEqual(
        [first.nestedEventId, second.nestedEventId],
        userEventIds.slice(1),
        "the acks name the server's events",
      );
      assert.ok(said(events, 'agent').includes(`${REPLY_PREFIX}first question`));
      // A message ID sent again is answered from memory, not posted again; two IDs with the same text both arrive.
      const again = await client.sendMessage(id, { messageId: 'same-id', content: 'same text' });
      assert.deepEqual(await client.sendMessage(id, { messageId: 'same-id', content: 'same text' }), again);
      await client.sendMessage(id, { messageId: 'other-id', content: 'same text' });
      const twice = await eventsUntil(info, (ev) => said(ev, 'user').filter((t) => t === 'same text').length >= 2);
      assert.equal(said(twice, 'user').filter((t) => t === 'same text').length, 2);

      // The agent's workspace is on the conversation's volume: a file written there must survive the pause.
      await inSandbox(container.Id, 'echo kept > /data/workspace/note.txt');
      const paused = await client.pause(id, 'e2e pause');
      assert.equal(paused.status, 'PAUSED');
      assert.equal((await containersFor(id))[0].State, 'exited');
      // A message sent while paused resumes it and is delivered once.
      const whilePaused = await client.sendMessage(id, 'after the resume');
      assert.ok(whilePaused.nestedEventId);
      const resumed = await client.start(input(id));
      assert.equal(resumed.status, 'RUNNING');
      const kept = await eventsUntil(resumed, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}after the resume`));
      assert.deepEqual(
        said(kept, 'user'),
        ['hello agent server', 'first question', 'second question', 'same text', 'same text', 'after the resume'],
        'events kept across the pause, the new message once',
      );
      assert.match(await inSandbox(container.Id, 'cat /data/workspace/note.txt'), /kept/, 'workspace kept');

      // `nestor events` reads a V1 conversation from its agent server: who said what, and the agent's state.
      const { stdout } = await promisify(execFile)('node', [CLI, 'events', id], {
        env: { ...process.env, TEMPORAL_ADDRESS: env.address },
      });
      assert.match(stdout, /user: hello agent server\n/);
      assert.match(stdout, new RegExp(`agent: ${REPLY_PREFIX}after the resume\\n`));
      assert.match(stdout, /agent state: finished/);

      const closed = await client.close(id, 'done');
      assert.equal(closed.status, 'STOPPED');
      assert.deepEqual(await containersFor(id), [], 'no container');
      assert.deepEqual(await volumesFor(id), [], 'no volume');
    });

    test("a custom secret and a git token reach the agent's terminal; their values are nowhere in nestor's output or the container's environment", async () => {
      const id = uniqueId('v1-secret');
      const secret = `custom-${uniqueId('value')}`;
      const token = `ghp_${uniqueId('token').replace(/-/g, '')}`;
      const info = await client.start(
        input(id, {
          customSecrets: [{ name: 'MY_API_TOKEN', value: secret, description: 'e2e' }],
          gitProviderTokens: { github: { token } },
          initialMessage: `${RUN_MARKER}printf %s "$MY_API_TOKEN" | sha256sum; printf %s "$GITHUB_TOKEN" | sha256sum`,
        }),
      );
      assert.equal(info.status, 'RUNNING');
      const events = await eventsUntil(info, (ev) => said(ev, 'agent').some((t) => t.includes('tool output')));
      const answer = said(events, 'agent').find((t) => t.includes('tool output'))!;
      assert.ok(answer.includes(sha256(secret)), `the agent's command saw the custom secret: ${answer}`);
      assert.ok(answer.includes(sha256(token)), `the agent's command saw the git token: ${answer}`);

      const [container] = await containersFor(id);
      const inspected = JSON.stringify(await docker.getContainer(container.Id).inspect());
      const status = JSON.stringify(await client.status(id));
      const history = JSON.stringify(await env.client.workflow.getHandle(`conversation-${id}`).fetchHistory());
      for (const [what, text] of Object.entries({ inspected, status, history, info: JSON.stringify(info) })) {
        assert.ok(!text.includes(secret), `no custom secret value in ${what}`);
        assert.ok(!text.includes(token), `no git token in ${what}`);
      }
      // Paused and resumed: the server keeps the secrets (encrypted with the sandbox's own key) and gets them again.
      await client.pause(id);
      assert.equal((await client.resume(id)).status, 'RUNNING');
      const resumed = await client.start(input(id)); // attach: the new address and key
      await client.sendMessage(id, `${RUN_MARKER}printf %s "$MY_API_TOKEN" | sha256sum`);
      const later = await eventsUntil(
        resumed,
        (ev) => said(ev, 'agent').filter((t) => t.includes('tool output')).length >= 2,
      );
      assert.ok(
        said(later, 'agent').filter((t) => t.includes(sha256(secret))).length >= 2,
        'the secret after the resume',
      );
      await client.close(id);
      assert.deepEqual(await containersFor(id), []);
    });

    test("an MCP server in V0's shape (stdio_servers) reaches the agent: its tool is in the agent's tools", async () => {
      const id = uniqueId('v1-mcp');
      // A real MCP server over stdio, with the Python and `mcp` package the image has.
      const server = [
        'from mcp.server.fastmcp import FastMCP',
        'm = FastMCP("nestor-e2e")',
        '@m.tool()',
        'def nestor_ping() -> str:',
        '    "Answers pong."',
        '    return "pong"',
        'm.run()',
      ].join('\n');
      const info = await client.start(
        input(id, {
          initialMessage: 'hello MCP',
          mcpConfig: {
            stdio_servers: [{ name: 'nestor-e2e', command: '/opt/openhands/venv/bin/python', args: ['-c', server] }],
          },
        }),
      );
      assert.equal(info.status, 'RUNNING');
      const events = await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}hello MCP`));
      const prompt = events.find((e) => e.kind === 'SystemPromptEvent');
      assert.match(JSON.stringify(prompt), /nestor_ping/, "the MCP server's tool is among the agent's tools");
      await client.close(id);
      assert.deepEqual(await containersFor(id), []);
    });

    test('a start whose LLM answers errors: RUNNING, and the agent server says the run failed on the LLM', async () => {
      const id = uniqueId('v1-llm-error');
      const info = await client.start(input(id, { initialMessage: 'this will fail' }, { error: true }));
      assert.equal(info.status, 'RUNNING', 'the sandbox and conversation run; the agent is what fails');
      const { c, id: nestedId } = serverOf(info);
      const deadline = Date.now() + 90_000;
      let status = '';
      while (status !== 'error' && Date.now() < deadline) {
        status = (await c.getConversation(nestedId))?.execution_status ?? '';
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.equal(status, 'error');
      assert.match(JSON.stringify(await allEvents(info)), /auth|401|api key/i, 'an event names the LLM authentication');
      assert.equal((await client.status(id)).status, 'RUNNING');
      await client.close(id);
      assert.deepEqual(await containersFor(id), []);
    });

    test('a message whose POST landed but whose answer was lost is found and not posted again', async () => {
      const lossy = new LosesPostAnswers(1);
      const w = await startWorker(env, uniqueId('v1-lossy'), { runtime: provider, dispatcher: lossy });
      try {
        const id = uniqueId('v1-lost-answer');
        const info = await w.client.start(input(id));
        const ack = await w.client.sendMessage(id, 'said once');
        assert.equal(lossy.lost, 1, "the first post's answer was lost");
        assert.ok(ack.nestedEventId);
        const events = await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}said once`));
        assert.deepEqual(said(events, 'user'), ['said once'], 'posted once');
        await w.client.close(id);
      } finally {
        await w.stop();
        await lossy.close();
      }
    });

    test('settings the agent server has no counterpart for, and sandbox env that configures it, are InvalidSettings naming the field; nothing starts', async () => {
      const cases: Array<[Partial<StartConversationRequest['settings']>, RegExp]> = [
        [{ agent: 'BrowsingAgent' }, /settings\.agent: not supported by the current OpenHands agent server/],
        [{ maxBudgetPerTask: 5 }, /settings\.maxBudgetPerTask/],
        [{ sandbox: { env: { OH_LEASE_TTL_SECONDS: '45' } } }, /settings\.sandbox\.env\.OH_LEASE_TTL_SECONDS/],
        [{ sandbox: { env: { SESSION_API_KEY: 'mine' } } }, /settings\.sandbox\.env\.SESSION_API_KEY/],
      ];
      for (const [settings, message] of cases) {
        const id = uniqueId('v1-refused');
        const req = input(id);
        await assert.rejects(client.start({ ...req, settings: { ...req.settings, ...settings } }), (err) => {
          assert.ok(err instanceof ConversationError);
          assert.match(err.message, message);
          return true;
        });
        const status = await client.status(id);
        assert.equal(status.status, 'ERROR');
        assert.deepEqual([status.lastError?.type, status.lastError?.step], ['InvalidSettings', 'acquireSession']);
        assert.deepEqual(await containersFor(id), [], 'no sandbox');
      }
    });

    test('a worker killed during createRuntime on the agent server image: one sandbox, RUNNING, answering', async () => {
      const taskQueue = uniqueId('v1-kill');
      const workers = cliWorkers(env.address, taskQueue, 'openhands');
      const first = workers.spawn();
      const other = new ConversationClient({ client: env.client, taskQueue });
      const id = uniqueId('v1-kill');
      try {
        const info = await killOnceSandboxExists(
          workers,
          first,
          id,
          other.start(input(id, { initialMessage: 'survived' })),
        );
        assert.equal(info.status, 'RUNNING');
        const containers = await containersFor(id);
        assert.equal(containers.length, 1, 'one sandbox: the retried create adopted the first');
        assert.equal(containers[0].Id, info.runtimeId);
        const events = await eventsUntil(info, (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}survived`));
        assert.deepEqual(said(events, 'user'), ['survived'], 'the first message once');
        await other.close(id);
        assert.deepEqual(await containersFor(id), []);
      } finally {
        await workers.stopAll();
      }
    });

    test('the agent server killed mid-run: the next message brings the sandbox back, the interrupted run goes on, the message arrives once', async () => {
      const id = uniqueId('v1-crash');
      const info = await client.start(input(id, { initialMessage: `${RUN_MARKER}sleep 15; echo slept` }));
      const { c, id: nestedId } = serverOf(info);
      const deadline = Date.now() + 60_000;
      while (!(await c.allEvents(nestedId)).some((e) => e.kind === 'ActionEvent')) {
        assert.ok(Date.now() < deadline, 'the agent never started its command');
        await new Promise((r) => setTimeout(r, 250));
      }
      const [container] = await containersFor(id);
      await inSandbox(container.Id, 'pkill -KILL -f openhands.agent_server');
      // Its init exits with it; Docker restarts the container (restart policy), on another port.
      const ack = await client.sendMessage(id, 'after the crash');
      assert.ok(ack.nestedEventId);
      const live = await client.start(input(id));
      assert.equal(live.status, 'RUNNING');
      const events = await eventsUntil(
        live,
        (ev) => said(ev, 'agent').includes(`${REPLY_PREFIX}after the crash`),
        120_000,
      );
      assert.deepEqual(said(events, 'user'), [`${RUN_MARKER}sleep 15; echo slept`, 'after the crash'], 'each once');
      assert.equal((await containersFor(id)).length, 1, 'the same sandbox, restarted');
      await client.close(id);
      assert.deepEqual(await containersFor(id), []);
    });

    test('a pooled start: the member boots with no user, key or secret; a claim gives it its conversation; two starts never share it', async () => {
      const poolName = uniqueId('v1pool').replace(/[^a-zA-Z0-9_.-]/g, '-');
      const pooled = new DockerRuntimeProvider({ image: AGENT_SERVER_IMAGE, pool: { name: poolName } });
      const w = await startWorker(env, uniqueId('v1-pool'), { runtime: pooled });
      try {
        await createPoolActivities({ runtime: pooled }).createPoolMember({ pool: poolName, memberId: 'v1m1' });
        const [member] = await pooled.pool.members();
        const memberEnv = (await docker.getContainer(member.runtimeId).inspect()).Config.Env ?? [];
        const imageEnv = (await docker.getImage(AGENT_SERVER_IMAGE).inspect()).Config.Env ?? [];
        const own = memberEnv.filter((e) => !imageEnv.includes(e)).map((e) => e.split('=')[0]);
        assert.deepEqual(
          own.sort(),
          ['OH_DEFERRED_INIT', 'OH_SECRET_KEY', 'OH_SESSION_API_KEYS_0'],
          'nothing beyond the image but its own keys, and dormant until claimed',
        );
        const memberKey = memberEnv.find((e) => e.startsWith('OH_SESSION_API_KEYS_0='))!.split('=')[1];
        const memberUrl = (await pooled.pool.memberUrl(member.memberId))!;
        assert.equal(
          (await new AgentServerClient({ baseUrl: memberUrl, sessionApiKey: memberKey }).initState()).state,
          'dormant',
        );
        assert.equal(
          (await inSandbox(member.runtimeId, 'find /data/conversations /data/workspace -mindepth 1 | wc -l')).trim(),
          '0',
          'no conversation or file on its volume',
        );

        const secret = `pooled-${uniqueId('s')}`;
        const [a, b] = [uniqueId('v1-pooled-a'), uniqueId('v1-pooled-b')];
        const [first, second] = await Promise.all([
          w.client.start(
            input(a, {
              initialMessage: `${RUN_MARKER}printf %s "$POOLED_TOKEN" | sha256sum`,
              customSecrets: [{ name: 'POOLED_TOKEN', value: secret }],
            }),
          ),
          w.client.start(input(b, { initialMessage: 'hello from b' })),
        ]);
        const claimed = [first, second].filter((i) => i.startPath === 'pool');
        assert.equal(claimed.length, 1, 'one member, one claim');
        assert.equal(claimed[0].runtimeId, member.runtimeId);
        assert.notEqual(first.runtimeId, second.runtimeId);
        const ev = await eventsUntil(first, (e) => said(e, 'agent').some((t) => t.includes('tool output')));
        assert.ok(
          said(ev, 'agent').some((t) => t.includes(sha256(secret))),
          'the claimed sandbox has its secret',
        );
        await eventsUntil(second, (e) => said(e, 'agent').includes(`${REPLY_PREFIX}hello from b`));
        const pooledInfo = claimed[0];
        assert.notEqual(pooledInfo.sessionApiKey, memberKey, 'the conversation has a key the member never had');
        await assert.rejects(
          new AgentServerClient({
            baseUrl: pooledInfo.url!.replace(/\/api\/.*$/, ''),
            sessionApiKey: memberKey,
          }).countEvents(pooledInfo.nestedConversationId!),
          /401|unauthori/i,
          "the member's own key no longer opens it",
        );
        // A restart makes the server dormant again: the resume initializes it with the same keys, so the conversation
        // it stored (its LLM key encrypted with the conversation's secret key) loads and answers.
        const pooledId = pooledInfo === first ? a : b;
        await w.client.pause(pooledId);
        assert.equal((await w.client.resume(pooledId)).status, 'RUNNING');
        const back = await w.client.start(input(pooledId)); // attach: the new address
        await w.client.sendMessage(pooledId, 'after the pooled resume');
        await eventsUntil(back, (e) => said(e, 'agent').includes(`${REPLY_PREFIX}after the pooled resume`));
        await w.client.close(a);
        await w.client.close(b);
        await assert.rejects(docker.getContainer(member.runtimeId).inspect(), /no such container/i);
      } finally {
        await w.stop();
        for (const m of await pooled.pool.members()) await pooled.pool.retire(m.memberId);
      }
    });

    test('a worker killed while a message post is in flight: the next worker finds the post and does not repeat it', async () => {
      const taskQueue = uniqueId('v1-inflight');
      const child = spawn('node', [join(PROJECT_ROOT, 'dist/test/helpers/post-hangs-worker.js')], {
        env: { ...process.env, TEMPORAL_ADDRESS: env.address, NESTOR_TASK_QUEUE: taskQueue },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      let w: Awaited<ReturnType<typeof startWorker>> | undefined;
      try {
        const deadline = Date.now() + 60_000;
        while (!out.includes('ready')) {
          assert.ok(Date.now() < deadline && child.exitCode === null, `the hanging worker did not start: ${out}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const other = new ConversationClient({ client: env.client, taskQueue });
        const id = uniqueId('v1-inflight');
        const info = await other.start(input(id));
        const sending = other.sendMessage(id, 'posted while the worker died');
        const { c, id: nestedId } = serverOf(info);
        while ((await c.countEvents(nestedId, { kind: 'MessageEvent', source: 'user' })) === 0) {
          assert.ok(Date.now() < deadline + 60_000, 'the post never reached the server');
          await new Promise((r) => setTimeout(r, 100));
        }
        child.kill('SIGKILL');
        await once(child, 'exit');
        w = await startWorker(env, taskQueue, { runtime: provider });
        const ack = await sending;
        assert.ok(ack.nestedEventId);
        const events = await eventsUntil(info, (ev) =>
          said(ev, 'agent').includes(`${REPLY_PREFIX}posted while the worker died`),
        );
        assert.deepEqual(said(events, 'user'), ['posted while the worker died'], 'posted once');
        await other.close(id);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await w?.stop();
      }
    });

    test('a start naming a repository: cloned and checked out before the conversation, the token in no URL, command, event or output; a refused token fails the start', async () => {
      const token = `ghp_${uniqueId('repo').replace(/-/g, '')}`;
      const git = await startGitServer(await provider.sandboxGateway(), token);
      try {
        const id = uniqueId('v1-repo');
        const req = input(id, {
          repository: 'acme/app',
          branch: 'feature',
          gitProviderTokens: { github: { token, host: git.base } },
          initialMessage:
            `${RUN_MARKER}pwd; cat FEATURE.txt; git config user.name; git remote get-url origin; ` +
            'cat .setup-ran; git commit -q --allow-empty -m "an agent commit"',
        });
        req.settings = { ...req.settings, gitUserName: 'Ada Lovelace', gitUserEmail: 'ada@example.com' };
        const info = await client.start(req);
        assert.equal(info.status, 'RUNNING');
        assert.ok(
          git.requests.some((r) => r.endsWith(' x-access-token')),
          'the clone presented the token',
        );
        const events = await eventsUntil(info, (ev) => said(ev, 'agent').some((t) => t.includes('tool output')));
        const answer = said(events, 'agent').find((t) => t.includes('tool output'))!;
        assert.match(answer, /\/data\/workspace\/app/, 'the conversation works in the clone');
        assert.match(answer, /on the feature branch/, 'the branch asked for');
        assert.match(answer, /Ada Lovelace/, "the user's git identity");
        assert.match(answer, new RegExp(`${git.base}/acme/app\\.git`), 'the remote is the plain URL');
        assert.equal(answer.match(/setup ran/g)?.length, 1, "the repository's .openhands/setup.sh ran, once");
        assert.match(answer, /pre-commit hook ran/, 'its .openhands/pre-commit.sh is the git pre-commit hook');
        // The token nowhere: not in the clone's remote, the server's stored bash commands, nestor's status or history.
        const bash = await request(`${info.url!.replace(/\/api\/.*$/, '')}/api/bash/bash_events/search?limit=100`, {
          headers: { 'x-session-api-key': info.sessionApiKey! },
        }).then((r) => r.body.text());
        assert.match(bash, /git .*clone/, "the server's stored bash commands hold the clone");
        const history = JSON.stringify(await env.client.workflow.getHandle(`conversation-${id}`).fetchHistory());
        const [container] = await containersFor(id);
        const leftover = await inSandbox(container.Id, 'ls /tmp; cat /data/workspace/app/.git/config');
        for (const [what, text] of Object.entries({ answer, bash, history, leftover, status: JSON.stringify(info) }))
          assert.ok(!text.includes(token), `no token in ${what}`);
        assert.doesNotMatch(leftover, /nestor-git-/, 'the credential file is gone');
        await client.close(id);

        const refused = uniqueId('v1-repo-refused');
        await assert.rejects(
          client.start(
            input(refused, {
              repository: 'acme/app',
              gitProviderTokens: { github: { token: 'wrong', host: git.base } },
            }),
          ),
          (err) => err instanceof ConversationError && !err.message.includes('wrong'),
        );
        const status = await client.status(refused);
        assert.equal(status.status, 'ERROR');
        assert.deepEqual(
          [status.lastError?.type, status.lastError?.step],
          ['RepositoryCloneFailed', 'prepareRepository'],
        );
        assert.deepEqual(await containersFor(refused), [], 'the failed start removed its sandbox');
      } finally {
        await git.close();
      }
    });
  },
);
