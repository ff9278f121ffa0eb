// The Kubernetes objects of a sandbox (src/runtime/pod-spec.ts), field by field, without a cluster.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';
import { LABELS } from '../../src/shared/constants';
import { runtimeFromConfig } from '../../src/worker';
import { UNLABELLED_MANIFEST, manifestFromLabels } from '../../src/runtime/image-manifest';
import { claimOf } from '../../src/runtime/ownership';
import {
  CONVERSATION_LABEL,
  POD_TEMPLATE_ANNOTATION,
  buildClaim,
  buildNetworkPolicy,
  buildPod,
  buildSecret,
  claimName,
  identityLabels,
  labelValue,
  podName,
  type PodSettings,
} from '../../src/runtime/pod-spec';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const settings: PodSettings = {
  image: 'nestor-emulator:latest',
  manifest: UNLABELLED_MANIFEST,
  namespace: 'sandboxes',
  owner: 'default/nestor-conversations',
};
const spec = { conversationId: 'Conv_42.A', userId: 'bob@example.com', incarnation: 'run-7', env: { FOO: 'bar' } };

describe('Kubernetes names and labels', () => {
  test('any conversation ID gives DNS-label names of at most 63 characters, distinct by case', () => {
    for (const id of ['c', 'Conv_42.A', 'conv_42.a', 'x'.repeat(100), '0-._', 'a..b'.replace('..', '.')]) {
      for (const name of [podName(id), claimName(id)]) {
        assert.match(name, DNS_LABEL, name);
        assert.ok(name.length <= 63, name);
      }
    }
    assert.notEqual(podName('Conv_42.A'), podName('conv_42.a'));
  });

  test('labels hold hashes, annotations the exact values ownership is checked on', () => {
    const pod = buildPod(spec, settings);
    assert.equal(pod.metadata?.labels?.[LABELS.owner], labelValue('default/nestor-conversations'));
    assert.equal(pod.metadata?.labels?.[CONVERSATION_LABEL], labelValue('Conv_42.A'));
    for (const v of Object.values(pod.metadata?.labels ?? {}))
      assert.match(v, /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
    const claim = buildClaim(spec, settings);
    const labels = identityLabels(claim.metadata!);
    assert.equal(labels?.[LABELS.userId], 'bob@example.com');
    assert.equal(claimOf('c', labels, { id: 'default/nestor-conversations' }, 'run-7'), 'own');
    assert.equal(claimOf('c', labels, { id: 'default/nestor-conversations' }, 'run-8'), 'earlier');
    assert.throws(() => claimOf('c', labels, { id: 'another/service' }, 'run-7'), { name: 'RuntimeStartFailed' });
    // Not nestor's: no managed label, whatever its annotations say.
    assert.throws(() => claimOf('c', identityLabels({ annotations: claim.metadata!.annotations }), {}, undefined), {
      name: 'RuntimeStartFailed',
    });
    assert.equal(claim.metadata?.annotations?.[POD_TEMPLATE_ANNOTATION], undefined, 'the provider adds the template');
  });
});

describe('the sandbox pod', () => {
  test('keys and the request env are in the Secret only, the server env per protocol', () => {
    const keys = { sessionApiKey: 'session-key', secretKey: 'secret-key' };
    const v0 = buildSecret(spec, settings, keys);
    assert.deepEqual(v0.stringData, {
      FOO: 'bar',
      SESSION_API_KEY: 'session-key',
      ALLOW_SET_CONVERSATION_ID: '1',
      port: '3000',
      FILE_STORE_PATH: '/data/file_store',
      SANDBOX_CLOSE_DELAY: '0',
    });
    const v1 = buildSecret(
      spec,
      { ...settings, manifest: manifestFromLabels('i', { 'nestor.runtime.kind': 'openhands-v1' }) },
      keys,
    );
    assert.deepEqual(v1.stringData, { FOO: 'bar', OH_SESSION_API_KEYS_0: 'session-key', OH_SECRET_KEY: 'secret-key' });
    assert.ok(!JSON.stringify(buildPod(spec, settings)).includes('bar'), 'no env value in the pod spec');
  });

  test('limits from the request, defaults and the manifest; below the floor is InvalidSettings', () => {
    const c = buildPod({ ...spec, cpus: 2, memoryMb: 2048 }, settings).spec!.containers[0];
    assert.deepEqual(c.resources?.limits, { cpu: '2', memory: '2048Mi' });
    assert.deepEqual(c.resources?.requests, { cpu: '0.2', memory: '512Mi' });
    const d = buildPod(spec, { ...settings, defaults: { cpus: 1, memoryMb: 300 } }).spec!.containers[0];
    assert.deepEqual(d.resources?.limits, { cpu: '1', memory: '300Mi' });
    assert.throws(() => buildPod({ ...spec, memoryMb: 1 }, settings), { name: 'InvalidSettings' });
  });

  test('the data claim at /data, /tmp in memory, the claim of the class asked for', () => {
    const pod = buildPod(spec, settings);
    assert.deepEqual(pod.spec?.volumes, [
      { name: 'data', persistentVolumeClaim: { claimName: claimName(spec.conversationId) } },
      { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
    ]);
    assert.equal(pod.spec?.enableServiceLinks, false);
    assert.equal(buildClaim(spec, settings).spec?.storageClassName, undefined, "the cluster's default class");
    assert.equal(buildClaim(spec, { ...settings, storageClass: 'fast' }).spec?.storageClassName, 'fast');
  });
});

describe('the sandbox NetworkPolicy', () => {
  const peers = { workerCidrs: ['192.0.2.10/32'] };

  test('ingress only from nestor on the server port; egress to anywhere when asked', () => {
    const p = buildNetworkPolicy(spec, settings, peers).spec!;
    assert.deepEqual(p.podSelector?.matchLabels, {
      [CONVERSATION_LABEL]: labelValue(spec.conversationId),
      'nestor.sandbox': 'true',
    });
    assert.deepEqual(p.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(p.ingress, [
      {
        _from: [{ podSelector: { matchLabels: { 'nestor.role': 'worker' } } }, { ipBlock: { cidr: '192.0.2.10/32' } }],
        ports: [{ protocol: 'TCP', port: 3000 }],
      },
    ]);
    assert.deepEqual(p.egress, [{ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }]);
  });

  test('no egress at all when the start asks for none', () => {
    assert.deepEqual(buildNetworkPolicy({ ...spec, egress: false }, settings, peers).spec!.egress, []);
  });
});

describe('NESTOR_SANDBOX_ENGINE and its variables', () => {
  test('docker by default; kubernetes with its namespace, class, size, worker CIDRs and manifest', () => {
    assert.deepEqual(loadConfig({}).engine, { kind: 'docker' });
    const c = loadConfig({
      NESTOR_SANDBOX_ENGINE: 'kubernetes',
      NESTOR_KUBERNETES_STORAGE_CLASS: 'fast',
      NESTOR_KUBERNETES_STORAGE_SIZE: '10Gi',
      NESTOR_KUBERNETES_WORKER_CIDRS: '10.0.0.5/32, 192.168.0.0/16',
      NESTOR_RUNTIME_MANIFEST: '{"kind":"openhands-v1","port":8000,"tmpfs-mb":128}',
    });
    assert.deepEqual(c.engine, {
      kind: 'kubernetes',
      namespace: 'nestor-sandboxes',
      storageClass: 'fast',
      storageSize: '10Gi',
      workerCidrs: ['10.0.0.5/32', '192.168.0.0/16'],
    });
    assert.equal(c.runtimeManifest?.kind, 'openhands-v1');
    assert.equal(c.runtimeManifest?.port, 8000);
    assert.equal(c.runtimeManifest?.tmpfsMb, 128);
  });

  test('a bad value is named with what was expected', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ NESTOR_SANDBOX_ENGINE: 'nomad' }, /NESTOR_SANDBOX_ENGINE/],
      [{ NESTOR_KUBERNETES_NAMESPACE: 'Not_A_Name' }, /NESTOR_KUBERNETES_NAMESPACE: expected a namespace name/],
      [{ NESTOR_KUBERNETES_STORAGE_SIZE: '1GB' }, /NESTOR_KUBERNETES_STORAGE_SIZE: expected a size/],
      [{ NESTOR_KUBERNETES_WORKER_CIDRS: '10.0.0.5' }, /NESTOR_KUBERNETES_WORKER_CIDRS.*expected an IPv4 CIDR/],
      [
        { NESTOR_RUNTIME_MANIFEST: '{"port":"eighty"}' },
        /NESTOR_RUNTIME_MANIFEST: expected a JSON object of runtime labels/,
      ],
      [{ NESTOR_RUNTIME_MANIFEST: 'kind=v1' }, /NESTOR_RUNTIME_MANIFEST: expected a JSON object/],
    ];
    for (const [env, message] of bad)
      assert.throws(
        () => loadConfig(env),
        (e: Error) => e instanceof ConfigError && message.test(e.message),
        JSON.stringify(env),
      );
  });

  test('Kubernetes places pods itself: sandbox hosts with it are refused', () => {
    assert.throws(
      () => runtimeFromConfig(loadConfig({ NESTOR_SANDBOX_ENGINE: 'kubernetes', NESTOR_SANDBOX_HOSTS: 'true' })),
      (e: Error) => e instanceof ConfigError && /NESTOR_SANDBOX_ENGINE=kubernetes: sandbox hosts/.test(e.message),
    );
    assert.equal(runtimeFromConfig(loadConfig({ NESTOR_SANDBOX_ENGINE: 'kubernetes' })).kind, 'kubernetes');
  });
});
