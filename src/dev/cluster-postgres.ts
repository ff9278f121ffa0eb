// The local cluster's PostgreSQL: Debian's binaries (scripts/ensure-postgres.sh), an instance of its own (data
// directory, port, socket directory), run as the postgres user when we are root (PostgreSQL refuses root). One role,
// `temporal`, for the servers and the schema tool.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The PostgreSQL programs' directory: Debian's newest /usr/lib/postgresql/<n>/bin, else wherever pg_ctl is on PATH. */
function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
  if (versions.length) return join(root, versions[versions.length - 1], 'bin');
  const onPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return join(onPath, '..');
  throw new Error('PostgreSQL is missing: run scripts/ensure-postgres.sh (apt-get install postgresql)');
}

export class LocalPostgres {
  private readonly bin = postgresBin();
  private readonly data: string;

  constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.data = join(dir, 'data');
  }

  /** Initialised on first use, started unless running, with the `temporal` role. */
  start(): void {
    mkdirSync(this.dir, { recursive: true });
    if (process.getuid?.() === 0) spawnSync('chown', ['postgres', this.dir]);
    if (!existsSync(join(this.data, 'PG_VERSION')))
      this.pg('initdb', '-D', this.data, '-U', 'postgres', '--auth=trust');
    if (spawnSync(...this.asPostgres('pg_ctl', '-D', this.data, 'status')).status !== 0)
      this.pg(
        'pg_ctl',
        ...['-D', this.data, '-w', '-l', join(this.dir, 'postgres.log')],
        ...['-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`, 'start'],
      );
    const role = this.psql("select 1 from pg_roles where rolname='temporal'");
    // Superuser: the visibility schema's v1.2 migration runs CREATE EXTENSION btree_gin.
    if (!role.includes('1')) this.psql("create role temporal login password 'temporal' superuser");
  }

  /**
   * Stopped (fast: open connections are cut) and started again with the same options, without blocking this process
   * (the servers and their clients carry on meanwhile).
   */
  async restart(): Promise<void> {
    const log = join(this.dir, 'postgres.log');
    const [file, args] = this.asPostgres('pg_ctl', '-D', this.data, '-w', '-m', 'fast', '-l', log, 'restart');
    await execFileAsync(file, args);
  }

  stop(): void {
    if (existsSync(join(this.data, 'postmaster.pid'))) this.pg('pg_ctl', '-D', this.data, '-w', '-m', 'fast', 'stop');
  }

  /** One SQL statement as the superuser; its rows, unaligned. */
  psql(sql: string): string {
    return run(join(this.bin, 'psql'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-tAc', sql]);
  }

  private asPostgres(cmd: string, ...args: string[]): [string, string[], { encoding: 'utf8' }] {
    const bin = join(this.bin, cmd);
    return process.getuid?.() === 0
      ? ['runuser', ['-u', 'postgres', '--', bin, ...args], { encoding: 'utf8' }]
      : [bin, args, { encoding: 'utf8' }];
  }

  private pg(cmd: string, ...args: string[]): string {
    const [file, argv] = this.asPostgres(cmd, ...args);
    return run(file, argv);
  }
}

/** Run a program to completion; its output, or an error naming it with the end of what it said. */
export function run(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(
      `${file.split('/').pop()} ${args.slice(-3).join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim().slice(-600)}`,
    );
  return r.stdout;
}
