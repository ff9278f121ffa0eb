// Warm pools on the real Docker engine with the emulator image: members boot identity-free, claims are atomic, a claim
// applies the conversation's limits and keeps the member's unread key, retiring never removes a claimed member, and a
// pooled conversation's removal takes everything it had.
// needs: docker
import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import Docker from 'dockerode';
import { createRuntimeActivities } from '../../src/conversation/activities/runtime';
import { createPoolActivities } from '../../src/sandbox-pools/activities';
import { NestedClient } from '../../src/nested/client';
import { containerName } from '../../src/runtime/container-spec';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { LABELS } from '../../src/shared/constants';
import { containersFor, docker, removeContainers } from '../helpers/docker';
import { ErrorType, NestorError } from '../../src/errors';
import { uniqueId } from '../helpers/temporal';

const poolName = uniqueId('pool').replace(/[^a-zA-Z0-9_.-]/g, '-');
const provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, pool: { name: poolName } });
const pool = provider.pool;
const acts = { ...createRuntimeActivities({ runtime: provider }), ...createPoolActivities({ runtime: provider }) };
const made = new Set<string>();
const id = (p: string) => {
  const v = uniqueId(p);
  made.add(v);
  return v;
};

const emptyPool = async () => {
  for (const m of await pool.members()) await pool.retire(m.memberId);
};
beforeEach(emptyPool);
after(async () => {
  await emptyPool();
  await removeContainers(made);
});

/** Boot `n` members through the activity the pool's workflow uses. */
async function boot(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () =>
    uniqueId('m')
      .slice(-12)
      .replace(/[^a-z0-9]/g, ''),
  );
  await Promise.all(ids.map((memberId) => acts.createPoolMember({ pool: poolName, memberId, aliveTimeoutMs: 20_000 })));
  return ids;
}

/** The pool's provider on an engine whose first `method` call on a container fails with a 500 (a daemon error). */
function providerFailingOnce(method: 'rename' | 'update'): DockerRuntimeProvider {
  const flaky = new Docker();
  let fail = true;
  const getContainer = flaky.getContainer.bind(flaky);
  flaky.getContainer = (name: string) => {
    const c = getContainer(name);
    if (fail)
      c[method] = async () => {
        fail = false;
        throw Object.assign(new Error('(HTTP code 500) server error - injected'), { statusCode: 500 });
      };
    return c;
  };
  return new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, pool: { name: poolName }, docker: flaky });
}

