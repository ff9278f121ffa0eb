// One V1 contract, two servers: the same requests nestor makes of the current agent server, against the emulator's V1
// image and the real agent server image (both run by nestor's Docker provider, under its hardening), comparing status
// codes, body kinds, the shape of what nestor reads and the exact text it reads, so a test on the emulator cannot hide a
// difference from the real server.
// needs: docker, openhands
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { recorder, shapeDiff, statusDiffs, type Answer } from '../helpers/contract';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { agentConversationId } from '../../src/nested/agent-server';
import type { LlmStandIn } from '../../src/llm-stand-in/server';
import { removeContainers } from '../helpers/docker';
import { AGENT_SERVER_IMAGE, startStandInForSandboxes } from '../helpers/openhands';
import { uniqueId } from '../helpers/temporal';

/** What nestor reads of a conversation, and of an event. */
const conversationRead = (b: unknown) => {
  const { id, execution_status, last_user_message_id } = b as Record<string, unknown>;
  return { id, execution_status, last_user_message_id };
};
const eventRead = (e: Record<string, unknown>) => {
  const { id, kind, source, timestamp } = e;
  const m = e.llm_message as { role?: unknown; content?: Array<{ type?: unknown; text?: unknown }> } | undefined;
  return {
    id,
    kind,
    source,
    timestamp,
    ...(m && { llm_message: { role: m.role, content: m.content?.map(({ type: t, text }) => ({ type: t, text })) } }),
  };
};

