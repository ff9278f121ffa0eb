// The Docker runtime provider on the real engine with the emulator image: create, adopt, race, limits, removal.
// needs: docker
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config';
import { SANDBOX_NETWORK_INTERNAL, containerName, volumeName } from '../../src/runtime/container-spec';
import { formerRuntimeOwner, runtimeOwner } from '../../src/worker';
import { createRuntimeActivities } from '../../src/conversation/activities/runtime';
import { NestedClient } from '../../src/nested/client';
import { DockerRuntimeProvider, demux } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { ErrorType, NestorError } from '../../src/errors';
import { containersFor, docker, removeContainers, volumesFor } from '../helpers/docker';
import { uniqueId } from '../helpers/temporal';

const provider = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator });
const acts = createRuntimeActivities({ runtime: provider });
const made = new Set<string>();
const id = (p: string) => {
  const v = uniqueId(p);
  made.add(v);
  return v;
};

after(() => removeContainers(made));

describe('DockerRuntimeProvider', () => {
  test('creates a labelled, limited container and answers /alive on 127.0.0.1', async () => {
    const cid = id('create');
    const rt = await acts.createRuntime({
      conversationId: cid,
      userId: 'u1',
      memoryMb: 256,
      cpus: 0.5,
      pidsLimit: 64,
      aliveTimeoutMs: 20_000,
    });
    assert.equal(rt.adopted, false);
    assert.match(rt.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(Buffer.from(rt.sessionApiKey, 'base64url').length, 32);
    const info = await docker.getContainer(containerName(cid)).inspect();
    assert.equal(info.HostConfig.Memory, 256 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.HostConfig.PidsLimit, 64);
    assert.equal(info.Config.Labels['nestor.conversation-id'], cid);
    assert.equal(info.NetworkSettings.Ports['3000/tcp']?.[0].HostIp, '127.0.0.1');
    assert.equal(await new NestedClient({ baseUrl: rt.url, sessionApiKey: rt.sessionApiKey }).alive(), true);
    // Hardened as built, as Docker reports it.
    assert.equal(info.Config.User, '10001:10001');
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    const mount = info.Mounts.find((m) => m.Destination === '/data');
    assert.equal(mount?.Type, 'volume');
    assert.equal(mount?.Name, volumeName(cid));
    const volume = await docker.getVolume(volumeName(cid)).inspect();
    assert.equal(volume.Labels['nestor.conversation-id'], cid);
    // The root file system really is read-only, and the sandbox is not root.
    const exec = await docker.getContainer(containerName(cid)).exec({
      Cmd: [
        '/usr/local/bin/node',
        '-e',
        "try{require('fs').writeFileSync('/x','')}catch(e){process.stdout.write(e.code)};process.stdout.write(' uid='+process.getuid())",
      ],
      AttachStdout: true,
    });
    const stream = await exec.start({});
    const out = await new Promise<string>((resolve) => {
      let b = Buffer.alloc(0);
      stream.on('data', (d: Buffer) => (b = Buffer.concat([b, d])));
      stream.on('end', () => resolve(demux(b)));
    });
    assert.equal(out, 'EROFS uid=10001');
  });

  test('a second create adopts the existing container with its session key; a stopped one is started again with its file store', async () => {
    const cid = id('adopt');
    const first = await acts.createRuntime({ conversationId: cid, userId: 'u', aliveTimeoutMs: 20_000 });
    const nested = new NestedClient({ baseUrl: first.url, sessionApiKey: first.sessionApiKey });
    await nested.storeSettings({ llm_model: 'm', llm_api_key: 'k' });
    await nested.createConversation({ conversation_id: cid, initial_user_msg: 'kept across a stop' });
    const before = await nested.getEvents(cid, { limit: 100 });
    await provider.pause(cid);
    assert.equal((await provider.inspect(cid))?.state, 'exited');
    const second = await acts.createRuntime({ conversationId: cid, userId: 'u', aliveTimeoutMs: 20_000 });
    assert.equal(second.adopted, true);
    assert.equal(second.runtimeId, first.runtimeId);
    assert.equal(second.sessionApiKey, first.sessionApiKey);
    assert.equal((await provider.inspect(cid))?.state, 'running');
    assert.equal((await containersFor(cid)).length, 1);
    const after = await new NestedClient({ baseUrl: second.url, sessionApiKey: second.sessionApiKey }).getEvents(cid, {
      limit: 100,
    });
    assert.ok(before.events.length > 0);
    assert.deepEqual(after.events.slice(0, before.events.length), before.events, 'events survive the stop');
  });

  test('a reused conversation ID never inherits an earlier life: its container and volume (file store, secrets) are replaced', async () => {
    const cid = id('reuse');
    const first = await acts.createRuntime({
      conversationId: cid,
      userId: 'u1',
      incarnation: 'run-1',
      aliveTimeoutMs: 20_000,
    });
    const nested = new NestedClient({ baseUrl: first.url, sessionApiKey: first.sessionApiKey });
    await nested.storeSettings({ llm_model: 'm', llm_api_key: 'sk-earlier-life' });
    // The same start again (a retry of the same life) adopts it.
    const retried = await acts.createRuntime({
      conversationId: cid,
      userId: 'u1',
      incarnation: 'run-1',
      aliveTimeoutMs: 20_000,
    });
    assert.equal(retried.runtimeId, first.runtimeId);
    assert.equal(retried.adopted, true);
    // A new life under the same ID (after ERROR or a termination): a new container, key and file store.
    const second = await acts.createRuntime({
      conversationId: cid,
      userId: 'u2',
      incarnation: 'run-2',
      aliveTimeoutMs: 20_000,
    });
    assert.notEqual(second.runtimeId, first.runtimeId);
    assert.equal(second.adopted, false);
    assert.notEqual(second.sessionApiKey, first.sessionApiKey);
    const settings = await new NestedClient({ baseUrl: second.url, sessionApiKey: second.sessionApiKey })
      .getSettings()
      .catch(() => null);
    assert.notEqual(settings?.llm_model, 'm', "the earlier life's settings are gone with its volume");
    const info = await docker.getContainer(containerName(cid)).inspect();
    assert.equal(info.Config.Labels['nestor.incarnation'], 'run-2');
    assert.equal(info.Config.Labels['nestor.user-id'], 'u2');
    assert.equal((await docker.getVolume(volumeName(cid)).inspect()).Labels['nestor.incarnation'], 'run-2');
    // And the earlier life cannot resume it.
    await assert.rejects(
      provider.resume(cid, 'run-1'),
      (err) =>
        err instanceof NestorError && err.type === ErrorType.RuntimeStartFailed && /another life/.test(err.message),
    );
  });

  test("another nestor service's container under the same name is never adopted nor removed", async () => {
    const cid = id('other-owner');
    const theirs = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner: 'other-temporal:7233/default' });
    const mine = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner: 'this-temporal:7233/default' });
    const made = await theirs.create({ conversationId: cid, userId: 'u1', incarnation: 'a' });
    await assert.rejects(
      mine.create({ conversationId: cid, userId: 'u1', incarnation: 'a' }),
      (err) => err instanceof NestorError && /belongs to another nestor service/.test(err.message) && !err.retryable,
    );
    await assert.rejects(mine.resume(cid, 'a'), /belongs to another nestor service/);
    assert.equal(
      (await docker.getContainer(containerName(cid)).inspect()).Id,
      made.runtimeId,
      'still there, untouched',
    );
  });

  test("a sandbox labelled by a version before NESTOR_SERVICE_ID (`<address>/<namespace>`) is still its service's: listed, resumed, removed", async () => {
    const cid = id('former-owner');
    const before = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator, owner: '127.0.0.1:7233/ns-former' });
    const c = { ...loadConfig(), namespace: 'ns-former', taskQueue: 'q' };
    const after = new DockerRuntimeProvider({
      image: RUNTIME_IMAGES.emulator,
      owner: runtimeOwner(c),
      formerOwner: formerRuntimeOwner(c),
    });
    const made = await before.create({ conversationId: cid, userId: 'u1', incarnation: 'a' });
    await before.pause(cid);
    assert.ok(
      (await after.list()).some((r) => r.conversationId === cid),
      'listed (the reaper sees it)',
    );
    assert.equal((await after.resume(cid, 'a')).runtimeId, made.runtimeId);
    await after.remove(cid);
    assert.deepEqual(await containersFor(cid), []);
  });

  test('a sandbox network someone else made without the isolation nestor needs is refused, naming it; nothing is created', async () => {
    const net = docker.getNetwork(SANDBOX_NETWORK_INTERNAL);
    await net.remove().catch(() => undefined);
    // As a user (or an older tool) may have made it: not internal, containers reaching each other.
    await docker.createNetwork({ Name: SANDBOX_NETWORK_INTERNAL, Driver: 'bridge' });
    const cid = id('bad-network');
    try {
      const fresh = new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator });
      await assert.rejects(
        fresh.create({ conversationId: cid, userId: 'u', egress: false }),
        (err) =>
          err instanceof NestorError &&
          err.type === ErrorType.RuntimeStartFailed &&
          /network nestor-sandboxes-internal exists but is not internal: .*docker network rm/.test(err.message),
      );
      assert.deepEqual(await containersFor(cid), []);
    } finally {
      await net.remove().catch(() => undefined);
    }
    // Removed, nestor makes it right again.
    const made = await new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }).create({
      conversationId: cid,
      userId: 'u',
      egress: false,
    });
    assert.ok(made.runtimeId);
    const info = await net.inspect();
    assert.equal(info.Internal, true);
    assert.equal(info.Options?.['com.docker.network.bridge.enable_icc'], 'false');
    await provider.remove(cid);
  });

  test('five racing creates of one conversation leave one container and agree on it', async () => {
    const cid = id('race');
    const all = await Promise.all(
      Array.from({ length: 5 }, () => provider.create({ conversationId: cid, userId: 'u' })),
    );
    assert.equal(new Set(all.map((h) => h.runtimeId)).size, 1);
    assert.equal(new Set(all.map((h) => h.sessionApiKey)).size, 1);
    assert.equal((await containersFor(cid)).length, 1);
  });

  test('remove is forced and idempotent; list sees only labelled containers', async () => {
    const cid = id('remove');
    await provider.create({ conversationId: cid, userId: 'u' });
    assert.ok((await provider.list()).some((r) => r.conversationId === cid));
    assert.equal(await provider.remove(cid), true);
    assert.equal(await provider.remove(cid), false);
    assert.deepEqual(await containersFor(cid), []);
    assert.deepEqual(await volumesFor(cid), [], 'the data volume goes with it');
  });

  test('a missing image is RuntimeImageNotFound, non-retryable, saying how to build it', async () => {
    const p = new DockerRuntimeProvider({ image: 'nestor-no-such-image:never' });
    await assert.rejects(p.create({ conversationId: id('noimage'), userId: 'u' }), (err) => {
      assert.ok(err instanceof NestorError);
      assert.equal(err.type, ErrorType.RuntimeImageNotFound);
      assert.equal(err.retryable, false);
      assert.match(err.message, /image 'nestor-no-such-image:never' not found locally; build it with 'npm run setup'/);
      return true;
    });
  });

  test('the emulator start-up delay knob holds /alive back, and createRuntime waits it out', async () => {
    const rt = await acts.createRuntime({
      conversationId: id('slow'),
      userId: 'u',
      env: { STARTUP_DELAY_MS: '1200' },
      aliveTimeoutMs: 20_000,
    });
    assert.ok(rt.readyMs >= 1200, `ready after ${rt.readyMs} ms`);
  });

  test('a server that never answers /alive fails within the bound as RuntimeStartFailed', async () => {
    const cid = id('noalive');
    const t0 = Date.now();
    await assert.rejects(
      acts.createRuntime({
        conversationId: cid,
        userId: 'u',
        env: { FAULT_ALIVE_STATUS: '503' },
        aliveTimeoutMs: 1500,
      }),
      (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, ErrorType.RuntimeStartFailed);
        assert.match(err.message, /GET \/alive did not answer within 1500 ms: container nestor-conv-.* is running/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('a container that exits at once is reported with its state and last log lines', async () => {
    const cid = id('crash');
    await assert.rejects(
      acts.createRuntime({
        conversationId: cid,
        userId: 'u',
        env: { FAULT_ALIVE_ERROR_RATE: '7' },
        aliveTimeoutMs: 10_000,
      }),
      (err) => {
        assert.ok(err instanceof NestorError);
        assert.equal(err.type, ErrorType.RuntimeStartFailed);
        // It exits, and Docker restarts it (restart policy): a crash loop is reported as soon as it is seen.
        assert.match(
          err.message,
          /(exited|restarting) \(exit code 1\).*FAULT_ALIVE_ERROR_RATE must be between 0 and 1/,
        );
        return true;
      },
    );
  });

  /** Run a node one-liner inside a sandbox and return what it printed. */
  async function inside(conversationId: string, script: string): Promise<string> {
    const exec = await docker
      .getContainer(containerName(conversationId))
      .exec({ Cmd: ['/usr/local/bin/node', '-e', script], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    return new Promise<string>((resolve) => {
      let b = Buffer.alloc(0);
      stream.on('data', (d: Buffer) => (b = Buffer.concat([b, d])));
      stream.on('end', () => resolve(demux(b).trim()));
    });
  }

  test('one sandbox cannot reach another', async () => {
    const [a, b] = [id('icc-a'), id('icc-b')];
    await Promise.all(
      [a, b].map((cid) => acts.createRuntime({ conversationId: cid, userId: 'u', aliveTimeoutMs: 20_000 })),
    );
    const net = await docker.getNetwork('nestor-sandboxes').inspect();
    assert.equal(net.Options?.['com.docker.network.bridge.enable_icc'], 'false');
    const bIp = (await docker.getContainer(containerName(b)).inspect()).NetworkSettings.Networks['nestor-sandboxes']
      .IPAddress;
    assert.match(bIp, /^\d+\.\d+\.\d+\.\d+$/);
    const probe = (url: string) =>
      `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(1500) }).then(r => console.log('reached ' + r.status), e => console.log('blocked ' + (e.cause?.code ?? e.name)))`;
    // Each sandbox answers itself on its own address, so the probe works; the neighbour stays out of reach.
    assert.equal(await inside(b, probe(`http://${bIp}:3000/alive`)), 'reached 200');
    assert.match(await inside(a, probe(`http://${bIp}:3000/alive`)), /^blocked /);
  });

  test('without egress: an internal network the sandbox cannot leave, reached by the worker at its address', async () => {
    const [open, closed] = [id('egress'), id('noegress')];
    const rt = await acts.createRuntime({ conversationId: closed, userId: 'u', egress: false, aliveTimeoutMs: 20_000 });
    await acts.createRuntime({ conversationId: open, userId: 'u', aliveTimeoutMs: 20_000 });
    assert.match(rt.url, /^http:\/\/\d+\.\d+\.\d+\.\d+:3000$/);
    assert.equal(await new NestedClient({ baseUrl: rt.url, sessionApiKey: rt.sessionApiKey }).alive(), true);
    assert.equal((await docker.getNetwork('nestor-sandboxes-internal').inspect()).Internal, true);
    // Traffic that would be forwarded off its bridge is dropped: here, to the sandbox on the egress network.
    const openIp = (await docker.getContainer(containerName(open)).inspect()).NetworkSettings.Networks[
      'nestor-sandboxes'
    ].IPAddress;
    const probe = `const s = require('net').connect({ host: ${JSON.stringify(openIp)}, port: 3000 });
      const t = setTimeout(() => { console.log('timeout'); s.destroy(); }, 1500);
      s.on('connect', () => { clearTimeout(t); console.log('connected'); s.destroy(); });
      s.on('error', (e) => { clearTimeout(t); console.log(e.code); });`;
    assert.equal(await inside(open, probe), 'connected', 'the probe works where it is allowed (the sandbox itself)');
    assert.equal(await inside(closed, probe), 'timeout');
    // Adopting it again finds the same address.
    assert.equal((await provider.create({ conversationId: closed, userId: 'u', egress: false })).url, rt.url);
  });
});
