// A local Kubernetes for a test file (src/dev/kubernetes.ts) on free ports in a directory of its own, with the emulator
// image (or the ones named) imported, and a Kubernetes provider of sandboxes on it; `stop` puts everything back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config';
import { LocalKubernetes } from '../../src/dev/kubernetes';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { KubernetesRuntimeProvider, type KubernetesProviderOptions } from '../../src/runtime/kubernetes';
import { SANDBOX_NAMESPACE, claimName, podName, secretName } from '../../src/runtime/pod-spec';
import { freePort } from './net';

export const K8S_IMAGE = RUNTIME_IMAGES.emulator;

export async function startLocalKubernetes(
  name: string,
  images: string[] = [K8S_IMAGE],
): Promise<{ k: LocalKubernetes; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `nestor-${name}-`));
  const k = new LocalKubernetes({
    dir,
    toolsDir: join(PROJECT_ROOT, '.tools/kubernetes-1.35.8'),
    apiPort: await freePort(),
    etcdPort: await freePort(),
    etcdPeerPort: await freePort(),
  });
  const stop = async () => {
    await k.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await k.start();
    for (const image of images) k.importImage(image);
  } catch (err) {
    await stop();
    throw err;
  }
  return { k, stop };
}

/** The provider a worker on this machine would use against the cluster (its manifest read from Docker's image). */
export function podProvider(
  k: LocalKubernetes,
  owner: string,
  image: string = K8S_IMAGE,
  more: Partial<KubernetesProviderOptions> = {},
): KubernetesRuntimeProvider {
  const docker = new DockerRuntimeProvider({ image });
  return new KubernetesRuntimeProvider({
    ...more,
    image,
    manifest: () => docker.requirements(),
    namespace: SANDBOX_NAMESPACE,
    kubeconfig: k.kubeconfig,
    owner,
    workerCidrs: [`${k.nodeIp}/32`],
  });
}

/** The HTTP status of each object a conversation's sandbox is made of (404: not there). */
export async function sandboxObjects(k: LocalKubernetes, conversationId: string) {
  const ns = `/api/v1/namespaces/${SANDBOX_NAMESPACE}`;
  const status = async (path: string) => (await k.api('GET', path)).status;
  return {
    pod: await status(`${ns}/pods/${podName(conversationId)}`),
    claim: await status(`${ns}/persistentvolumeclaims/${claimName(conversationId)}`),
    secret: await status(`${ns}/secrets/${secretName(conversationId)}`),
    policy: await status(
      `/apis/networking.k8s.io/v1/namespaces/${SANDBOX_NAMESPACE}/networkpolicies/${podName(conversationId)}`,
    ),
  };
}

/** How many persistent volumes the cluster holds (a claim's goes with it). */
export async function volumeCount(k: LocalKubernetes): Promise<number> {
  return ((await k.api('GET', '/api/v1/persistentvolumes')).body as { items: unknown[] }).items.length;
}
