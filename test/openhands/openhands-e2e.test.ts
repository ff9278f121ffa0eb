// End to end on the real OpenHands server (openhands-ai 1.4.0 in nestor-openhands:1.4.0, under nestor's hardening),
// with the LLM stand-in as its model: a whole conversation's life, a custom secret, an LLM that answers errors, git
// tokens under the policy, and a worker killed while it creates the sandbox.
// needs: temporal, docker, openhands
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient, ConversationError } from '../../src/conversation/client';
import { NestedClient, type NestedEvent } from '../../src/nested/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { REPLY_PREFIX, type LlmStandIn } from '../../src/llm-stand-in/server';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { containersFor, logsOnFailure, docker, removeContainers, volumesFor } from '../helpers/docker';
import { OPENHANDS_IMAGE, standInSettings, startStandInForSandboxes } from '../helpers/openhands';
import { createTestEnv, startWorker, uniqueId } from '../helpers/temporal';
import { cliWorkers, killOnceSandboxExists } from '../helpers/cli-worker';

/** Poll the nested events until `pred` holds (the agent answers asynchronously), up to `ms`. */
async function eventsUntil(
  nested: NestedClient,
  id: string,
  pred: (events: NestedEvent[]) => boolean,
  ms = 90_000,
): Promise<NestedEvent[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const events = await nested.allEvents(id);
    if (pred(events)) return events;
    if (Date.now() > deadline)
      assert.fail(
        `events never matched; last ones: ${JSON.stringify(events.slice(-5).map((e) => [e.source, e.action ?? e.observation, e.message]))}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

const userMessages = (events: NestedEvent[]) =>
  events.filter((e) => e.source === 'user' && e.action === 'message').map((e) => String(e.args?.content));
const agentReplies = (events: NestedEvent[]) =>
  events.filter((e) => e.source === 'agent' && e.action === 'message').map((e) => String(e.args?.content));

describe('the real OpenHands server in the sandbox, with the LLM stand-in', { timeout: 1_200_000 }, () => {
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  let stopWorker: () => Promise<void>;
  let llm: LlmStandIn;
  const provider = new DockerRuntimeProvider({ image: OPENHANDS_IMAGE });
  const made = new Set<string>();

  const input = (
    id: string,
    extra: Partial<StartConversationRequest> = {},
    o: { error?: boolean } = {},
  ): StartConversationRequest => {
    made.add(id);
    return { conversationId: id, userId: 'openhands-e2e', settings: standInSettings(llm, o), ...extra };
  };

  before(async () => {
    env = await createTestEnv();
    llm = await startStandInForSandboxes(provider);
    ({ client, stop: stopWorker } = await startWorker(env, uniqueId('openhands'), { runtime: provider }));
    logsOnFailure(client); // a failed start or resume says what the server inside was doing
  });

  after(async () => {
    await stopWorker?.();
    await llm?.close();
    await removeContainers(made);
    await env?.teardown();
  });

  test('start with a message → the agent answers; two messages, each delivered once and answered; pause → resume keeps events and workspace; close leaves nothing', async () => {
    const id = uniqueId('oh-life');
    const info = await client.start(input(id, { initialMessage: 'hello OpenHands' }));
    assert.equal(info.status, 'RUNNING');
    const [container] = await containersFor(id);
    const inspected = await docker.getContainer(container.Id).inspect();
    assert.equal(inspected.Config.User, '10001:10001');
    assert.equal(inspected.HostConfig.ReadonlyRootfs, true);
    assert.equal(inspected.HostConfig.Init, true);
    assert.equal(inspected.HostConfig.Memory, 2048 * 1024 * 1024, "the image's default memory (its manifest)");
    const nested = NestedClient.forConversation(info);
    await eventsUntil(nested, id, (ev) => agentReplies(ev).includes(`${REPLY_PREFIX}hello OpenHands`));

    const first = await client.sendMessage(id, 'first question');
    const second = await client.sendMessage(id, 'second question');
    const events = await eventsUntil(nested, id, (ev) => agentReplies(ev).includes(`${REPLY_PREFIX}second question`));
    assert.deepEqual(
      userMessages(events),
      ['hello OpenHands', 'first question', 'second question'],
      'each message exactly once, in order',
    );
    assert.deepEqual(
      [first.eventId, second.eventId],
      events
        .filter((e) => e.source === 'user' && e.action === 'message')
        .slice(1)
        .map((e) => e.id),
    );
    assert.ok(agentReplies(events).includes(`${REPLY_PREFIX}first question`));
    // A message ID sent again is answered from memory, not posted again.
    const again = await client.sendMessage(id, { messageId: 'same-id', content: 'only once' });
    assert.deepEqual(await client.sendMessage(id, { messageId: 'same-id', content: 'only once' }), again);

    // The agent's workspace is on the conversation's volume: a file written there must survive the pause.
    const exec = await docker
      .getContainer(container.Id)
      .exec({ Cmd: ['sh', '-c', 'echo kept > /data/workspace/note.txt'], User: '10001' });
    await exec.start({});
    await new Promise((r) => setTimeout(r, 500));

    const paused = await client.pause(id, 'e2e pause');
    assert.equal(paused.status, 'PAUSED');
    assert.equal((await containersFor(id))[0].State, 'exited');
    assert.equal((await client.resume(id)).status, 'RUNNING');
    // The port changed with the restart; `start` again attaches to the running conversation and returns address and key.
    const after = NestedClient.forConversation(await client.start(input(id)));
    const kept = await after.allEvents(id);
    assert.deepEqual(
      userMessages(kept).slice(0, 4),
      ['hello OpenHands', 'first question', 'second question', 'only once'],
      'events kept across the pause',
    );
    const cat = await docker
      .getContainer(container.Id)
      .exec({ Cmd: ['cat', '/data/workspace/note.txt'], AttachStdout: true, User: '10001' });
    const out = await new Promise<string>((resolve, reject) => {
      cat.start({}, (err, stream) => {
        if (err || !stream) return reject(err);
        let s = '';
        stream.on('data', (d: Buffer) => (s += d.toString('utf8')));
        stream.on('end', () => resolve(s));
      });
    });
    assert.match(out, /kept/, 'workspace kept across the pause');
    await client.sendMessage(id, 'after the resume');
    await eventsUntil(after, id, (ev) => agentReplies(ev).includes(`${REPLY_PREFIX}after the resume`));

    const closed = await client.close(id, 'done');
    assert.equal(closed.status, 'STOPPED');
    assert.deepEqual(await containersFor(id), [], 'no container (and so none of the processes the server left)');
    assert.deepEqual(await volumesFor(id), [], 'no volume');
  });

  test('a start carrying a custom secret: the nested server lists it, and a resume replaces its value rather than keeping the old one', async () => {
    const id = uniqueId('oh-secret');
    const info = await client.start(
      input(id, { customSecrets: [{ name: 'MY_API_TOKEN', value: 'first-value', description: 'e2e' }] }),
    );
    assert.equal(info.status, 'RUNNING');
    const nested = NestedClient.forConversation(info);
    assert.deepEqual(
      (await nested.listSecrets()).map((s) => s.name),
      ['MY_API_TOKEN'],
    );
    await client.pause(id);
    const resumed = await client.resume(id);
    assert.equal(resumed.status, 'RUNNING', 'the existing secret was replaced, not a failed resume');
    await client.close(id);
    assert.deepEqual(await containersFor(id), []);
  });

  test('a start whose LLM answers errors: RUNNING, and the agent reports the LLM failure in its events', async () => {
    const id = uniqueId('oh-llm-error');
    const info = await client.start(input(id, { initialMessage: 'this will fail' }, { error: true }));
    assert.equal(info.status, 'RUNNING', 'the sandbox and conversation run; the agent is what fails');
    const events = await eventsUntil(NestedClient.forConversation(info), id, (ev) =>
      ev.some(
        (e) =>
          e.observation === 'agent_state_changed' && (e.extras as { agent_state?: string })?.agent_state === 'error',
      ),
    );
    const error = events.find(
      (e) => e.observation === 'agent_state_changed' && (e.extras as { agent_state?: string })?.agent_state === 'error',
    )!;
    assert.match(
      JSON.stringify(error.extras),
      /auth|401|api key/i,
      'the reason the user sees names the LLM authentication',
    );
    await client.close(id);
    assert.deepEqual(await containersFor(id), []);
  });

  test('git tokens the real server rejects: without a repository, RUNNING with a warning naming the provider; with one, ERROR GitProviderRejected', async () => {
    const id = uniqueId('oh-git');
    const info = await client.start(input(id, { gitProviderTokens: { github: { token: 'ghp_not_a_real_token' } } }));
    assert.equal(info.status, 'RUNNING');
    assert.ok(
      info.warnings.some((w) =>
        /github token: Invalid token\. Please make sure it is a valid github token\..*runs without them/.test(w),
      ),
      JSON.stringify(info.warnings),
    );
    assert.ok(!JSON.stringify(info).includes('ghp_not_a_real_token'));
    await client.close(id);

    const repo = uniqueId('oh-git-repo');
    await assert.rejects(
      client.start(
        input(repo, { repository: 'acme/app', gitProviderTokens: { github: { token: 'ghp_not_a_real_token' } } }),
      ),
      (err) => {
        assert.ok(err instanceof ConversationError);
        assert.match(err.message, /GitProviderRejected|rejected the github token/);
        assert.doesNotMatch(err.message, /ghp_not_a_real_token/);
        return true;
      },
    );
    const status = await client.status(repo);
    assert.equal(status.status, 'ERROR');
    assert.equal(status.lastError?.type, 'GitProviderRejected');
    assert.equal(status.lastError?.step, 'configureNestedServer');
    assert.deepEqual(await containersFor(repo), [], 'the failed start removed its sandbox');
  });

  test('a worker killed during createRuntime on the real image: one sandbox, RUNNING', async () => {
    const taskQueue = uniqueId('oh-kill');
    const workers = cliWorkers(env.address, taskQueue, 'openhands-v0');
    const first = workers.spawn();
    const other = new ConversationClient({ client: env.client, taskQueue });
    const id = uniqueId('oh-kill');
    try {
      const info = await killOnceSandboxExists(workers, first, id, other.start(input(id)));
      assert.equal(info.status, 'RUNNING');
      const containers = await containersFor(id);
      assert.equal(containers.length, 1, 'one sandbox: the retried create adopted the first');
      assert.equal(containers[0].Id, info.runtimeId);
      await other.close(id);
      assert.deepEqual(await containersFor(id), []);
    } finally {
      await workers.stopAll();
    }
  });
});
