// `nestor worker` as a child process on a test's Temporal server: for the tests that kill a worker (SIGKILL) mid-step
// and start another in its place.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config';
import { containersFor } from './docker';

const CLI = join(PROJECT_ROOT, 'dist/src/cli.js');

export interface CliWorkers {
  /** Start one more worker; its output (stdout and stderr) so far. */
  spawn(): { child: ChildProcess; output: () => string };
  /** Stop every worker still running (SIGTERM) and wait for each to exit. */
  stopAll(): Promise<void>;
}

/**
 * Workers of one task queue and runtime (NESTOR_RUNTIME), with no reaper schedule and no metrics port; `env` adds
 * to their environment (e.g. the Kubernetes engine's variables).
 */
export function cliWorkers(
  address: string,
  taskQueue: string,
  runtime: string,
  env: Record<string, string> = {},
): CliWorkers {
  const started: ChildProcess[] = [];
  return {
    spawn() {
      const child = spawn('node', [CLI, 'worker'], {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: address,
          NESTOR_TASK_QUEUE: taskQueue,
          NESTOR_RUNTIME: runtime,
          NESTOR_METRICS_PORT: '0',
          NESTOR_REAPER_INTERVAL_MS: '0',
          NESTOR_LOG_LEVEL: 'INFO',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      started.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      return { child, output: () => out };
    },
    async stopAll() {
      // A child killed by a signal has a signalCode and no exitCode: only those still running are waited for.
      const running = started.filter((c) => c.exitCode === null && c.signalCode === null);
      for (const c of running) c.kill('SIGTERM');
      await Promise.all(running.map((c) => once(c, 'exit')));
    },
  };
}

/**
 * Kill `first` (SIGKILL) once its createRuntime has made the conversation's container, before the server answers
 * /alive; start another worker in its place; the start's answer.
 */
export async function killOnceSandboxExists<T>(
  workers: CliWorkers,
  first: ReturnType<CliWorkers['spawn']>,
  conversationId: string,
  started: Promise<T>,
  /** Whether the sandbox (or the first part of it the test waits for) exists. @default a Docker container */
  exists: () => Promise<boolean> = async () => (await containersFor(conversationId)).length > 0,
): Promise<T> {
  const deadline = Date.now() + 120_000;
  while (!(await exists())) {
    assert.ok(Date.now() < deadline, `no container was made: ${first.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  workers.spawn();
  return started;
}
