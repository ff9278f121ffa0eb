// A conversation's life end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient, ConversationError } from '../../src/conversation/client';
import { NestedClient } from '../../src/nested/client';
import { ConversationStatusKey, conversationWorkflowId } from '../../src/shared/constants';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { containersFor, volumesFor } from '../helpers/docker';
import { eventually, waitFor } from '../helpers/eventually';
import { uniqueId } from '../helpers/temporal';

import { e2eInput, startE2e, type E2e } from '../helpers/e2e';

describe('a conversation end to end: start, configure, fail, list, close (Temporal + Docker + emulator)', () => {
  let env: TestWorkflowEnvironment;
  let client: ConversationClient;
  let refreshes: string[];
  let lab: E2e;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    lab = await startE2e(made);
    ({ env, client, refreshes } = lab);
  });

  after(() => lab?.stop());

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
});
