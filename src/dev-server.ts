// The Temporal dev server as a child process: persistent SQLite file, UI, nestor's search attributes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from './shared/constants';
import type { NestorConfig } from './config';

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Start `temporal server start-dev` bound to 127.0.0.1 and wait until it accepts gRPC. */
export async function startDevServer(
  c: NestorConfig,
  opts: { readyTimeoutMs?: number; codecEndpoint?: string; /** no database file: nothing survives (benchmarks) */ inMemory?: boolean } = {},
): Promise<DevServer> {
  if (!existsSync(c.temporalBin)) {
    throw new Error(`Temporal CLI not found at ${c.temporalBin}; run 'npm run setup' (scripts/ensure-temporal-cli.sh)`);
  }
  mkdirSync(c.dataDir, { recursive: true });
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(c.temporalPort),
    '--ui-port', String(c.uiPort),
    '--namespace', c.namespace,
    ...(opts.inMemory ? [] : ['--db-filename', join(c.dataDir, 'temporal.db')]),
    '--log-level', 'warn',
    // A worker that schedules an activity may start it at once, without a round trip through the task queue.
    '--dynamic-config-value', 'system.enableActivityEagerExecution=true',
    // The UI asks the codec server to decrypt payloads, so the operator reads them; the server stores them encrypted.
    ...(opts.codecEndpoint ? ['--ui-codec-endpoint', opts.codecEndpoint] : []),
    ...SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
  ];
  const logFd = openSync(join(c.dataDir, 'temporal-server.log'), 'a');
  const child = spawn(c.temporalBin, args, { stdio: ['ignore', logFd, logFd] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${c.temporalPort}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Temporal dev server exited with code ${child.exitCode}; see ${join(c.dataDir, 'temporal-server.log')}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the Temporal dev server did not answer on ${address}; see ${join(c.dataDir, 'temporal-server.log')}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${c.uiPort}`,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
