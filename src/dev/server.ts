// The Temporal dev server as a child process: persistent SQLite file, UI, nestor's search attributes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/constants';
import type { NestorConfig } from '../config';

/**
 * Dynamic config nestor needs from any Temporal server it runs on (the dev server here; a cluster's dynamic config
 * file in production):
 * - `history.maxInFlightUpdates`: updates admitted but not completed per workflow. Every message is an update that
 *   completes only once the nested server accepted it, so a burst of messages to one conversation queues as in-flight
 *   updates; the server's default of 10 turned the 11th away (`limit on number of concurrent in-flight updates`).
 * - `system.enableActivityEagerExecution`: a worker that schedules an activity may start it at once, without a round
 *   trip through the task queue.
 * - `frontend.enableUpdateWorkflowExecution`: starts (update-with-start), messages, pause and close are updates. On
 *   by default since server 1.25 (off before); stated so an older cluster's operator sees it is needed.
 * - `history.transferProcessorMaxPollRPS`: how often one history shard may read its new tasks (a workflow task to
 *   dispatch, an activity, a signal to another workflow) from the database. At the default of 20 per shard, a server
 *   with few shards (the dev server has one, the local cluster four) ran out of its burst after about twenty starts
 *   in a row, and then every workflow task waited about 30 ms before a worker could take it: a trivial update-with-
 *   start with two activities took 95 ms instead of 35 (scratch measurement of 2026-12-06, docs/performance.md). A
 *   cluster with hundreds of shards reads each shard rarely and needs no change; its database load is bounded by
 *   `history.transferProcessorMaxPollHostRPS` per host.
 * The worker checks the first and the third at start-up (src/preflight.ts).
 */
export const NESTOR_DYNAMIC_CONFIG: Record<string, unknown> = {
  'history.maxInFlightUpdates': 500,
  'system.enableActivityEagerExecution': true,
  'frontend.enableUpdateWorkflowExecution': true,
  'history.transferProcessorMaxPollRPS': 1000,
};

/**
 * The database file's journal: a write-ahead log, synced at every commit (`synchronous=full`, so a commit the server
 * answered survives a power loss as it did). SQLite's default rollback journal syncs the file more often per commit:
 * a trivial update-with-start with two activities took p50 60-68 ms on it, 40-45 ms with these (scratch measurement
 * of 2026-12-06, docs/performance.md).
 */
export const DEV_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=full'];

/** NESTOR_DYNAMIC_CONFIG as `--dynamic-config-value` arguments of `temporal server start-dev`. */
export function dynamicConfigArgs(): string[] {
  return Object.entries(NESTOR_DYNAMIC_CONFIG).flatMap(([k, v]) => [
    '--dynamic-config-value',
    `${k}=${JSON.stringify(v)}`,
  ]);
}

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Start `temporal server start-dev` bound to 127.0.0.1 and wait until it accepts gRPC. */
export async function startDevServer(
  c: NestorConfig,
  opts: {
    readyTimeoutMs?: number;
    codecEndpoint?: string;
    /** no database file: nothing survives (benchmarks) */ inMemory?: boolean;
  } = {},
): Promise<DevServer> {
  if (!existsSync(c.temporalBin)) {
    throw new Error(`Temporal CLI not found at ${c.temporalBin}; run 'npm run setup' (scripts/ensure-temporal-cli.sh)`);
  }
  mkdirSync(c.dataDir, { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(c.temporalPort),
    '--ui-port',
    String(c.uiPort),
    '--namespace',
    c.namespace,
    ...(opts.inMemory
      ? []
      : [
          '--db-filename',
          join(c.dataDir, 'temporal.db'),
          ...DEV_SQLITE_PRAGMAS.flatMap((p) => ['--sqlite-pragma', p]),
        ]),
    '--log-level',
    'warn',
    ...dynamicConfigArgs(),
    // The UI asks the codec server to decrypt payloads, so the operator reads them; the server stores them encrypted.
    ...(opts.codecEndpoint ? ['--ui-codec-endpoint', opts.codecEndpoint] : []),
    ...SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
  ];
  const logPath = join(c.dataDir, 'temporal-server.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(c.temporalBin, args, { stdio: ['ignore', logFd, logFd] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${c.temporalPort}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the Temporal dev server exited with code ${child.exitCode}; ${logTail(logPath)}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `the Temporal dev server did not answer on ${address} within ${opts.readyTimeoutMs ?? 60_000} ms; ${logTail(logPath)}`,
        );
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

/**
 * The end of the server's log, for a start that failed: the reason (a port taken, a full disk, a slow machine) is
 * there, and the data directory (with the log) may be gone by the time anyone looks, e.g. after a CI run.
 */
function logTail(logPath: string): string {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return `no log at ${logPath}`;
  }
  const tail = text.trimEnd().split('\n').slice(-8).join('\n');
  return `its log (${logPath}) ends: ${tail.slice(-2000) || '(empty)'}`;
}
