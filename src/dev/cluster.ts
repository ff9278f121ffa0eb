// A real Temporal cluster on this machine: Debian's PostgreSQL (its own data directory and port), the open-source
// server's schemas migrated with its SQL tool, and two temporal-server processes, each running all four services on
// their own ports, sharing that database (SQL persistence and SQL visibility). `nestor cluster` runs it with the
// Temporal UI server and a worker; the cluster tests start one of their own and kill, restart and fail parts of it.
// Binaries: scripts/ensure-temporal-server.sh. Nothing here stands in for Temporal: these are its own processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { msToTs } from '@temporalio/common/lib/time';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/constants';
import { LocalPostgres, run } from './cluster-postgres';
import { ClusterSecurity } from './cluster-security';
import {
  SERVER_NAMES,
  dynamicConfigYaml,
  ports,
  serverConfig,
  type ClusterOptions,
  type ServerName,
} from './cluster-config';

export type { ClusterOptions, ServerName };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalCluster {
  readonly servers = new Map<ServerName, ChildProcess>();
  private ui?: ChildProcess;
  readonly postgres: LocalPostgres;
  /** Certificates, JWT signing and the JWKS endpoint of a `secure` cluster (set by `start`). */
  security?: ClusterSecurity;

  constructor(readonly o: ClusterOptions) {
    this.postgres = new LocalPostgres(join(o.dir, 'pg'), o.pgPort);
  }

  /** The two frontends, `a` first. */
  get addresses(): string[] {
    return SERVER_NAMES.map((n) => this.address(n));
  }

  address(name: ServerName): string {
    return `127.0.0.1:${ports(this.o.basePort, name).frontend}`;
  }

  get uiUrl(): string | undefined {
    return this.o.uiPort ? `http://127.0.0.1:${this.o.uiPort}` : undefined;
  }

  /**
   * How a client reaches frontend `via`: plain, or on a secure cluster with the client certificate and an API key
   * (by default one with `temporal-system:admin`, what the cluster's own set-up needs).
   */
  connectionOptions(via: ServerName = 'a', apiKey?: string) {
    const address = this.address(via);
    if (!this.security) return { address };
    return {
      address,
      tls: this.security.clientTls(),
      apiKey:
        apiKey ?? this.security.apiKey({ subject: 'nestor-cluster-setup', permissions: ['temporal-system:admin'] }),
    };
  }

  /** PostgreSQL, schemas, both servers (one after the other), the namespace and nestor's search attributes. */
  async start(): Promise<void> {
    for (const bin of ['temporal-server', 'temporal-sql-tool'])
      if (!existsSync(join(this.o.binDir, bin)))
        throw new Error(`${bin} missing in ${this.o.binDir}: run scripts/ensure-temporal-server.sh`);
    mkdirSync(this.o.dir, { recursive: true });
    if (this.o.secure) this.security ??= await ClusterSecurity.create(join(this.o.dir, 'security'));
    this.postgres.start();
    this.migrate();
    writeFileSync(join(this.o.dir, 'dynamic-config.yaml'), dynamicConfigYaml(this.o.dynamicConfig));
    // One after the other: the first initialises the cluster's metadata in PostgreSQL; two at once race on it
    // (seen: "duplicate key value violates unique constraint cluster_metadata_info_pkey", and the second exits).
    for (const name of SERVER_NAMES) await this.startServer(name);
    await this.registerNamespace();
  }

  /** Start (or restart) one server process and wait until its frontend answers. */
  async startServer(name: ServerName): Promise<void> {
    if (this.running(name)) return;
    this.killStale(name);
    writeFileSync(join(this.o.dir, `${name}.yaml`), serverConfig(this.o, name, this.security?.serverGlobalYaml()));
    const log = openSync(join(this.o.dir, `${name}.log`), 'a');
    // A secure cluster's processes also run the internal frontend (the one its system workers call, without a JWT).
    const services = this.security
      ? ['frontend', 'internal-frontend', 'history', 'matching', 'worker'].flatMap((s) => ['--service', s])
      : [];
    const child = spawn(
      join(this.o.binDir, 'temporal-server'),
      ['--root', this.o.dir, '--config', '.', '--env', name, '--allow-no-auth', 'start', ...services],
      { stdio: ['ignore', log, log] },
    );
    writeFileSync(join(this.o.dir, `${name}.pid`), String(child.pid));
    this.servers.set(name, child);
    await this.waitServing(name, child);
  }

  running(name: ServerName): boolean {
    const child = this.servers.get(name);
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** Kill one server process (SIGKILL: no shutdown of any kind) and wait until it is gone. */
  async killServer(name: ServerName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.servers.get(name);
    if (!child || !this.running(name)) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  }

  /** PostgreSQL restarted under the running servers (LocalPostgres.restart). */
  restartPostgres(): Promise<void> {
    return this.postgres.restart();
  }

  /** The Temporal UI server, pointed at frontend `a`, decrypting payloads through `codecEndpoint` if given. */
  async startUi(codecEndpoint?: string): Promise<void> {
    if (!this.o.uiPort) throw new Error('no uiPort configured');
    if (this.security)
      throw new Error('the UI server is not set up for a secure cluster (it would need its own login)');
    const bin = join(this.o.binDir, 'temporal-ui-server');
    if (!existsSync(bin))
      throw new Error(`temporal-ui-server missing in ${this.o.binDir}: run scripts/ensure-temporal-server.sh`);
    const dir = join(this.o.dir, 'ui');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'cluster.yaml'),
      [
        `temporalGrpcAddress: ${this.address('a')}`,
        'host: 127.0.0.1',
        `port: ${this.o.uiPort}`,
        'enableUi: true',
        `defaultNamespace: ${this.o.namespace}`,
        `codec: { endpoint: ${JSON.stringify(codecEndpoint ?? '')} }`,
        '',
      ].join('\n'),
    );
    const log = openSync(join(this.o.dir, 'ui.log'), 'a');
    this.ui = spawn(bin, ['--root', this.o.dir, '--config', 'ui', '--env', 'cluster', 'start'], {
      stdio: ['ignore', log, log],
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.ui.exitCode !== null)
        throw new Error(`the Temporal UI server exited; see ${join(this.o.dir, 'ui.log')}`);
      try {
        if ((await fetch(`${this.uiUrl}/api/v1/namespaces`)).ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`the Temporal UI server did not answer on ${this.uiUrl}`);
      await sleep(250);
    }
  }

  /** Everything stopped: UI, servers (SIGTERM, then SIGKILL), PostgreSQL. `wipe` removes the state too. */
  async stop(o: { wipe?: boolean } = {}): Promise<void> {
    this.ui?.kill('SIGTERM');
    await Promise.all(SERVER_NAMES.map((n) => this.killServer(n, 'SIGTERM')));
    await this.security?.close();
    this.security = undefined;
    this.postgres.stop();
    if (o.wipe) rmSync(this.o.dir, { recursive: true, force: true });
  }

  /** Both databases created on first use, then brought to the schema versions embedded in the SQL tool. */
  private migrate(): void {
    const tool = join(this.o.binDir, 'temporal-sql-tool');
    const base = [
      '--ep',
      '127.0.0.1',
      '-p',
      String(this.o.pgPort),
      '-u',
      'temporal',
      '--pw',
      'temporal',
      '--pl',
      'postgres12',
    ];
    for (const [db, schema] of [
      ['temporal', 'temporal'],
      ['temporal_visibility', 'visibility'],
    ]) {
      if (!this.postgres.psql(`select 1 from pg_database where datname='${db}'`).includes('1')) {
        run(tool, [...base, '--db', db, 'create']);
        run(tool, [...base, '--db', db, 'setup-schema', '-v', '0.0']);
      }
      run(tool, [...base, '--db', db, 'update-schema', '-s', `postgresql/v12/${schema}`]);
    }
  }

  /** A process of ours from an earlier run that was not stopped (its ports would be taken). */
  private killStale(name: ServerName): void {
    const pidFile = join(this.o.dir, `${name}.pid`);
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('temporal-server')) process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  private async waitServing(name: ServerName, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 90_000;
    const logFile = join(this.o.dir, `${name}.log`);
    for (;;) {
      if (!this.running(name))
        throw new Error(`temporal-server ${name} exited (${child.exitCode ?? child.signalCode}): ${tail(logFile)}`);
      try {
        const conn = await Connection.connect({ ...this.connectionOptions(name), connectTimeout: 1000 });
        try {
          await conn.workflowService.getSystemInfo({});
          return;
        } finally {
          await conn.close();
        }
      } catch {
        if (Date.now() > deadline) throw new Error(`temporal-server ${name} not serving after 90 s; see ${logFile}`);
        await sleep(250);
      }
    }
  }

  /**
   * The namespace, then nestor's search attributes on it (SQL visibility keeps custom search attributes per
   * namespace). A namespace just registered is not in the frontends' cache for about 10 s; adding search attributes
   * fails until it is, so this tries until they are listed.
   */
  private async registerNamespace(): Promise<void> {
    const conn = await Connection.connect(this.connectionOptions('a'));
    try {
      const ns = this.o.namespace;
      try {
        await conn.workflowService.registerNamespace({
          namespace: ns,
          workflowExecutionRetentionPeriod: msToTs('72h'),
        });
      } catch (err) {
        if (!/already exists|AlreadyExists/i.test((err as Error).message)) throw err;
      }
      const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
      const wanted = Object.fromEntries(SEARCH_ATTRIBUTE_KEYS.map((k) => [k.name, keyword]));
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          const { customAttributes } = await conn.operatorService.listSearchAttributes({ namespace: ns });
          const missing = Object.keys(wanted).filter((k) => !customAttributes?.[k]);
          if (!missing.length) return;
          await conn.operatorService.addSearchAttributes({
            namespace: ns,
            searchAttributes: Object.fromEntries(missing.map((k) => [k, keyword])),
          });
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`search attributes not registered on ${ns}: ${(err as Error).message}`, { cause: err });
          await sleep(1000);
        }
      }
    } finally {
      await conn.close();
    }
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-600);
  } catch {
    return '(no log)';
  }
}
