// `nestor kubernetes` (npm run start:kubernetes): a real single-node Kubernetes on this machine (src/dev/kubernetes.ts),
// the runtime images imported into it, until Ctrl-C; then stopped, and what it changed on the host put back. Its
// state (etcd, images, certificates) stays in the data directory for the next start.
import { join } from 'node:path';
import type { NestorConfig } from '../config';
import { LocalKubernetes } from './kubernetes';

export function localKubernetes(c: NestorConfig): LocalKubernetes {
  return new LocalKubernetes({
    dir: join(c.dataDir, 'kubernetes'),
    toolsDir: c.kubernetes.toolsDir,
    apiPort: c.kubernetes.apiPort,
  });
}

export async function runKubernetes(c: NestorConfig): Promise<void> {
  const k = localKubernetes(c);
  const started = Date.now();
  try {
    await k.start();
    k.importImage(c.runtimeImage);
  } catch (err) {
    await k.stop();
    throw err;
  }
  console.log(
    [
      '',
      `Kubernetes is running here: API server ${k.server}, node ${k.nodeIp} (started in ${Date.now() - started} ms)`,
      `KUBECONFIG=${k.kubeconfig} (an administrator's credentials); logs in ${join(c.dataDir, 'kubernetes', 'logs')}`,
      `Image ${c.runtimeImage} imported (pods run it with imagePullPolicy: Never)`,
      'nestor with its sandboxes as pods there, from another terminal:',
      `  NESTOR_SANDBOX_ENGINE=kubernetes KUBECONFIG=${k.kubeconfig} NESTOR_KUBERNETES_WORKER_CIDRS=${k.nodeIp}/32 NESTOR_RUNTIME=${c.runtime} npm start`,
      'Ctrl-C stops it and puts back what it changed on this host (its state stays for the next start).',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await k.stop();
  console.log('Kubernetes stopped');
}
