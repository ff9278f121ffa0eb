// The per-user limit end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
// needs: temporal, docker
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConversationClient } from '../../src/conversation/client';
import { containersFor, docker } from '../helpers/docker';
import { uniqueId } from '../helpers/temporal';

import { e2eInput, startE2e, type E2e } from '../helpers/e2e';

describe('the per-user limit of 2 end to end (Temporal + Docker + emulator)', () => {
  let client: ConversationClient;
  let lab: E2e;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    lab = await startE2e(made, { maxConversationsPerUser: 2 });
    ({ client } = lab);
  });

  after(() => lab?.stop());

  test('a third start pauses the least recently active conversation, with the reason in its status', async () => {
    const user = uniqueId('limited-user');
    const [c1, c2, c3] = [uniqueId('lim'), uniqueId('lim'), uniqueId('lim')];
    await client.start(input(c1, { userId: user }));
    await client.start(input(c2, { userId: user }));
    await client.sendMessage(c1, 'c1 was active last'); // so c2 is now the least recently active
    await client.start(input(c3, { userId: user }));
    const s2 = await client.status(c2);
    assert.equal(s2.status, 'PAUSED');
    assert.equal(s2.pauseReason, 'too many conversations');
    assert.equal((await client.status(c1)).status, 'RUNNING');
    assert.equal((await client.status(c3)).status, 'RUNNING');
    assert.equal((await containersFor(c2))[0].State, 'exited');
    // Resuming takes a slot again, pausing the next least recently active: c1, whose message came before c3 started.
    await client.resume(c2);
    assert.equal((await client.status(c1)).pauseReason, 'too many conversations');
    assert.equal((await client.status(c3)).status, 'RUNNING');
    await Promise.all([c1, c2, c3].map((c) => client.close(c)));
  });

  test('three concurrent starts for one user never leave more than two running', async () => {
    const user = uniqueId('burst-user');
    const ids = [uniqueId('burst'), uniqueId('burst'), uniqueId('burst')];
    const since = Math.floor(Date.now() / 1000) - 1;
    const infos = await Promise.all(ids.map((id) => client.start(input(id, { userId: user }))));
    // Docker's own record of every start and stop of this user's sandboxes: no moment between two looks is missed.
    const maxRunning = await mostRunningAtOnce(user, since);
    assert.ok(
      infos.every((i) => i.status === 'RUNNING'),
      'every start got its answer',
    );
    assert.ok(maxRunning <= 2, `at most two running at any time, saw ${maxRunning}`);
    const statuses = await Promise.all(ids.map((id) => client.status(id)));
    assert.deepEqual(statuses.map((s) => s.status).sort(), ['PAUSED', 'RUNNING', 'RUNNING']);
    await Promise.all(ids.map((id) => client.close(id)));
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
