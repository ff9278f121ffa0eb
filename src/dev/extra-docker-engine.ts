// A second (third…) Docker engine on this machine, for sandbox hosts in tests and the benchmark: its own dockerd with
// its own socket, data root, exec root and pid file, no default bridge and no iptables rules (the first engine owns
// those), ports published on 127.0.0.1. Images are copied in from the first engine (`docker save | docker load`):
// nothing can be pulled here. A real engine, driven like any other; only where it keeps its files is ours.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ExtraDockerEngine {
  private proc?: ChildProcess;

  /** `dir` holds everything of this engine; keep it short: sockets under it are limited to 107 characters. */
  constructor(readonly dir: string) {}

  get socketPath(): string {
    return join(this.dir, 'docker.sock');
  }

  /** What DOCKER_HOST says for a process that drives this engine. */
  get dockerHost(): string {
    return `unix://${this.socketPath}`;
  }

  get docker(): Docker {
    return new Docker({ socketPath: this.socketPath });
  }

  /** Start dockerd and wait until it answers (about a second; 60 s at most). */
  async start(): Promise<void> {
    if (this.running()) return;
    mkdirSync(this.dir, { recursive: true });
    const log = openSync(join(this.dir, 'dockerd.log'), 'a');
    this.proc = spawn(
      'dockerd',
      [
        ...['--data-root', join(this.dir, 'data'), '--exec-root', join(this.dir, 'exec')],
        ...['--pidfile', join(this.dir, 'docker.pid'), '-H', this.dockerHost],
        ...['--bridge', 'none', '--iptables=false', '--ip', '127.0.0.1'],
      ],
      { stdio: ['ignore', log, log] },
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!this.running()) throw new Error(`dockerd exited; see ${join(this.dir, 'dockerd.log')}`);
      try {
        await this.docker.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${this.socketPath} within 60 s`);
        await sleep(250);
      }
    }
  }

  running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Copy an image from the machine's first engine into this one, unless it is there. */
  async loadImage(image: string): Promise<void> {
    if (
      await this.docker
        .getImage(image)
        .inspect()
        .then(
          () => true,
          () => false,
        )
    )
      return;
    const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
    const load = spawn('docker', ['-H', this.dockerHost, 'load', '-q'], { stdio: ['pipe', 'ignore', 'inherit'] });
    save.stdout.pipe(load.stdin);
    const [a, b] = await Promise.all([exit(save), exit(load)]);
    if (a !== 0 || b !== 0) throw new Error(`copying ${image} into ${this.dockerHost} failed (save ${a}, load ${b})`);
  }

  /** Stop dockerd (SIGTERM: it stops its containers; SIGKILL: they are left as they were) and wait for it. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || !this.running()) return;
    const gone = exit(p);
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    await gone;
    clearTimeout(timer);
  }

  /** Stop it, remove every container it holds first, and delete its files. */
  async destroy(): Promise<void> {
    if (this.running()) {
      const docker = this.docker;
      for (const c of await docker.listContainers({ all: true }))
        await docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => undefined);
      await docker.pruneVolumes().catch(() => undefined);
      await this.stop();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function exit(p: ChildProcess): Promise<number | null> {
  return p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code)));
}
