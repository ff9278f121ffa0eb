// The local Kubernetes the project builds and runs itself (src/dev/kubernetes.ts, issue 25): a node Ready, a pod of
// nestor's emulator image (built by Docker here, imported into the cluster's containerd) running under the hardening
// a sandbox pod gets and answering at its pod address from this host; then stopped, with what it changed on the host
// put back.
// needs: docker, kubernetes
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { PROJECT_ROOT } from '../../src/config';
import { LocalKubernetes, NODE_NAME } from '../../src/dev/kubernetes';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { eventually } from '../helpers/eventually';
import { freePort } from '../helpers/net';

const SYSCTLS = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'];
const sysctls = () => SYSCTLS.map((s) => readFileSync(`/proc/sys/${s}`, 'utf8').trim());
const IMAGE = RUNTIME_IMAGES.emulator;
/** Directories the kubelet, containerd's shims and the CNI plugins make outside the cluster's own. */
const HOST_PATHS = ['/var/lib/kubelet', '/var/lib/cni', '/run/containerd', '/run/netns'];

interface PodStatus {
  status?: { phase?: string; podIP?: string };
}

describe('a local single-node Kubernetes', () => {
  let k: LocalKubernetes;
  let dir: string;
  const before_ = { sysctls: [] as string[], kubepods: false, absent: [] as string[] };

  before(async () => {
    before_.sysctls = sysctls();
    before_.kubepods = existsSync('/sys/fs/cgroup/cpu/kubepods');
    before_.absent = HOST_PATHS.filter((p) => !existsSync(p));
    dir = mkdtempSync(join(tmpdir(), 'nestor-k8s-'));
    k = new LocalKubernetes({
      dir,
      toolsDir: join(PROJECT_ROOT, '.tools/kubernetes-1.35.8'),
      apiPort: await freePort(),
      etcdPort: await freePort(),
      etcdPeerPort: await freePort(),
    });
    await k.start();
  });

  after(async () => {
    await k?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the node is Ready at its non-loopback address', async () => {
    const r = await k.api('GET', `/api/v1/nodes/${NODE_NAME}`);
    assert.equal(r.status, 200);
    const node = r.body as { status: { addresses: Array<{ type: string; address: string }> } };
    assert.deepEqual(
      node.status.addresses.find((a) => a.type === 'InternalIP'),
      { type: 'InternalIP', address: k.nodeIp },
    );
    assert.notEqual(k.nodeIp, '127.0.0.1');
  });

  test('a hardened pod of an image built here runs and answers at its pod address', async () => {
    k.importImage(IMAGE);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'emulator', labels: { app: 'nestor-test' } },
      spec: {
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'emulator',
            image: IMAGE,
            imagePullPolicy: 'Never',
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
            resources: { limits: { cpu: '500m', memory: '256Mi' } },
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
      },
    };
    const created = await k.api('POST', '/api/v1/namespaces/default/pods', pod);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ip = await eventually(async () => {
      const r = (await k.api('GET', '/api/v1/namespaces/default/pods/emulator')).body as PodStatus;
      assert.equal(r.status?.phase, 'Running');
      assert.ok(r.status?.podIP);
      return r.status.podIP;
    }, 60_000);
    const alive = await eventually(async () => {
      const r = await request(`http://${ip}:3000/alive`);
      await r.body.text();
      return r.statusCode;
    }, 30_000);
    assert.equal(alive, 200);
  });

  test('stop ends every process and puts back what the cluster changed on the host', async () => {
    await k.stop();
    const running = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.includes(dir));
    assert.deepEqual(running, [], 'no process of the cluster is left');
    assert.equal(spawnSync('ip', ['link', 'show', 'nestorcni0']).status !== 0, true, 'the bridge is gone');
    assert.deepEqual(sysctls(), before_.sysctls, 'the sysctls the kubelet set are back');
    assert.equal(existsSync('/sys/fs/cgroup/cpu/kubepods'), before_.kubepods, 'the pods cgroup is gone');
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.includes(dir) || l.includes('/run/netns/cni-'));
    assert.deepEqual(mounts, [], 'no mount of the cluster is left');
    assert.deepEqual(
      before_.absent.filter((p) => existsSync(p)),
      [],
      'the directories made outside the cluster are gone',
    );
    if (existsSync('/run/netns'))
      assert.deepEqual(
        readdirSync('/run/netns').filter((n) => n.startsWith('cni-')),
        [],
      );
  });
});