/** The contract's steps against one server; each answer kept by the step's name. */
async function runContract(url: string, key: string, llm: LlmStandIn): Promise<Map<string, Answer>> {
  const { answers, call } = recorder(url, key);
  const id = agentConversationId(uniqueId('contract-v1'));
  const unknown = agentConversationId(uniqueId('contract-v1-unknown'));
  const c = `/api/conversations/${id}`;
  const create = {
    conversation_id: id,
    workspace: { kind: 'LocalWorkspace', working_dir: '/data/workspace' },
    agent_settings: {
      llm: { model: 'openai/stand-in', api_key: 'sk-contract', base_url: llm.baseUrl, usage_id: 'agent' },
    },
    secrets: { CONTRACT_SECRET: { kind: 'StaticSecret', value: 'contract-value' } },
    autotitle: false,
    initial_message: { role: 'user', content: [{ type: 'text', text: 'hello from the contract' }], run: true },
  };
  await call('alive', 'GET', '/alive', undefined, false);
  await call('health', 'GET', '/health', undefined, false);
  await call('no key', 'GET', `/api/conversations/${unknown}`, undefined, false);
  await call('unknown conversation', 'GET', `/api/conversations/${unknown}`);
  await call('not a UUID', 'GET', '/api/conversations/not-a-uuid');
  await call('create without workspace', 'POST', '/api/conversations', { ...create, workspace: undefined });
  await call('create with a bare secret', 'POST', '/api/conversations', { ...create, secrets: { S: 'bare' } });
  await call('create', 'POST', '/api/conversations', create);
  await call('create again', 'POST', '/api/conversations', create);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const info = await call('conversation', 'GET', c);
    if ((info.body as { execution_status?: string }).execution_status === 'finished') break;
    assert.ok(Date.now() < deadline, `the first run never finished: ${JSON.stringify(info.body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await call('count user messages', 'GET', `${c}/events/count?kind=MessageEvent&source=user`);
  await call('user messages', 'GET', `${c}/events/search?kind=MessageEvent&source=user&sort_order=TIMESTAMP&limit=100`);
  await call('newest event', 'GET', `${c}/events/search?sort_order=TIMESTAMP_DESC&limit=1`);
  await call('limit over 100', 'GET', `${c}/events/search?limit=101`);
  await call('limit 0', 'GET', `${c}/events/search?limit=0`);
  await call('post message', 'POST', `${c}/events`, {
    role: 'user',
    content: [{ type: 'text', text: 'second message' }],
    run: true,
  });
  for (;;) {
    const n = await call('count after post', 'GET', `${c}/events/count?kind=MessageEvent&source=user`);
    const info = await call('conversation after post', 'GET', c);
    if (n.body === 2 && (info.body as { execution_status?: string }).execution_status === 'finished') break;
    assert.ok(Date.now() < deadline, 'the second run never finished');
    await new Promise((r) => setTimeout(r, 250));
  }
  await call('run with nothing new', 'POST', `${c}/run`);
  await call('pause', 'POST', `${c}/pause`);
  await call('update secrets', 'POST', `${c}/secrets`, {
    secrets: { CONTRACT_SECRET: { kind: 'StaticSecret', value: 'contract-value-2' } },
  });
  await call('events of an unknown conversation', 'GET', `/api/conversations/${unknown}/events/search?limit=1`);
  await call('post to an unknown conversation', 'POST', `/api/conversations/${unknown}/events`, {
    role: 'user',
    content: [{ type: 'text', text: 'x' }],
    run: true,
  });
  await call('delete', 'DELETE', c);
  await call('delete again', 'DELETE', c);
  await call('conversation after delete', 'GET', c);
  return answers;
}

describe(
  'the V1 contract, the emulator against the real agent server (same requests, same answers)',
  { timeout: 600_000 },
  () => {
    const made = new Set<string>();
    const provider = new DockerRuntimeProvider({ image: AGENT_SERVER_IMAGE, owner: 'contract-v1-test' });
    const emulator = new DockerRuntimeProvider({ image: RUNTIME_IMAGES['emulator-v1'], owner: 'contract-v1-test' });
    let llm: LlmStandIn;
    let real: Map<string, Answer>;
    let emulated: Map<string, Answer>;

    before(async () => {
      llm = await startStandInForSandboxes(provider);
      const run = async (p: DockerRuntimeProvider) => {
        const conversationId = uniqueId('contract-v1');
        made.add(conversationId);
        const h = await p.create({ conversationId, userId: 'contract' });
        assert.equal(h.protocol, 'v1');
        const deadline = Date.now() + (await p.requirements()).aliveTimeoutMs;
        while (
          (await request(`${h.url}/alive`)
            .then((r) => (r.body.dump(), r.statusCode))
            .catch(() => 0)) !== 200
        ) {
          assert.ok(
            Date.now() < deadline,
            `${conversationId} never answered /alive: ${await p.diagnose(conversationId)}`,
          );
          await new Promise((r) => setTimeout(r, 200));
        }
        try {
          return await runContract(h.url, h.sessionApiKey, llm);
        } finally {
          await p.remove(conversationId);
        }
      };
      emulated = await run(emulator);
      real = await run(provider);
    });

    after(async () => {
      await llm?.close();
      await removeContainers(made);
    });

    test('every step answers the same status code, of the same kind (JSON or plain text)', () => {
      assert.deepEqual(statusDiffs(real, emulated), []);
    });

    test('what nestor reads has the same shape: conversations, event pages, counts, answers', () => {
      const read = (step: string, b: unknown): unknown => {
        if (b === null || typeof b !== 'object') return b;
        if (step.startsWith('conversation') || step.startsWith('create'))
          return 'execution_status' in b ? conversationRead(b) : b;
        if ('items' in b) return { ...b, items: (b as { items: Array<Record<string, unknown>> }).items.map(eventRead) };
        return b;
      };
      const diffs: string[] = [];
      for (const [step, r] of real) {
        const e = emulated.get(step);
        if (!e || r.kind !== 'json' || r.status >= 400) continue;
        diffs.push(...shapeDiff(read(step, r.body), read(step, e.body)).map((d) => `${step}: ${d}`));
      }
      assert.deepEqual(diffs, []);
    });

    test('the answers nestor reads say the same thing', () => {
      const norm = (v: unknown) =>
        JSON.stringify(v).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');
      for (const step of [
        'no key',
        'unknown conversation',
        'conversation after delete',
        'delete again',
        'post message',
        'pause',
        'update secrets',
        'delete',
        'count user messages',
      ])
        assert.equal(norm(emulated.get(step)!.body), norm(real.get(step)!.body), step);
      for (const step of ['create', 'create again'])
        assert.equal(
          (emulated.get(step)!.body as { id: string }).id,
          (emulated.get('create')!.body as { id: string }).id,
          `${step}: the ID asked for`,
        );
      const texts = (m: Map<string, Answer>) =>
        (m.get('user messages')!.body as { items: Array<Record<string, unknown>> }).items.map(
          (e) => eventRead(e).llm_message,
        );
      assert.deepEqual(texts(emulated), texts(real), 'the user message event, as nestor reads its text');
    });
  },
);
