// Container spec building: name, labels, limits, port binding, environment.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_LIMITS, buildContainerSpec, containerName } from '../src/runtime/docker';

describe('buildContainerSpec', () => {
  const spec = buildContainerSpec(
    { conversationId: 'c-42', userId: 'bob', env: { FAULT_ALIVE_STALL_MS: '5', SESSION_API_KEY: 'attempted-override' }, cpus: 0.5, memoryMb: 256 },
    { image: 'nestor-emulator:latest', sessionApiKey: 'the-key' },
  );

  test('names the container after the conversation, deterministically', () => {
    assert.equal(spec.name, 'nestor-conv-c-42');
    assert.equal(containerName('c-42'), spec.name);
  });

  test('labels it as nestor-managed with conversation and user', () => {
    assert.deepEqual(spec.Labels, { 'nestor.managed': 'true', 'nestor.conversation-id': 'c-42', 'nestor.user-id': 'bob' });
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
    assert.equal(dflt.HostConfig?.Memory, DEFAULT_LIMITS.memoryMb * 1024 * 1024);
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
    assert.deepEqual(spec.HostConfig?.RestartPolicy, { Name: 'unless-stopped' }, 'back with the daemon, unless nestor stopped it');
    assert.deepEqual(spec.HostConfig?.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(spec.HostConfig?.ReadonlyRootfs, true);
    assert.deepEqual(Object.keys(spec.HostConfig?.Tmpfs ?? {}), ['/tmp']);
  });

  test('keeps the file store on the conversation’s own volume', () => {
    assert.deepEqual(spec.HostConfig?.Mounts, [{ Type: 'volume', Source: 'nestor-conv-c-42-data', Target: '/data', ReadOnly: false }]);
    assert.ok(spec.Env?.includes('FILE_STORE_PATH=/data/file_store'));
  });

  test('joins the sandbox network; without egress, the internal one and no published port', () => {
    assert.equal(spec.HostConfig?.NetworkMode, 'nestor-sandboxes');
    const closed = buildContainerSpec({ conversationId: 'c', userId: 'u', egress: false }, { image: 'i', sessionApiKey: 'k' });
    assert.equal(closed.HostConfig?.NetworkMode, 'nestor-sandboxes-internal');
    assert.deepEqual(closed.HostConfig?.PortBindings, {});
  });
});
