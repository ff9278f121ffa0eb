// `nestor cluster` (npm run start:cluster): the service on a real Temporal cluster on this machine: PostgreSQL, two
// temporal-server processes, the Temporal UI server and the codec server, and one nestor worker per frontend (a
// worker reaches the cluster through either; in production a load balancer or DNS name stands before them).
import { join } from 'node:path';
import { type NestorConfig } from '../config';
import { describeRuntime } from '../describe-runtime';
import { prepareProcess, startWorker } from '../worker';
import { LocalCluster } from './cluster';
import { codecGuard, codecServer, codecWithoutToken } from '.';

export function localCluster(c: NestorConfig): LocalCluster {
  return new LocalCluster({
    dir: join(c.dataDir, 'cluster'),
    binDir: c.cluster.binDir,
    basePort: c.cluster.basePort,
    pgPort: c.cluster.pgPort,
    namespace: c.namespace,
    uiPort: c.uiPort,
  });
}

/** Run the stack until SIGINT/SIGTERM, printing where everything is. */
export async function runCluster(c: NestorConfig): Promise<void> {
  if (c.temporalAddress)
    throw new Error(
      "TEMPORAL_ADDRESS is set: 'nestor cluster' starts its own cluster; use 'nestor worker' against an existing one",
    );
  const { dataConverter, keys } = prepareProcess(c);
  const cluster = localCluster(c);
  await cluster.start();
  const codec = await codecServer(c, { keys, insecure: codecWithoutToken(c) });
  await cluster.startUi(codec.url);
  const workers = [];
  for (const address of cluster.addresses)
    workers.push(await startWorker({ ...c, temporalAddress: address }, dataConverter));
  console.log(
    [
      '',
      `nestor is running on a Temporal cluster: frontends ${cluster.addresses.join(' and ')} (namespace ${c.namespace}), task queue ${c.taskQueue}, one worker on each`,
      `PostgreSQL 127.0.0.1:${c.cluster.pgPort}; state and server logs in ${join(c.dataDir, 'cluster')}`,
      describeRuntime(c),
      `Temporal UI: ${cluster.uiUrl}`,
      `Codec server: ${codec.url}; ${codecGuard(c)}`,
      '',
      `Clients: TEMPORAL_ADDRESS=${cluster.addresses[0]} (or ${cluster.addresses[1]}) npx nestor start -c demo-1 -u alice …`,
      'Ctrl-C stops everything (the data stays for the next start).',
    ].join('\n'),
  );
  // Each worker drains on SIGINT/SIGTERM by itself; then the cluster goes.
  await Promise.all(workers.map((w) => w.worker.run()));
  await Promise.all(workers.map((w) => w.connection.close()));
  await codec.close();
  await cluster.stop();
  console.log('nestor and the cluster stopped');
}
