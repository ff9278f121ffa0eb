// Container spec building: name, labels, limits, port binding, environment.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formerRuntimeOwner, runtimeOwner } from '../../src/worker';
import { loadConfig } from '../../src/config';
import {
  DEFAULT_LIMITS,
  buildContainerSpec,
  containerName,
  reservedEnvName,
  resolveMemoryMb,
} from '../../src/runtime/container-spec';
import { claimOf } from '../../src/runtime/ownership';
import { NestorError } from '../../src/errors';
import { UNLABELLED_MANIFEST, manifestFromLabels, protocolOfKind } from '../../src/runtime/image-manifest';

describe('buildContainerSpec', () => {
  const spec = buildContainerSpec(
    {
      conversationId: 'c-42',
      userId: 'bob',
      env: { FAULT_ALIVE_STALL_MS: '5', SESSION_API_KEY: 'attempted-override' },
      cpus: 0.5,
      memoryMb: 256,
    },
    { image: 'nestor-emulator:latest', sessionApiKey: 'the-key' },
  );

  test('names the container after the conversation, deterministically', () => {
    assert.equal(spec.name, 'nestor-conv-c-42');
    assert.equal(containerName('c-42'), spec.name);
  });

  test('labels it as nestor-managed with conversation and user', () => {
    assert.deepEqual(spec.Labels, {
      'nestor.managed': 'true',
      'nestor.conversation-id': 'c-42',
      'nestor.user-id': 'bob',
    });
  });

  test('publishes the nested port on 127.0.0.1 only, with a port Docker picks', () => {
    assert.deepEqual(spec.HostConfig?.PortBindings, { '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    assert.deepEqual(spec.ExposedPorts, { '3000/tcp': {} });
  });

  test('applies the settings limits, and the documented defaults for the rest', () => {
    assert.equal(spec.HostConfig?.NanoCpus, 500_000_000);
    assert.equal(spec.HostConfig?.Memory, 256 * 1024 * 1024);
    assert.equal(spec.HostConfig?.PidsLimit, DEFAULT_LIMITS.pidsLimit);
    const dflt = buildContainerSpec({ conversationId: 'c', userId: 'u' }, { image: 'i', sessionApiKey: 'k' });
    assert.equal(dflt.HostConfig?.NanoCpus, DEFAULT_LIMITS.cpus * 1e9);
    assert.equal(dflt.HostConfig?.Memory, UNLABELLED_MANIFEST.defaultMemoryMb * 1024 * 1024);
  });

  test('passes extra environment, but nestor’s own variables win', () => {
    assert.ok(spec.Env?.includes('FAULT_ALIVE_STALL_MS=5'));
    assert.ok(spec.Env?.includes('SESSION_API_KEY=the-key'));
    assert.ok(!spec.Env?.includes('SESSION_API_KEY=attempted-override'));
    assert.ok(spec.Env?.includes('ALLOW_SET_CONVERSATION_ID=1'));
  });

  test('is hardened: unprivileged user, no capabilities, no privilege escalation, read-only root, tmpfs scratch', () => {
    assert.equal(spec.User, '10001:10001');
    assert.deepEqual(spec.HostConfig?.CapDrop, ['ALL']);
    assert.deepEqual(
      spec.HostConfig?.RestartPolicy,
      { Name: 'unless-stopped' },
      'back with the daemon, unless nestor stopped it',
    );
    assert.deepEqual(spec.HostConfig?.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(spec.HostConfig?.ReadonlyRootfs, true);
    assert.deepEqual(Object.keys(spec.HostConfig?.Tmpfs ?? {}), ['/tmp']);
  });

  test('keeps the file store on the conversation’s own volume', () => {
    assert.deepEqual(spec.HostConfig?.Mounts, [
      { Type: 'volume', Source: 'nestor-conv-c-42-data', Target: '/data', ReadOnly: false },
    ]);
    assert.ok(spec.Env?.includes('FILE_STORE_PATH=/data/file_store'));
  });

  test('joins the sandbox network; without egress, the internal one and no published port', () => {
    assert.equal(spec.HostConfig?.NetworkMode, 'nestor-sandboxes');
    const closed = buildContainerSpec(
      { conversationId: 'c', userId: 'u', egress: false },
      { image: 'i', sessionApiKey: 'k' },
    );
    assert.equal(closed.HostConfig?.NetworkMode, 'nestor-sandboxes-internal');
    assert.deepEqual(closed.HostConfig?.PortBindings, {});
  });
});

describe('the current agent server (V1) sandbox', () => {
  const manifest = { ...UNLABELLED_MANIFEST, kind: 'openhands-v1', port: 8000, tmpfsMb: 128 };
  const v1 = buildContainerSpec(
    { conversationId: 'c', userId: 'u', env: { MY_VAR: '1' } },
    { image: 'i', sessionApiKey: 'k', secretKey: 's', manifest },
  );

  test("gets its session key and a secret key of its own under V1's names, none of V0's, hardened the same", () => {
    assert.deepEqual(v1.Env, ['MY_VAR=1', 'OH_SESSION_API_KEYS_0=k', 'OH_SECRET_KEY=s']);
    assert.deepEqual(v1.ExposedPorts, { '8000/tcp': {} });
    assert.equal(v1.User, '10001:10001');
    assert.deepEqual(v1.HostConfig?.CapDrop, ['ALL']);
    assert.equal(v1.HostConfig?.ReadonlyRootfs, true);
    assert.equal(v1.HostConfig?.Init, true);
    assert.deepEqual(v1.HostConfig?.Tmpfs, { '/tmp': 'rw,noexec,nosuid,size=128m' });
    assert.equal(protocolOfKind('openhands-v1'), 'v1');
    assert.equal(protocolOfKind('openhands'), 'v0');
    assert.equal(protocolOfKind(undefined), 'v0');
  });

  test('environment that configures the server itself is named as reserved; other names are not', () => {
    for (const name of ['OH_LEASE_TTL_SECONDS', 'OH_SESSION_API_KEYS_0', 'SESSION_API_KEY', 'FILE_STORE_PATH', 'HOME'])
      assert.equal(reservedEnvName({ FINE: '1', [name]: 'x' }), name);
    assert.equal(reservedEnvName({ MY_OH_THING: '1', CONVERSATION_START_DELAY_MS: '0' }), undefined);
    assert.equal(reservedEnvName(undefined), undefined);
  });
});

describe('runtime image manifest (nestor.runtime.* labels)', () => {
  const labels = {
    'nestor.runtime.kind': 'openhands',
    'nestor.runtime.port': '3100',
    'nestor.runtime.memory-floor-mb': '1536',
    'nestor.runtime.default-memory-mb': '2048',
    'nestor.runtime.alive-timeout-ms': '180000',
    'nestor.runtime.tmpfs-mb': '256',
    'nestor.runtime.pool-env': 'INITIAL_NUM_WARM_SERVERS=1,B=x=y',
    'other.label': 'ignored',
  };
  const manifest = manifestFromLabels('img', labels);

  test('is read from the labels; an unlabelled image gets the emulator-sized defaults', () => {
    assert.deepEqual(manifest, {
      kind: 'openhands',
      port: 3100,
      memoryFloorMb: 1536,
      defaultMemoryMb: 2048,
      aliveTimeoutMs: 180_000,
      tmpfsMb: 256,
      poolEnv: { INITIAL_NUM_WARM_SERVERS: '1', B: 'x=y' },
    });
    assert.deepEqual(manifestFromLabels('img', undefined), UNLABELLED_MANIFEST);
  });

  test('a malformed label is an error naming it, not a silent default', () => {
    assert.throws(
      () => manifestFromLabels('img', { 'nestor.runtime.port': 'abc' }),
      /nestor\.runtime\.port: .*rebuild it/,
    );
    assert.throws(
      () => manifestFromLabels('img', { 'nestor.runtime.pool-env': 'no equals sign' }),
      /nestor\.runtime\.pool-env: expected K=V pairs separated by commas/,
    );
    assert.throws(
      () =>
        manifestFromLabels('img', {
          'nestor.runtime.memory-floor-mb': '2000',
          'nestor.runtime.default-memory-mb': '1000',
        }),
      /below its memory-floor-mb/,
    );
  });

  test("the container follows it: the image's port, memory default, sized /tmp, and an init that reaps what the server leaves", () => {
    const spec = buildContainerSpec(
      { conversationId: 'c', userId: 'u' },
      { image: 'img', sessionApiKey: 'k', manifest },
    );
    assert.deepEqual(spec.ExposedPorts, { '3100/tcp': {} });
    assert.deepEqual(spec.HostConfig?.PortBindings, { '3100/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    assert.ok(spec.Env?.includes('port=3100'));
    assert.equal(spec.HostConfig?.Memory, 2048 * 1024 * 1024);
    assert.equal(spec.HostConfig?.Tmpfs?.['/tmp'], 'rw,noexec,nosuid,size=256m');
    assert.equal(spec.HostConfig?.Init, true);
    assert.equal(spec.HostConfig?.ReadonlyRootfs, true);
    assert.equal(
      buildContainerSpec(
        { conversationId: 'c', userId: 'u' },
        { image: 'img', sessionApiKey: 'k', manifest, defaults: { memoryMb: 4096 } },
      ).HostConfig?.Memory,
      4096 * 1024 * 1024,
      'the operator default wins over the image default',
    );
  });

  test('memory below the floor is InvalidSettings naming where the number came from', () => {
    const refused = (f: () => unknown, field: string) =>
      assert.throws(
        f,
        (err) =>
          err instanceof NestorError &&
          err.type === 'InvalidSettings' &&
          err.details.field === field &&
          /below the 1536 MB the openhands runtime image needs/.test(err.message),
      );
    refused(() => resolveMemoryMb({ memoryMb: 1024 }, undefined, manifest), 'settings.sandbox.memoryMb');
    refused(() => resolveMemoryMb({}, { memoryMb: 1024 }, manifest), 'NESTOR_DEFAULT_MEMORY_MB');
    assert.equal(resolveMemoryMb({}, undefined, manifest), 2048);
  });
});

describe("claimOf: whose is a container or volume found under the conversation's name", () => {
  const mine = { 'nestor.managed': 'true', 'nestor.owner': 'svc-a', 'nestor.incarnation': 'run-1' };
  test("this life's own is adopted; an earlier life's is to be replaced; no incarnation asked adopts any of ours", () => {
    assert.equal(claimOf('n', mine, { id: 'svc-a' }, 'run-1'), 'own');
    assert.equal(claimOf('n', mine, { id: 'svc-a' }, 'run-2'), 'earlier');
    assert.equal(
      claimOf('n', { 'nestor.managed': 'true', 'nestor.owner': 'svc-a' }, { id: 'svc-a' }, 'run-2'),
      'earlier',
    );
    assert.equal(claimOf('n', mine, { id: 'svc-a' }, undefined), 'own');
  });
  test("another service's or an unlabelled one is never ours, and the error says whose it is", () => {
    assert.throws(
      () => claimOf('n', mine, { id: 'svc-b' }, 'run-1'),
      /belongs to another nestor service \(owner 'svc-a', this one is 'svc-b'; set NESTOR_SERVICE_ID alike/,
    );
    assert.throws(() => claimOf('n', {}, { id: 'svc-a' }, 'run-1'), /not managed by nestor/);
    assert.throws(() => claimOf('n', undefined, {}, undefined), /not managed by nestor/);
  });
  test("the owner is the service's ID; a label an earlier version wrote for the same namespace is still its own", () => {
    const c = loadConfig({ TEMPORAL_NAMESPACE: 'prod', NESTOR_SERVICE_ID: 'agents' });
    const owner = { id: runtimeOwner(c), formerly: formerRuntimeOwner(c) };
    assert.equal(owner.id, 'agents');
    assert.equal(
      runtimeOwner(loadConfig({ TEMPORAL_NAMESPACE: 'prod', NESTOR_TASK_QUEUE: 'agents' })),
      'prod/agents',
      'the namespace and task queue by default, whatever the address',
    );
    for (const former of ['127.0.0.1:7233/prod', 'temporal.internal:7233/prod'])
      assert.equal(claimOf('n', { ...mine, 'nestor.owner': former }, owner, 'run-1'), 'own');
    for (const theirs of ['127.0.0.1:7233/staging', 'other', '/prod'])
      assert.throws(() => claimOf('n', { ...mine, 'nestor.owner': theirs }, owner, 'run-1'), /another nestor service/);
    assert.throws(() => loadConfig({ NESTOR_SERVICE_ID: 'a/b' }), /NESTOR_SERVICE_ID: expected letters/);
  });
});
