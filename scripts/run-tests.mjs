// The test command's body: make sure Docker, the Temporal CLI, both runtime images and the cluster's parts are there, run every test
// file with node's test runner (one file at a time: the end-to-end files start servers), then stop what we started.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const sh = (script) => spawnSync('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const docker = sh('scripts/ensure-docker.sh');
if (docker.status !== 0) process.exit(docker.status ?? 1);
const startedDocker = docker.stdout.includes('started');
// Every image, whatever NESTOR_RUNTIME says: the tests run the emulator and both real OpenHands servers.
const setup = spawnSync('bash', ['scripts/setup.sh'], {
  stdio: 'inherit',
  env: { ...process.env, NESTOR_RUNTIME: 'all' },
});
if (setup.status !== 0) process.exit(setup.status ?? 1);
// The cluster tests run a real Temporal cluster: PostgreSQL and the server built from the Go module proxy.
const cluster = spawnSync('bash', ['scripts/setup-cluster.sh'], { stdio: 'inherit' });
if (cluster.status !== 0) process.exit(cluster.status ?? 1);

/**
 * The sandbox networks every sandbox of an engine shares (runtime/container-spec.ts): made by the first start that
 * needs one and kept for the next, so one made during the run is not something a test left behind.
 */
const SHARED_NETWORKS = ['nestor-sandboxes', 'nestor-sandboxes-internal'];

/** Docker objects of one kind that carry nestor's label, by ID (the shared sandbox networks aside). */
const labelled = (kind) => {
  const args = { container: ['ps', '-aq'], volume: ['volume', 'ls', '-q'], network: ['network', 'ls'] }[kind];
  const format = kind === 'network' ? ['--format', '{{.ID}} {{.Name}}'] : [];
  const r = spawnSync('docker', [...args, ...format, '--filter', 'label=nestor.managed=true'], { encoding: 'utf8' });
  const rows = r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  return new Set(rows.filter((row) => !SHARED_NETWORKS.includes(row.split(' ')[1])).map((row) => row.split(' ')[0]));
};
const KINDS = ['container', 'volume', 'network'];
const before = Object.fromEntries(KINDS.map((k) => [k, labelled(k)]));

/**
 * Pass or fail, the test command leaves no sandbox behind: whatever nestor-labelled container, volume or network
 * appeared during the run (a test that failed before its own clean-up) is removed, and named in .nestor/.
 */
function sweep() {
  const left = [];
  for (const kind of KINDS) {
    for (const id of labelled(kind)) {
      if (before[kind].has(id)) continue;
      const rm = { container: ['rm', '-f', '-v'], volume: ['volume', 'rm', '-f'], network: ['network', 'rm'] }[kind];
      if (spawnSync('docker', [...rm, id], { encoding: 'utf8' }).status === 0) left.push(`${kind} ${id}`);
    }
  }
  mkdirSync('.nestor', { recursive: true });
  writeFileSync(
    '.nestor/test-sweep.txt',
    left.length ? `removed after the tests:\n${left.join('\n')}\n` : 'nothing left behind\n',
  );
}

// Tests live in one folder per feature (test/<feature>/*.test.ts), like the code.
const dir = 'dist/test';
const files = readdirSync(dir, { recursive: true })
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => join(dir, f));
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
// Nothing is printed after the runner's own summary (`# tests`, `# pass`, `# fail`, `# duration_ms`): CI reads it last.
// The tests run sandboxes on the emulator (fault knobs, quick boots); the files about the real OpenHands server ask for
// its image by name.
const env = { ...process.env, NESTOR_RUNTIME: 'emulator' };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...selected], { stdio: 'inherit', env });
sweep();

if (startedDocker) {
  // We started the engine for this run; leave the machine as we found it.
  const pid = Number(readFileSync('.nestor/dockerd.pid', 'utf8'));
  try {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      process.kill(pid, 0);
      spawnSync('sleep', ['0.2']);
    }
  } catch {
    /* exited */
  }
}
process.exit(result.status ?? 1);
