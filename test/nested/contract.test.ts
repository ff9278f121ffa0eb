// One contract, two servers: the same requests against the emulator image and the real OpenHands image (both run by
// nestor's Docker provider, under its hardening), comparing status codes and body shapes step by step, so a test on
// the emulator cannot hide a difference from the real server. The real answers are kept in
// test/fixtures/openhands-1.4.0-answers.json (RECORD_OPENHANDS_ANSWERS=1 writes them again), which the nested
// client's unit tests replay.
// needs: docker, openhands
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { recorder, shapeDiff, statusDiffs, type Answer } from '../helpers/contract';
import { PROJECT_ROOT } from '../../src/config';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import type { LlmStandIn } from '../../src/llm-stand-in/server';
import { removeContainers } from '../helpers/docker';
import { EMULATOR_IMAGE, OPENHANDS_IMAGE, startStandInForSandboxes } from '../helpers/openhands';
import { uniqueId } from '../helpers/temporal';

const SECRET = 'CONTRACT_SECRET';

/** The contract's steps, in order, against one server; each answer is kept by the step's name. */
async function runContract(
  url: string,
  key: string,
  conversationId: string,
  llm: LlmStandIn,
): Promise<Map<string, Answer>> {
  const { answers, call } = recorder(url, key);
  const c = `/api/conversations/${conversationId}`;
  await call('alive', 'GET', '/alive', undefined, false);
  await call('health', 'GET', '/health', undefined, false);
  await call('no key', 'GET', '/api/settings', undefined, false);
  await call('settings before any', 'GET', '/api/settings');
  await call('store settings', 'POST', '/api/settings', {
    agent: 'CodeActAgent',
    llm_model: 'openai/stand-in',
    llm_api_key: 'sk-contract',
    llm_base_url: llm.baseUrl,
    max_iterations: 20,
  });
  await call('git token rejected', 'POST', '/api/add-git-providers', {
    provider_tokens: { github: { token: 'ghp_contract_invalid', user_id: null, host: null } },
  });
  await call('secret created', 'POST', '/api/secrets', { name: SECRET, description: null, value: 'v1' });
  await call('secret exists', 'POST', '/api/secrets', { name: SECRET, description: null, value: 'v2' });
  await call('secrets listed', 'GET', '/api/secrets');
  await call('secret deleted', 'DELETE', `/api/secrets/${SECRET}`);
  await call('secret created again', 'POST', '/api/secrets', { name: SECRET, description: null, value: 'v2' });
  await call('exp-config', 'POST', `${c}/exp-config`, { config: {} });
  await call('exp-config not strings', 'POST', `${c}/exp-config`, { config: { a: 1 } });
  await call('unknown conversation', 'GET', '/api/conversations/contract-nope');
  await call('events of an unknown conversation', 'GET', '/api/conversations/contract-nope/events?limit=1');
  await call('create', 'POST', '/api/conversations', {
    conversation_id: conversationId,
    initial_user_msg: 'hello from the contract',
  });
  const deadline = Date.now() + 180_000;
  for (;;) {
    const info = await call('conversation', 'GET', c);
    if ((info.body as { status?: string } | null)?.status === 'RUNNING') break;
    assert.ok(Date.now() < deadline, `conversation never RUNNING: ${JSON.stringify(info.body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await call('newest event', 'GET', `${c}/events?reverse=true&limit=1`);
  await call('limit over 100', 'GET', `${c}/events?limit=101`);
  await call('limit 0', 'GET', `${c}/events?limit=0`);
  await call('post message', 'POST', `${c}/events`, {
    action: 'message',
    args: { content: 'second message', image_urls: [], file_urls: [], wait_for_response: false },
  });
  // The user's message event itself, found by its content.
  for (;;) {
    const page = await call('events', 'GET', `${c}/events?limit=100`);
    const mine = (page.body as { events: Array<{ source?: string; args?: { content?: string } }> }).events.find(
      (e) => e.source === 'user' && e.args?.content === 'second message',
    );
    if (mine) {
      answers.set('user message event', { status: 200, kind: 'json', body: mine });
      break;
    }
    assert.ok(Date.now() < deadline, 'the posted message never appeared among the events');
    await new Promise((r) => setTimeout(r, 250));
  }
  await call('stop', 'POST', `${c}/stop`);
  await call('post to a stopped conversation', 'POST', `${c}/events`, {
    action: 'message',
    args: { content: 'after stop', image_urls: [], file_urls: [], wait_for_response: false },
  });
  await call('conversation after stop', 'GET', c);
  answers.delete('conversation'); // polled: its last answer says RUNNING on both sides, compared below by status only
  return answers;
}

describe(
  'the nested contract, emulator against the real OpenHands server (same requests, same answers)',
  { timeout: 600_000 },
  () => {
    const made = new Set<string>();
    const provider = new DockerRuntimeProvider({ image: OPENHANDS_IMAGE, owner: 'contract-test' });
    const emulator = new DockerRuntimeProvider({ image: EMULATOR_IMAGE, owner: 'contract-test' });
    let llm: LlmStandIn;
    let real: Map<string, Answer>;
    let emulated: Map<string, Answer>;

    before(async () => {
      llm = await startStandInForSandboxes(provider);
      const run = async (p: DockerRuntimeProvider, extraEnv: Record<string, string> = {}) => {
        const id = uniqueId('contract');
        made.add(id);
        const h = await p.create({ conversationId: id, userId: 'contract', env: extraEnv });
        const deadline = Date.now() + (await p.requirements()).aliveTimeoutMs;
        while (
          (await request(`${h.url}/alive`)
            .then((r) => (r.body.dump(), r.statusCode))
            .catch(() => 0)) !== 200
        ) {
          assert.ok(Date.now() < deadline, `${id} never answered /alive: ${await p.diagnose(id)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        try {
          return await runContract(h.url, h.sessionApiKey, id, llm);
        } finally {
          await p.remove(id);
        }
      };
      emulated = await run(emulator);
      real = await run(provider);
      if (process.env.RECORD_OPENHANDS_ANSWERS === '1') {
        writeFileSync(
          join(PROJECT_ROOT, 'test/fixtures/openhands-1.4.0-answers.json'),
          `${JSON.stringify(Object.fromEntries(real), null, 2)}\n`,
        );
      }
    });

    after(async () => {
      await llm?.close();
      await removeContainers(made);
    });

    test('every step answers the same status code, of the same kind (JSON or plain text)', () => {
      assert.deepEqual(statusDiffs(real, emulated), []);
    });

    test('every JSON answer has the same shape (keys and value types)', () => {
      // The newest event is of whatever kind each agent wrote last: only the envelope every event has is compared.
      const envelope = (a: Answer) => ({
        ...(a.body as object),
        events: (a.body as { events: Array<Record<string, unknown>> }).events.map(
          ({ id, timestamp, source, message }) => ({ id, timestamp, source, message }),
        ),
      });
      const diffs: string[] = [];
      for (const [step, r] of real) {
        const e = emulated.get(step);
        if (!e || r.kind !== 'json') continue;
        const [rb, eb] = step === 'newest event' || step === 'events' ? [envelope(r), envelope(e)] : [r.body, e.body];
        diffs.push(...shapeDiff(rb, eb).map((d) => `${step}: ${d}`));
      }
      assert.deepEqual(diffs, []);
    });

    test('the answers nestor reads say the same thing', () => {
      for (const step of [
        'no key',
        'settings before any',
        'git token rejected',
        'secret exists',
        'unknown conversation',
        'events of an unknown conversation',
        'limit over 100',
      ]) {
        const r = real.get(step)!.body;
        const e = emulated.get(step)!.body;
        // Conversation IDs differ between the two runs; the rest of the message must not.
        const norm = (v: unknown) => JSON.stringify(v).replace(/contract-[\w-]+/g, '<id>');
        assert.equal(norm(e), norm(r), step);
      }
      assert.equal((real.get('post to a stopped conversation')!.body as string).trim(), 'Internal Server Error');
      assert.equal((real.get('conversation after stop')!.body as { status: string }).status, 'STOPPED');
      assert.equal((emulated.get('conversation after stop')!.body as { status: string }).status, 'STOPPED');
    });
  },
);
