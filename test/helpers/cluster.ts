// A real Temporal cluster for tests (src/dev/cluster.ts): PostgreSQL and two temporal-server processes, with state
// in a directory of this test process, wiped after. Ports: frontends 27233 and 27333 (and their neighbours); the
// PostgreSQL port is any free one.
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { LocalCluster, type ClusterOptions, type ServerName } from '../../src/dev/cluster';
import { freePort } from './net';
import { testDataConverter, type TemporalEnv } from './temporal';

export async function startTestCluster(
  o: Partial<Pick<ClusterOptions, 'dynamicConfig' | 'secure' | 'basePort'>> = {},
): Promise<LocalCluster> {
  const c = loadConfig();
  const cluster = new LocalCluster({
    dir: join(c.dataDir, `test-cluster-${process.pid}`),
    binDir: c.cluster.binDir,
    basePort: 27233,
    pgPort: await freePort(),
    namespace: 'default',
    ...(!o.secure && { uiPort: await freePort() }),
    ...o,
  });
  try {
    await cluster.start();
  } catch (err) {
    await cluster.stop({ wipe: true });
    throw err;
  }
  return cluster;
}

/** Client and worker connections to one frontend of the cluster (what startE2e's `env` asks for). */
export function clusterEnv(cluster: LocalCluster, via: ServerName) {
  return async (): Promise<TemporalEnv & { connection: Connection }> => {
    const address = cluster.address(via);
    const connection = await Connection.connect({ address });
    const nativeConnection = await NativeConnection.connect({ address });
    return {
      connection,
      nativeConnection,
      client: new Client({ connection, namespace: 'default', dataConverter: testDataConverter }),
      async teardown() {
        await nativeConnection.close();
        await connection.close();
      },
    };
  };
}
