// The test command's body: set up what the selected test files need, run them with node's test runner (one file at a
// time: the end-to-end files start servers), then stop what we started.
//
//   node scripts/run-tests.mjs                  every test file (npm test, CI)
//   node scripts/run-tests.mjs conversation/    the files whose path contains `conversation/`
//   node scripts/run-tests.mjs --unit           the files that need nothing (npm run test:unit)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

// A test file says what it needs in a `// needs: …` line under its opening comment; no line, nothing. The set-up runs
// only what the selected files need:
const NEEDS = {
  temporal: 'the Temporal CLI (a dev server per test file)',
  docker: 'a Docker engine and the emulator image',
  openhands: 'the OpenHands images (agent server and V0 server)',
  cluster: 'the local Temporal cluster: PostgreSQL and temporal-server',
  otel: 'Jaeger, an OTLP receiver and trace store',
  kubernetes: 'a local Kubernetes: its binaries built from the Go module proxy, Debian etcd and CNI plugins',
};

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const only = args.filter((a) => a !== '--unit');

/** What a test file needs, from its `// needs:` line (in the compiled file too: tsc keeps comments). */
function needsOf(file) {
  const m = /^\/\/ needs: (.+)$/m.exec(readFileSync(file, 'utf8'));
  const needs = m ? m[1].split(',').map((n) => n.trim()) : [];
  for (const n of needs)
    if (!(n in NEEDS)) throw new Error(`${file}: unknown need '${n}' (known: ${Object.keys(NEEDS).join(', ')})`);
  return needs;
}

// Tests live in one folder per feature (test/<feature>/*.test.ts), like the code.
const dir = 'dist/test';
const files = readdirSync(dir, { recursive: true })
  .filter((f) => f.endsWith('.test.js'))
  .sort()
  .map((f) => join(dir, f));
const selected = files
  .filter((f) => !only.length || only.some((o) => f.includes(o)))
  .filter((f) => !unitOnly || needsOf(f).length === 0);
const needed = new Set(selected.flatMap(needsOf));
console.log(`# ${selected.length} test files; set-up: ${[...needed].map((n) => NEEDS[n]).join('; ') || 'none'}`);

const must = (r) => {
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r;
};
const setUp = (...args) => must(spawnSync('bash', args, { stdio: 'inherit' }));
const usesDocker = needed.has('docker') || needed.has('openhands');

let startedDocker = false;
if (needed.has('temporal')) setUp('scripts/ensure-temporal-cli.sh');
if (usesDocker) {
  const docker = spawnSync('bash', ['scripts/ensure-docker.sh'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  startedDocker = must(docker).stdout.includes('started');
  setUp('scripts/build-emulator-image.sh');
}
if (needed.has('openhands')) for (const v of ['v1', 'v0']) setUp('scripts/build-openhands-image.sh', v);
if (needed.has('cluster')) setUp('scripts/setup-cluster.sh');
if (needed.has('otel')) setUp('scripts/ensure-jaeger.sh');
if (needed.has('kubernetes')) setUp('scripts/ensure-kubernetes.sh');

/**
 * The sandbox networks every sandbox of an engine shares (runtime/container-spec.ts): made by the first start that
 * needs one and kept for the next, so one made during the run is not something a test left behind.
 */
const SHARED_NETWORKS = ['nestor-sandboxes', 'nestor-sandboxes-internal'];

/** Docker objects of one kind that carry nestor's label, by ID (the shared sandbox networks aside). */
const labelled = (kind) => {
  if (!usesDocker) return new Set();
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

// The tests run sandboxes on the emulator (fault knobs, quick boots); the files about the real OpenHands server ask for
// its image by name. The unit tier gets no Docker engine and no Temporal CLI: a file that needs one and does not say
// so fails here instead of passing by luck.
const env = { ...process.env, NESTOR_RUNTIME: 'emulator' };
if (unitOnly)
  Object.assign(env, { DOCKER_HOST: 'unix:///nonexistent/docker.sock', NESTOR_TEMPORAL_BIN: '/nonexistent/temporal' });
// Nothing is printed after the runner's own summary (`# tests`, `# pass`, `# fail`, `# duration_ms`): CI reads it last.
// Unit files start no shared server, so they run side by side; the others one at a time.
const concurrency = unitOnly ? availableParallelism() : 1;
// A test file that runs past this fails, named (the runner applies it to each file as a whole), instead of holding
// the run until CI's own limit cuts it off with nothing said. The longest file (the fault suites, about 10 min on a
// fresh 2-core machine) stays well inside it.
const TEST_TIMEOUT_MS = Number(process.env.NESTOR_TEST_TIMEOUT_MS ?? 30 * 60_000);
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${TEST_TIMEOUT_MS}`, ...selected],
  {
    stdio: 'inherit',
    env,
  },
);
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
