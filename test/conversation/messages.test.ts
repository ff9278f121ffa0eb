// Messages end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConversationClient } from '../../src/conversation/client';
import { containersFor } from '../helpers/docker';
import { waitFor } from '../helpers/eventually';
import { uniqueId } from '../helpers/temporal';

import { e2eInput, startE2e, userMessages, type E2e } from '../helpers/e2e';

describe('messages end to end: delivered once, in order, whatever the state (Temporal + Docker + emulator)', () => {
  let client: ConversationClient;
  let lab: E2e;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    lab = await startE2e(made);
    ({ client } = lab);
  });

  after(() => lab?.stop());

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
});