describe('warm pool members on Docker', () => {
  test('a member boots identity-free: no conversation label, no request env, its own volume, ready once alive', async () => {
    const [memberId] = await boot(1);
    const m = (await pool.members()).find((x) => x.memberId === memberId)!;
    assert.equal(m.state, 'ready');
    const info = await docker.getContainer(m.runtimeId).inspect();
    assert.equal(info.Config.Labels[LABELS.pool], poolName);
    assert.equal(info.Config.Labels[LABELS.conversationId], undefined);
    assert.equal(info.Config.Labels[LABELS.userId], undefined);
    // Its env is the image's plus what makes the server nestor's (its own key among them): nothing of a conversation.
    const imageEnv = (await docker.getImage(RUNTIME_IMAGES.emulator).inspect()).Config.Env ?? [];
    const ours = info.Config.Env.filter((e) => !imageEnv.includes(e)).map((e) => e.split('=')[0]);
    const poolEnv = Object.keys((await provider.requirements()).poolEnv);
    assert.deepEqual(
      ours.sort(),
      ['ALLOW_SET_CONVERSATION_ID', 'SANDBOX_CLOSE_DELAY', 'SESSION_API_KEY', ...poolEnv].sort(),
      "the image's pool env and what makes the server nestor's: nothing of a conversation",
    );
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    const survey = await acts.surveyPool({ pool: poolName });
    assert.equal(survey.members.find((x) => x.memberId === memberId)?.problem, undefined);
    assert.equal(await pool.retire(memberId), true);
    assert.equal((await pool.members()).length, 0);
  });

  test('booting a member again (a retried activity) makes no second one', async () => {
    const [memberId] = await boot(1);
    await acts.createPoolMember({ pool: poolName, memberId, aliveTimeoutMs: 20_000 });
    const members = await pool.members();
    assert.deepEqual(
      members.map((m) => [m.memberId, m.state]),
      [[memberId, 'ready']],
    );
  });

  test("a member claimed before its boot's retry is never booted again: no second container on the claimant's volume", async () => {
    const [memberId] = await boot(1);
    const cid = id('claimed-then-retried');
    const h = await acts.createRuntime({ conversationId: cid, userId: 'u-a', aliveTimeoutMs: 20_000 });
    assert.equal(h.startPath, 'pool');
    // The boot's activity runs again (its first attempt made the member ready but its completion was lost).
    await acts.createPoolMember({ pool: poolName, memberId, aliveTimeoutMs: 20_000 });
    assert.deepEqual(await pool.members(), [], 'nothing claimable: no member was booted again');
    const volume = (await docker.getContainer(h.runtimeId).inspect()).Mounts.find(
      (m) => m.Destination === '/data',
    )!.Name!;
    const users = await docker.listContainers({ all: true, filters: { volume: [volume] } });
    assert.deepEqual(
      users.map((c) => c.Id),
      [h.runtimeId],
      "the claimant's volume is mounted by its own sandbox only",
    );
    assert.equal(await provider.remove(cid), true);
    assert.deepEqual(await pool.members(), [], 'and nothing is left to claim after the conversation is gone');
  });

  test('concurrent starts never share a member: each member goes to exactly one, the rest start cold', async () => {
    await boot(2);
    const ids = Array.from({ length: 6 }, () => id('claim'));
    const handles = await Promise.all(
      ids.map((conversationId) =>
        acts.createRuntime({ conversationId, userId: 'u-pool', incarnation: 'i1', aliveTimeoutMs: 20_000 }),
      ),
    );
    const pooled = handles.filter((h) => h.startPath === 'pool');
    assert.equal(pooled.length, 2, JSON.stringify(handles.map((h) => [h.startPath, h.coldReason])));
    assert.equal(new Set(handles.map((h) => h.runtimeId)).size, 6, 'six different containers');
    for (const h of handles.filter((x) => x.startPath === 'cold'))
      assert.equal(h.coldReason, 'the pool had no ready sandbox');
    assert.equal((await pool.members()).length, 0);
    // Each answers with its own key, on its conversation's name.
    for (const [i, h] of handles.entries()) {
      const info = await docker.getContainer(containerName(ids[i])).inspect();
      assert.equal(info.Id, h.runtimeId);
      assert.equal(await new NestedClient({ baseUrl: h.url, sessionApiKey: h.sessionApiKey }).alive(), true);
    }
  });

  test("a claim applies the conversation's limits and records whose it is; a retried create adopts it", async () => {
    await boot(1);
    const cid = id('limits');
    const h = await acts.createRuntime({
      conversationId: cid,
      userId: 'u-lim',
      incarnation: 'inc-1',
      cpus: 0.5,
      memoryMb: 384,
      pidsLimit: 100,
      aliveTimeoutMs: 20_000,
    });
    assert.equal(h.startPath, 'pool');
    const info = await docker.getContainer(h.runtimeId).inspect();
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.HostConfig.Memory, 384 * 1024 * 1024);
    assert.equal(info.HostConfig.PidsLimit, 100);
    const lock = await provider.pool.claimLabels(info.Config.Labels[LABELS.poolMember]);
    assert.equal(lock?.[LABELS.conversationId], cid);
    assert.equal(lock?.[LABELS.userId], 'u-lim');
    assert.equal(lock?.[LABELS.incarnation], 'inc-1');
    const summary = await provider.inspect(cid);
    assert.equal(summary?.conversationId, cid);
    assert.equal(summary?.pool, undefined, 'claimed: a conversation sandbox now, not a pool member');

    const again = await acts.createRuntime({ conversationId: cid, userId: 'u-lim', incarnation: 'inc-1' });
    assert.equal(again.runtimeId, h.runtimeId);
    assert.equal(again.sessionApiKey, h.sessionApiKey);
    assert.equal(again.adopted, true);
    assert.equal(again.startPath, 'pool');

    // Another life of the ID never inherits it: its data and key are removed with it.
    const later = await acts.createRuntime({ conversationId: cid, userId: 'u-lim', incarnation: 'inc-2' });
    assert.notEqual(later.runtimeId, h.runtimeId);
    await assert.rejects(docker.getContainer(h.runtimeId).inspect(), /no such container/i);
  });

  test("the claim beside the slot (claimRuntime) takes a member with the conversation's limits; a V0 server is not initialized", async () => {
    await boot(1);
    const cid = id('beside');
    let initialized = 0;
    const spied = Object.assign(Object.create(provider) as DockerRuntimeProvider, {
      initialize: async () => void initialized++,
    });
    const h = await createRuntimeActivities({ runtime: spied }).claimRuntime({
      conversationId: cid,
      userId: 'u-beside',
      incarnation: 'inc-1',
      cpus: 0.5,
      memoryMb: 384,
      aliveTimeoutMs: 20_000,
    });
    assert.ok(h, 'a member was taken');
    assert.equal(h.startPath, 'pool');
    assert.equal(h.deferredInit, false, 'its server took its keys at boot');
    assert.equal(initialized, 0, 'nothing to initialize: no engine call for it');
    const info = await docker.getContainer(h.runtimeId).inspect();
    assert.equal(info.Name, `/${containerName(cid)}`);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.HostConfig.Memory, 384 * 1024 * 1024);
    assert.equal(await new NestedClient({ baseUrl: h.url, sessionApiKey: h.sessionApiKey }).alive(), true);
    // Nothing left to take: the next claim beside a slot takes nothing (the start then creates its sandbox).
    assert.equal(await acts.claimRuntime({ conversationId: id('none'), userId: 'u-beside', incarnation: 'i' }), null);
  });

  test("limits below the image's floor are refused before a member is touched (none is burnt)", async () => {
    const [memberId] = await boot(1);
    const cid = id('below-floor');
    await assert.rejects(
      acts.createRuntime({
        conversationId: cid,
        userId: 'u-floor',
        incarnation: 'i',
        memoryMb: 1,
        aliveTimeoutMs: 20_000,
      }),
      (err) =>
        err instanceof NestorError &&
        err.type === ErrorType.InvalidSettings &&
        /settings.sandbox.memoryMb/.test(err.message),
    );
    const [m] = await pool.members();
    assert.equal(m?.memberId, memberId);
    assert.equal(m?.state, 'ready', 'still claimable');
    assert.equal(await pool.claimLabels(memberId), undefined, 'never locked');
    assert.deepEqual(await containersFor(cid), []);
  });

  test('requests a pooled sandbox cannot serve start cold and say why', async () => {
    await boot(1);
    const env = await acts.createRuntime({
      conversationId: id('env'),
      userId: 'u',
      env: { CONVERSATION_START_DELAY_MS: '1' },
      aliveTimeoutMs: 20_000,
    });
    assert.equal(env.startPath, 'cold');
    assert.match(env.coldReason!, /settings\.sandbox\.env/);
    const asked = await acts.createRuntime({ conversationId: id('cold'), userId: 'u', fromPool: false });
    assert.equal(asked.startPath, 'cold');
    assert.match(asked.coldReason!, /asked for a cold start/);
    assert.equal((await pool.members()).length, 1, 'the member is still there');
  });

  test("removing a pooled conversation's sandbox removes its volume and claim marker; retiring a claimed member does nothing", async () => {
    const [memberId] = await boot(1);
    const cid = id('remove');
    const h = await acts.createRuntime({ conversationId: cid, userId: 'u', aliveTimeoutMs: 20_000 });
    assert.equal(h.startPath, 'pool');
    assert.equal(await pool.retire(memberId), false, 'claimed: not the pool’s to remove');
    assert.equal((await docker.getContainer(h.runtimeId).inspect()).State.Running, true);
    const volumes = (await docker.getContainer(h.runtimeId).inspect()).Mounts.map((m) => m.Name!);
    assert.equal(await provider.remove(cid), true);
    for (const v of volumes) await assert.rejects(docker.getVolume(v).inspect(), /no such volume/i, v);
    assert.equal(await provider.pool.claimLabels(memberId), undefined, 'its lock went with it');
  });

  test("a pooled sandbox's removal retried after its container went still removes the member's volume and claim", async () => {
    const [memberId] = await boot(1);
    const cid = id('remove-retried');
    const h = await acts.createRuntime({ conversationId: cid, userId: 'u', aliveTimeoutMs: 20_000 });
    assert.equal(h.startPath, 'pool');
    const volume = (await docker.getContainer(h.runtimeId).inspect()).Mounts.find(
      (m) => m.Destination === '/data',
    )!.Name!;
    // The first attempt removed the container (without its volume) and died.
    await docker.getContainer(h.runtimeId).remove({ force: true });
    assert.equal(await provider.remove(cid), false, 'the retry finds no container');
    await assert.rejects(
      docker.getVolume(volume).inspect(),
      /no such volume/i,
      "the member's volume (the user's data)",
    );
    assert.equal(await provider.pool.claimLabels(memberId), undefined, 'and its claim');
  });

  test("a claim whose rename failed after its lock is finished by the start's retry, not stranded", async () => {
    const [memberId] = await boot(1);
    // The engine fails the claim's rename once (a daemon error, not 404 or 409): the attempt ends after its lock.
    const first = createRuntimeActivities({ runtime: providerFailingOnce('rename') });
    const cid = id('rename-failed');
    const spec = { conversationId: cid, userId: 'u', incarnation: 'i1', aliveTimeoutMs: 20_000 };
    await assert.rejects(first.createRuntime(spec), /injected/);
    assert.equal((await pool.claimLabels(memberId))?.[LABELS.conversationId], cid, 'its lock stayed');
    // The retry (the activity again, on a sound engine) finishes that claim.
    const h = await acts.createRuntime(spec);
    assert.equal(h.startPath, 'pool');
    assert.equal((await docker.getContainer(h.runtimeId).inspect()).Config.Labels[LABELS.poolMember], memberId);
    assert.deepEqual(await pool.members(), [], 'no member left locked and unclaimed');
    assert.equal(await provider.remove(cid), true);
    assert.equal(await pool.claimLabels(memberId), undefined);
  });

  test("a slow attempt whose rename loses to the start's retry keeps the retry's claim record", async () => {
    const [memberId] = await boot(1);
    const cid = id('two-attempts');
    const spec = { conversationId: cid, userId: 'u', incarnation: 'i1', aliveTimeoutMs: 20_000 };
    // The first attempt locks the member; its rename waits until the retry (which finds that lock) has claimed it.
    let release!: () => void;
    let renaming!: () => void;
    const [gate, renamingNow] = [new Promise<void>((r) => (release = r)), new Promise<void>((r) => (renaming = r))];
    const slow = new Docker();
    const getContainer = slow.getContainer.bind(slow);
    slow.getContainer = (name: string) => {
      const c = getContainer(name);
      const rename = c.rename.bind(c);
      c.rename = async (opts: object) => {
        renaming();
        await gate;
        return rename(opts);
      };
      return c;
    };
    const first = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, pool: { name: poolName }, docker: slow });
    const firstClaim = first.pool.claim(spec);
    await renamingNow;
    const h = await acts.createRuntime(spec);
    assert.equal(h.startPath, 'pool');
    release();
    assert.equal(await firstClaim, undefined, 'the first attempt claims nothing more');
    assert.equal((await pool.claimLabels(memberId))?.[LABELS.conversationId], cid, "the claim's record stayed");
    const again = await acts.createRuntime(spec);
    assert.equal(again.runtimeId, h.runtimeId, 'adopted as its own again');
    assert.equal(again.adopted, true);
  });

  test("a claim whose limits were not applied (the attempt died after the rename) gets them from the start's retry", async () => {
    const [memberId] = await boot(1);
    // The engine fails the claim's `docker update` once: the attempt ends with the member renamed, at the defaults.
    const first = createRuntimeActivities({ runtime: providerFailingOnce('update') });
    const cid = id('limits-lost');
    const spec = { conversationId: cid, userId: 'u', incarnation: 'i1', cpus: 0.5, memoryMb: 384, pidsLimit: 100 };
    await assert.rejects(first.createRuntime({ ...spec, aliveTimeoutMs: 20_000 }), /injected/);
    const h = await acts.createRuntime({ ...spec, aliveTimeoutMs: 20_000 });
    assert.equal(h.startPath, 'pool');
    assert.equal(h.adopted, true);
    const info = await docker.getContainer(h.runtimeId).inspect();
    assert.equal(info.Config.Labels[LABELS.poolMember], memberId);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.HostConfig.Memory, 384 * 1024 * 1024);
    assert.equal(info.HostConfig.PidsLimit, 100);
  });

  test('the survey names a member that stopped; capacity follows the image and the host', async () => {
    const [memberId] = await boot(1);
    const m = (await pool.members()).find((x) => x.memberId === memberId)!;
    await docker.getContainer(m.runtimeId).stop({ t: 0 });
    const survey = await acts.surveyPool({ pool: poolName });
    assert.match(survey.members.find((x) => x.memberId === memberId)!.problem!, /container exited/);
    const cap = await createPoolActivities({ runtime: provider, hostMemoryMb: async () => 4096 }).poolCapacity({
      pool: poolName,
    });
    assert.deepEqual(cap, { memberMemoryMb: 256, hostMemoryMb: 4096, maxSize: 8 });
    await assert.rejects(acts.surveyPool({ pool: 'another-pool' }), /not this worker's/);
  });
});
