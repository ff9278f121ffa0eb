// The lab the benchmark and the fault suite share: a dev server of its own (file database, free ports), a fresh
// encryption key, a client, and a real `nestor worker` child process whose JSON log lines can be waited for.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DataConverter } from '@temporalio/common';
import { generateKeySpec, parseEncryptionKeys } from '../../src/codec/encryption';
import { nestorDataConverter } from '../../src/codec/keys';
import { PROJECT_ROOT, loadConfig, type NestorConfig } from '../../src/config';
import { ConversationClient } from '../../src/conversation/client';
import { startDevServer, type DevServer } from '../../src/dev/server';
import { runtimeOwner } from '../../src/worker';
import { freePort } from '../../test/helpers/net';

export const CLI = join(PROJECT_ROOT, 'dist/src/cli.js');

export type LogRecord = Record<string, unknown>;

export interface LabOptions {
  /** Names the data directory, the task queue and the key. */
  name: string;
  /** Worker log level: INFO lets callers wait for step lines; the worker's start line is waited for then. @default 'WARN' */
  logLevel?: 'INFO' | 'WARN';
  /** Print the worker's log lines on this process's stderr. @default false */
  echoWorkerLog?: boolean;
}

export class Lab {
  server!: DevServer;
  client!: ConversationClient;
  worker?: ChildProcess;
  readonly keySpec: string;
  readonly dataConverter: DataConverter;
  readonly owner: string;
  readonly taskQueue: string;
  private readonly watchers = new Set<(r: LogRecord) => void>();

  protected constructor(
    readonly c: NestorConfig,
    readonly o: LabOptions,
  ) {
    this.owner = runtimeOwner(c);
    this.taskQueue = c.taskQueue;
    this.keySpec = generateKeySpec(o.name);
    this.dataConverter = nestorDataConverter(parseEncryptionKeys(this.keySpec));
  }

  /** The lab's configuration: its own dev server, whatever TEMPORAL_ADDRESS says (sandboxes are labelled with it). */
  protected static async config(name: string): Promise<NestorConfig> {
    return {
      ...loadConfig(),
      temporalAddress: undefined,
      // The worker's queue (startWorker), and so its sandboxes' owner (`<namespace>/<queue>`): none but this lab's.
      taskQueue: name,
      dataDir: mkdtempSync(join(tmpdir(), `nestor-${name}-`)),
      temporalPort: await freePort(),
      uiPort: await freePort(),
    };
  }

  static async create(o: LabOptions): Promise<Lab> {
    const lab = new Lab(await Lab.config(o.name), o);
    await lab.startServer();
    return lab;
  }

  /** The dev server and a client on it. */
  protected async startServer(): Promise<void> {
    this.server = await startDevServer(this.c);
    this.client = await ConversationClient.connect({
      address: this.server.address,
      taskQueue: this.taskQueue,
      dataConverter: this.dataConverter,
    });
  }

  /**
   * Start `nestor worker` (or, with `command`, a sandbox host's `nestor host-worker`, which is not the lab's worker)
   * on the lab's server, queue and key; `env` adds to (or overrides) its environment.
   */
  async startWorker(
    env: Record<string, string> = {},
    command: 'worker' | 'host-worker' = 'worker',
  ): Promise<ChildProcess> {
    const level = this.o.logLevel ?? 'WARN';
    const child = spawn('node', [CLI, command], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: this.server.address,
        NESTOR_TASK_QUEUE: this.taskQueue,
        NESTOR_ENCRYPTION_KEYS: this.keySpec,
        NESTOR_METRICS_PORT: '0',
        NESTOR_REAPER_INTERVAL_MS: '0',
        NESTOR_MAX_CONVERSATIONS_PER_USER: '1000',
        NESTOR_LOG_LEVEL: level,
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (command === 'worker') this.worker = child;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (this.o.echoWorkerLog) process.stderr.write(`${line}\n`);
      let rec: LogRecord;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        return;
      }
      for (const w of this.watchers) w(rec);
    });
    const started = command === 'worker' ? 'nestor worker on' : `sandbox host ${env.NESTOR_HOST_ID} registered`;
    if (level === 'INFO') await this.waitLog((r) => String(r.msg).startsWith(started), 60_000);
    return child;
  }

  /** Stop the worker: SIGKILL (a crash) or SIGINT (a drain); resolves once it exited. */
  async stopWorker(signal: 'SIGKILL' | 'SIGINT' = 'SIGKILL'): Promise<void> {
    const w = this.worker;
    if (!w || w.exitCode !== null || w.signalCode !== null) return;
    const exited = once(w, 'exit');
    w.kill(signal);
    await exited;
  }

  /** The first worker log line from now on that matches. */
  waitLog(pred: (r: LogRecord) => boolean, timeoutMs: number): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watch);
        reject(new Error(`no matching worker log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const watch = (r: LogRecord) => {
        if (!pred(r)) return;
        clearTimeout(timer);
        this.watchers.delete(watch);
        resolve(r);
      };
      this.watchers.add(watch);
    });
  }

  /** SIGKILL the dev server and start it again on the same database file and ports. */
  async restartServer(): Promise<void> {
    const p = this.server.process;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
    this.server = await startDevServer(this.c);
  }

  /** Stop the worker, the client and the server; remove the data directory. */
  async close(): Promise<void> {
    await this.stopWorker();
    await this.client.closeConnection();
    await this.server.stop();
    rmSync(this.c.dataDir, { recursive: true, force: true });
  }
}
