// The Kubernetes runtime provider (src/runtime/kubernetes.ts) on the local cluster the project builds: a sandbox is a
// hardened pod on a claim from the cluster's default class, found again by a retried create, paused (pod deleted, data
// kept) and resumed on the same data, and removed with everything it made; an earlier life's data is never adopted.
// needs: docker, kubernetes
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { DEFAULT_SANDBOX_LIMITS } from '../../src/defaults';
import type { LocalKubernetes } from '../../src/dev/kubernetes';
import type { KubernetesRuntimeProvider } from '../../src/runtime/kubernetes';
import {
  CONVERSATION_LABEL,
  SANDBOX_NAMESPACE,
  buildPod,
  labelValue,
  podName,
  secretName,
} from '../../src/runtime/pod-spec';
import { HELPER_IMAGE } from '../../src/dev/kubernetes-config';
import { BRIDGE } from '../../src/dev/kubernetes-host';
import type { RuntimeHandle } from '../../src/runtime/provider';
import { eventually } from '../helpers/eventually';
import { podProvider, sandboxObjects, startLocalKubernetes, volumeCount } from '../helpers/kubernetes';

async function call(h: RuntimeHandle, method: 'GET' | 'POST', path: string, body?: unknown) {
  const r = await request(`${h.url}${path}`, {
    method,
    headers: { 'x-session-api-key': h.sessionApiKey, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.body.text();
  return { status: r.statusCode, body: text ? JSON.parse(text) : undefined };
}

const alive = (h: RuntimeHandle) =>
  eventually(async () => assert.equal((await call(h, 'GET', '/alive')).status, 200), 60_000);

describe('the Kubernetes runtime provider on a local cluster', () => {
  let k: LocalKubernetes;
  let stop: () => Promise<void>;
  let p: KubernetesRuntimeProvider;

  before(async () => {
    ({ k, stop } = await startLocalKubernetes('k8s-provider'));
    p = podProvider(k, 'test/kubernetes-provider');
  });

  after(() => stop?.());
  const objects = (conversationId: string) => sandboxObjects(k, conversationId);

  test('a conversation lives as a hardened pod: created, adopted, paused, resumed with its data, removed', async () => {
    const spec = {
      conversationId: 'K8s.Conv_1',
      userId: 'alice@example.com',
      incarnation: 'run-1',
      cpus: 0.5,
      memoryMb: 384,
    };
    const h = await p.create(spec);
    assert.equal(h.adopted, false);
    assert.equal(h.startPath, 'cold');
    await alive(h);

    // The pod as a platform team would audit it: nothing of the keys in its spec, every hardening field set.
    const pod = (await k.api('GET', `/api/v1/namespaces/${SANDBOX_NAMESPACE}/pods/${podName(spec.conversationId)}`))
      .body as { spec: Record<string, any> };
    const c = pod.spec.containers[0];
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.deepEqual(pod.spec.securityContext, {
      runAsUser: 10001,
      runAsGroup: 10001,
      runAsNonRoot: true,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      privileged: false,
    });
    assert.deepEqual(c.resources.limits, { cpu: '500m', memory: '384Mi' });
    assert.equal(c.env, undefined);
    assert.ok(!JSON.stringify(pod).includes(h.sessionApiKey), 'the session key is not in the pod spec');
    assert.deepEqual(c.envFrom, [{ secretRef: { name: secretName(spec.conversationId) } }]);
    // The process limit is the node's (the kubelet's podPidsLimit), on the pod's cgroup.
    const uid = (pod as unknown as { metadata: { uid: string } }).metadata.uid;
    const pidsMax = ['besteffort', 'burstable', '']
      .map((qos) => join('/sys/fs/cgroup/pids/kubepods', qos, `pod${uid}`, 'pids.max'))
      .find((f) => existsSync(f));
    assert.ok(pidsMax, "the pod's pids cgroup");
    assert.equal(readFileSync(pidsMax, 'utf8').trim(), String(DEFAULT_SANDBOX_LIMITS.pidsLimit));

    // A retried create (the worker died after it) adopts the same pod.
    const again = await p.create(spec);
    assert.equal(again.adopted, true);
    assert.equal(again.runtimeId, h.runtimeId);
    assert.equal(again.sessionApiKey, h.sessionApiKey);

    assert.equal((await call(h, 'POST', '/api/settings', { llm_model: 'kept/across-pause' })).status, 200);
    await p.pause(spec.conversationId);
    assert.equal((await objects(spec.conversationId)).pod, 404);
    assert.equal((await p.inspect(spec.conversationId))?.state, 'exited');
    const resumed = await p.resume(spec.conversationId, 'run-1');
    assert.notEqual(resumed.runtimeId, h.runtimeId, 'a new pod');
    await alive(resumed);
    assert.equal((await call(resumed, 'GET', '/api/settings')).body.llm_model, 'kept/across-pause');

    // Another life of the same ID never resumes this one's data.
    await assert.rejects(p.resume(spec.conversationId, 'run-2'), { name: 'RuntimeStartFailed' });
    assert.deepEqual(
      (await p.list()).map((r) => [r.conversationId, r.userId, r.state]),
      [[spec.conversationId, spec.userId, 'running']],
    );

    assert.equal(await p.remove(spec.conversationId), true);
    await eventually(
      async () =>
        assert.deepEqual(await objects(spec.conversationId), { pod: 404, claim: 404, secret: 404, policy: 404 }),
      60_000,
    );
    await eventually(async () => assert.equal(await volumeCount(k), 0, 'the volume went with its claim'), 60_000);
    assert.equal(await p.remove(spec.conversationId), false);
  });

  test("a new life of a conversation ID starts on fresh data, the earlier life's removed", async () => {
    const id = 'reused-id';
    const first = await p.create({ conversationId: id, userId: 'u', incarnation: 'life-1' });
    await alive(first);
    assert.equal((await call(first, 'POST', '/api/settings', { llm_model: 'life-1' })).status, 200);
    const second = await p.create({ conversationId: id, userId: 'u', incarnation: 'life-2' });
    assert.equal(second.adopted, false);
    await alive(second);
    assert.equal((await call(second, 'GET', '/api/settings')).status, 404, 'no settings of the earlier life');
    await p.remove(id);
  });

  test('an attempt that died after the claim, or two attempts at once, leave exactly one pod', async () => {
    const spec = { conversationId: 'crashed-create', userId: 'u', incarnation: 'run-1' };
    await p.create(spec);
    // What an attempt killed right after creating the claim leaves: the claim alone.
    const ns = `/api/v1/namespaces/${SANDBOX_NAMESPACE}`;
    await k.api('DELETE', `${ns}/pods/${podName(spec.conversationId)}?gracePeriodSeconds=0`);
    await k.api('DELETE', `${ns}/secrets/${secretName(spec.conversationId)}`);
    await k.api(
      'DELETE',
      `/apis/networking.k8s.io/v1/namespaces/${SANDBOX_NAMESPACE}/networkpolicies/${podName(spec.conversationId)}`,
    );
    await eventually(async () => assert.equal((await objects(spec.conversationId)).pod, 404), 30_000);
    const [a, b] = await Promise.all([p.create(spec), p.create(spec)]);
    assert.equal(a.runtimeId, b.runtimeId);
    assert.equal(a.sessionApiKey, b.sessionApiKey);
    assert.deepEqual(await objects(spec.conversationId), { pod: 200, claim: 200, secret: 200, policy: 200 });
    const selector = `${CONVERSATION_LABEL}=${labelValue(spec.conversationId)}`;
    const pods = (await k.api('GET', `${ns}/pods?labelSelector=${selector}`)).body as {
      items: Array<{ metadata: { name: string } }>;
    };
    assert.deepEqual(
      pods.items.map((x) => x.metadata.name),
      [podName(spec.conversationId)],
    );
    await alive(a);
    await p.remove(spec.conversationId);
  });

  test("two conversations' pods cannot reach each other; this host reaches both", async () => {
    const a = await p.create({ conversationId: 'isolated-a', userId: 'alice' });
    const b = await p.create({ conversationId: 'isolated-b', userId: 'bob' });
    await alive(a);
    await alive(b);
    // A sandbox pod of a third conversation whose process tries both, and this node's kubelet (reachable: the control
    // that says the probe's network works at all). busybox: the cluster's helper image.
    const probe = buildPod(
      { conversationId: 'isolated-probe', userId: 'mallory' },
      { image: HELPER_IMAGE, manifest: await p.requirements(), namespace: SANDBOX_NAMESPACE },
    );
    const target = (h: RuntimeHandle) => new URL(h.url).hostname;
    const check = (name: string, host: string, port: number) =>
      `if nc -w 3 ${host} ${port} </dev/null; then echo "${name}=open"; else echo "${name}=closed"; fi`;
    probe.spec!.restartPolicy = 'Never';
    probe.spec!.volumes = [];
    Object.assign(probe.spec!.containers[0], {
      imagePullPolicy: 'Never',
      envFrom: [],
      volumeMounts: [],
      command: [
        'sh',
        '-c',
        [check('node', k.nodeIp, 10250), check('a', target(a), 3000), check('b', target(b), 3000)].join('; '),
      ],
    });
    const ns = `/api/v1/namespaces/${SANDBOX_NAMESPACE}`;
    assert.equal((await k.api('POST', `${ns}/pods`, probe)).status, 201);
    // The mechanism, not only its effect (Docker's FORWARD DROP also drops bridged traffic where br_netfilter is on):
    // every pod's port on the bridge is isolated.
    const ports = JSON.parse(
      spawnSync('ip', ['-d', '-j', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' }).stdout,
    ) as Array<{
      ifname: string;
      linkinfo?: { info_slave_data?: { isolated?: boolean } };
    }>;
    assert.ok(ports.length >= 2, 'the two sandboxes are on the bridge');
    for (const port of ports) assert.equal(port.linkinfo?.info_slave_data?.isolated, true, port.ifname);
    const log = await eventually(async () => {
      const pod = (await k.api('GET', `${ns}/pods/${probe.metadata!.name}`)).body as { status: { phase: string } };
      assert.equal(pod.status.phase, 'Succeeded');
      return String((await k.api('GET', `${ns}/pods/${probe.metadata!.name}/log`)).body);
    }, 60_000);
    // (nc says why on its own lines: "nc: timed out".)
    const verdicts = log.split('\n').filter((l) => l.includes('='));
    assert.deepEqual(verdicts, ['node=open', 'a=closed', 'b=closed'], log);
    await k.api('DELETE', `${ns}/pods/${probe.metadata!.name}?gracePeriodSeconds=0`);
    for (const id of ['isolated-a', 'isolated-b']) await p.remove(id);
  });
});
