// V1 warm-pool members boot dormant (the agent server's deferred init, on the emulator speaking V1): a member holds
// no key its conversation will use; the claim makes the conversation's keys, keeps them with the claim (never in the
// sandbox's own environment) and gives them to the server by POST /api/init after /alive, again after every restart.
// needs: docker
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, beforeEach, describe, test } from 'node:test';
import { request } from 'undici';
import { createRuntimeActivities } from '../../src/conversation/activities/runtime';
import { createPoolActivities } from '../../src/sandbox-pools/activities';
import { AgentServerClient } from '../../src/nested/agent-server';
import { DEFERRED_INIT_ENV, SECRET_KEY_ENV, SESSION_KEY_ENV } from '../../src/runtime/container-spec';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { envOf } from '../../src/runtime/docker-parts';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { docker, removeContainers } from '../helpers/docker';
import { uniqueId } from '../helpers/temporal';

const poolName = uniqueId('v1-deferred').replace(/[^a-zA-Z0-9_.-]/g, '-');
const provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES['emulator-v1'], pool: { name: poolName } });
const acts = { ...createRuntimeActivities({ runtime: provider }), ...createPoolActivities({ runtime: provider }) };
const made = new Set<string>();

const emptyPool = async () => {
  for (const m of await provider.pool.members()) await provider.pool.retire(m.memberId);
};
beforeEach(emptyPool);
after(async () => {
  await emptyPool();
  await removeContainers(made);
});

/** Status of a conversation route called with `key` (404 for a conversation it does not have: let in). */
async function searchWith(url: string, key: string): Promise<number> {
  const r = await request(`${url}/api/conversations/${randomUUID()}`, { headers: { 'x-session-api-key': key } });
  await r.body.dump();
  return r.statusCode;
}

describe('V1 pool members and the deferred init', () => {
  test('a member boots dormant with only its own keys; a claim initializes it with fresh ones, again after a restart', async () => {
    const memberId = uniqueId('d')
      .slice(-10)
      .replace(/[^a-z0-9]/g, '');
    await acts.createPoolMember({ pool: poolName, memberId, aliveTimeoutMs: 20_000 });
    const memberUrl = (await provider.pool.memberUrl(memberId))!;
    const [member] = await provider.pool.members();
    const memberInfo = await docker.getContainer(member.runtimeId).inspect();
    assert.equal(envOf(memberInfo, DEFERRED_INIT_ENV), 'true');
    const memberKey = envOf(memberInfo, SESSION_KEY_ENV.v1)!;
    const initKey = envOf(memberInfo, SECRET_KEY_ENV)!;
    assert.ok(memberKey && initKey, 'its own session and init keys');
    const dormant = new AgentServerClient({ baseUrl: memberUrl, sessionApiKey: memberKey });
    assert.equal((await dormant.initState()).state, 'dormant');
    assert.equal(await searchWith(memberUrl, memberKey), 503, 'no conversation route before the init');

    const cid = uniqueId('v1-deferred-conv');
    made.add(cid);
    const h = await acts.createRuntime({
      conversationId: cid,
      userId: 'u-d',
      incarnation: 'i1',
      aliveTimeoutMs: 20_000,
    });
    assert.equal(h.startPath, 'pool');
    assert.equal(h.deferredInit, true, 'its server waits for the keys the claim made');
    assert.equal(h.runtimeId, member.runtimeId);
    assert.notEqual(h.sessionApiKey, memberKey, 'the conversation has a key the member never had');
    assert.equal(
      (await new AgentServerClient({ baseUrl: h.url, sessionApiKey: h.sessionApiKey }).initState()).state,
      'ready',
    );
    assert.equal(await searchWith(h.url, h.sessionApiKey), 404, 'let in');
    assert.equal(await searchWith(h.url, memberKey), 401, "the member's own key no longer opens it");
    const claimed = await docker.getContainer(h.runtimeId).inspect();
    assert.ok(
      !(claimed.Config.Env ?? []).some((e) => e.includes(h.sessionApiKey)),
      "the conversation's key is not in the sandbox's environment",
    );
    // An init with a wrong init key changes nothing (401), whatever the state.
    await assert.rejects(
      new AgentServerClient({ baseUrl: h.url, sessionApiKey: 'x' }).initialize('not-the-init-key', {
        sessionApiKey: 'stolen',
        secretKey: 'stolen',
      }),
      /401|Unauthorized/i,
    );

    // A retried create adopts it with the same key; a restart forgets the init, and the resume gives it again.
    const again = await acts.createRuntime({ conversationId: cid, userId: 'u-d', incarnation: 'i1' });
    assert.equal(again.sessionApiKey, h.sessionApiKey);
    await acts.pauseRuntime({ conversationId: cid });
    const resumed = await acts.resumeRuntime({ conversationId: cid, incarnation: 'i1', aliveTimeoutMs: 20_000 });
    assert.equal(resumed.sessionApiKey, h.sessionApiKey);
    assert.equal(await searchWith(resumed.url, resumed.sessionApiKey), 404, 'initialized again after the restart');

    // Removing the conversation's sandbox takes its claim, and the keys kept with it.
    assert.equal(await provider.remove(cid), true);
    assert.equal(await provider.pool.claimLabels(memberId), undefined);
  });
});
