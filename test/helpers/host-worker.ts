// `nestor host-worker` as a child process, for the sandbox-host tests: one per host, registered before it returns.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { listHosts } from '../../src/sandbox-hosts/hosts';
import { waitFor } from './eventually';

export class HostWorkers {
  private readonly workers = new Map<string, ChildProcess>();

  constructor(private readonly o: { address: string; taskQueue: string; client: Client }) {}

  /** Start the host's worker (`runtime`: its NESTOR_RUNTIME, @default 'emulator'); resolves once it is registered. */
  async start(
    hostId: string,
    o: { dockerHost?: string; runtime?: string; env?: Record<string, string> } = {},
  ): Promise<ChildProcess> {
    const since = Date.now() - 1000;
    const child = spawn(process.execPath, ['dist/src/cli.js', 'host-worker'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: this.o.address,
        NESTOR_TASK_QUEUE: this.o.taskQueue,
        NESTOR_HOST_ID: hostId,
        NESTOR_HOST_CAPACITY: '10',
        NESTOR_RUNTIME: o.runtime ?? 'emulator',
        NESTOR_METRICS_PORT: '0',
        NESTOR_REAPER_INTERVAL_MS: '0',
        NESTOR_LOG_LEVEL: 'WARN',
        ...(o.dockerHost ? { DOCKER_HOST: o.dockerHost } : {}),
        ...o.env,
      },
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += String(d)));
    this.workers.set(hostId, child);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`host worker ${hostId} exited: ${stderr.slice(-800)}`);
        const h = (await listHosts(this.o.client)).find((r) => r.hostId === hostId);
        return !!h && !h.lost && Date.parse(h.registeredAt) >= since;
      },
      `host ${hostId} registered`,
      { everyMs: 250, timeoutMs: 90_000 },
    );
    return child;
  }

  /** SIGKILL the host's worker (a crash); resolves once it exited. */
  async kill(hostId: string): Promise<void> {
    const child = this.workers.get(hostId);
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async killAll(): Promise<void> {
    for (const id of this.workers.keys()) await this.kill(id);
  }
}
