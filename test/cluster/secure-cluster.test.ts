// nestor on a secured Temporal cluster, as production runs one: the two frontends require mutual TLS (certificates
// from the cluster's own CA) and Temporal's default authorizer checks the JWT every call carries (TEMPORAL_API_KEY),
// verified against the cluster's JWKS (src/dev/cluster-security.ts). `nestor worker` and the CLI connect with
// Temporal's own TEMPORAL_TLS_* / TEMPORAL_API_KEY variables; the library with ConversationClient.connect. Then what
// a client with a wrong or missing credential is told, and that it changed nothing.
// needs: temporal, docker, cluster
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { ConversationClient } from '../../src/conversation/client';
import type { LocalCluster } from '../../src/dev/cluster';
import { ConversationError } from '../../src/errors';
import { preflightProblems } from '../../src/preflight';
import { startTestCluster } from '../helpers/cluster';
import { containersFor, removeContainers } from '../helpers/docker';
import { waitFor } from '../helpers/eventually';
import { uniqueId } from '../helpers/temporal';

const run = promisify(execFile);
const CLI = 'dist/src/cli.js';

describe('nestor on a secured Temporal cluster (mutual TLS, API keys checked by Temporal)', () => {
  let cluster: LocalCluster;
  let worker: ChildProcess;
  let workerOutput = '';
  let tlsEnv: Record<string, string>;
  let writerKey: string;
  let readerKey: string;
  const taskQueue = uniqueId('secure');
  const made = new Set<string>();

  /** The nestor command with the cluster's TLS settings, an API key and more variables; never throws. */
  const cli = async (args: string[], env: Record<string, string | undefined>) => {
    const r = await run('node', [CLI, ...args], {
      env: { ...process.env, NESTOR_TASK_QUEUE: taskQueue, LLM_API_KEY: 'sk-secure-llm', ...env },
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    return { code: 'code' in r && typeof r.code === 'number' ? r.code : 0, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    cluster = await startTestCluster({ secure: true, basePort: 28233 });
    const s = cluster.security!;
    tlsEnv = {
      TEMPORAL_ADDRESS: cluster.address('b'),
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: s.certs.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: s.certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: s.certs.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'localhost',
    };
    writerKey = s.apiKey({ subject: 'nestor-service', permissions: ['default:write'] });
    readerKey = s.apiKey({ subject: 'dashboard', permissions: ['default:read'] });
    worker = spawn(process.execPath, [CLI, 'worker'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...tlsEnv,
        TEMPORAL_API_KEY: writerKey,
        NESTOR_TASK_QUEUE: taskQueue,
        NESTOR_RUNTIME: 'emulator',
        NESTOR_METRICS_PORT: '0',
      },
    });
    worker.stdout!.on('data', (d) => (workerOutput += String(d)));
    worker.stderr!.on('data', (d) => (workerOutput += String(d)));
    await waitFor(
      async () => {
        if (worker.exitCode !== null) throw new Error(`nestor worker exited: ${workerOutput.slice(-1500)}`);
        return workerOutput.includes(`task queue ${taskQueue}`);
      },
      'the worker polling over mutual TLS',
      { everyMs: 250, timeoutMs: 90_000 },
    );
  });

  after(async () => {
    if (worker && worker.exitCode === null) {
      const exited = once(worker, 'exit');
      worker.kill('SIGINT');
      await exited;
    }
    await removeContainers(made);
    await cluster?.stop({ wipe: true });
  });

  test('`nestor worker` and the CLI over mutual TLS with API keys: start, message, status, list, close; a read-only key reads; no key or certificate in any output', async () => {
    assert.match(workerOutput, /nestor worker on 127\.0\.0\.1:28333 \(TLS, client certificate, own CA, API key\)/);
    const id = uniqueId('secure');
    made.add(id);
    const withKey = { ...tlsEnv, TEMPORAL_API_KEY: writerKey };
    const started = await cli(
      ['--json', 'start', '-c', id, '-u', 'secure-user', '--model', 'anthropic/claude-x', '-m', 'hello over TLS'],
      withKey,
    );
    assert.equal(started.code, 0, started.stderr);
    assert.equal(JSON.parse(started.stdout).status, 'RUNNING');
    const sent = await cli(['send', id, 'second'], withKey);
    assert.equal(sent.code, 0, sent.stderr);

    // The library, with a key that may only read: status and list work.
    const s = cluster.security!;
    const reader = await ConversationClient.connect({
      address: cluster.address('a'),
      tls: s.clientTls(),
      apiKey: readerKey,
      namespace: 'default',
      taskQueue,
    });
    try {
      const info = await reader.status(id);
      assert.equal(info.status, 'RUNNING');
      assert.equal(info.messagesDelivered, 1, 'the message sent after the start (the first one is part of the start)');
      await waitFor(
        async () => (await reader.list({ userId: 'secure-user' })).some((r) => r.conversationId === id),
        'listed by user',
      );
    } finally {
      await reader.closeConnection();
    }
    const listed = await cli(['list', '-u', 'secure-user'], { ...tlsEnv, TEMPORAL_API_KEY: readerKey });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(id));

    const closed = await cli(['--json', 'close', id, '-r', 'secure test'], withKey);
    assert.equal(JSON.parse(closed.stdout).status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);

    const clientKey = readFileSync(s.certs.clientKey, 'utf8').split('\n')[1];
    for (const out of [workerOutput, started.stdout + started.stderr, listed.stdout, closed.stdout]) {
      for (const key of [writerKey, readerKey]) assert.ok(!out.includes(key.split('.')[2]), 'an API key in output');
      assert.ok(!out.includes(clientKey), 'the client private key in output');
    }
  });

  test("refused: no client certificate, no TLS, a forged key, a read-only key's start; each says what to check and nothing is started", async () => {
    const id = uniqueId('refused');
    const start = ['start', '-c', id, '-u', 'refused-user', '--model', 'anthropic/claude-x'];

    const noCert = await cli(start, {
      ...tlsEnv,
      TEMPORAL_TLS_CLIENT_CERT_PATH: undefined,
      TEMPORAL_TLS_CLIENT_KEY_PATH: undefined,
      TEMPORAL_API_KEY: writerKey,
    });
    assert.equal(noCert.code, 3, noCert.stderr);
    assert.match(noCert.stderr, /cannot reach Temporal at 127\.0\.0\.1:28333 over TLS .*TEMPORAL_TLS_CLIENT_CERT_PATH/);

    const plain = await cli(start, { TEMPORAL_ADDRESS: tlsEnv.TEMPORAL_ADDRESS });
    assert.equal(plain.code, 3, plain.stderr);
    assert.match(plain.stderr, /if the server requires TLS, set TEMPORAL_TLS=true/);

    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = cluster.security!.apiKey({ permissions: ['temporal-system:admin'], signedBy: privateKey });
    const refused = await cli(start, { ...tlsEnv, TEMPORAL_API_KEY: forged });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /refused this client \(PERMISSION_DENIED: [^)]*\); check TEMPORAL_API_KEY/);
    assert.ok(!refused.stderr.includes(forged.split('.')[2]));

    // A worker with that key does not start, and says why.
    const badWorker = await cli(['worker'], { ...tlsEnv, TEMPORAL_API_KEY: forged, NESTOR_METRICS_PORT: '0' });
    assert.equal(badWorker.code, 2, badWorker.stderr);
    assert.match(badWorker.stderr, /refused this client .*check TEMPORAL_API_KEY/);

    const readOnly = await cli(start, { ...tlsEnv, TEMPORAL_API_KEY: readerKey });
    assert.equal(readOnly.code, 1, readOnly.stderr);
    assert.match(
      readOnly.stderr,
      /error \(TemporalAccessDenied\): Temporal refused the call \(PERMISSION_DENIED: .*need write/,
    );

    // Nothing was started by any of them.
    const admin = await Connection.connect(cluster.connectionOptions('a'));
    try {
      await assert.rejects(
        admin.workflowService.describeWorkflowExecution({ namespace: 'default', execution: { workflowId: id } }),
        /not found/i,
      );
    } finally {
      await admin.close();
    }

    // The worker's start-up checks with a read-only key name the permission it lacks.
    const problems = await preflightProblems({
      connection: { ...cluster.connectionOptions('b', readerKey) },
      namespace: 'default',
    });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], /may not start workflows there \(PERMISSION_DENIED: .*\(e\.g\. default:write\)/);
  });

  test('ConversationClient.connect: a read-only key cannot start (TemporalAccessDenied)', async () => {
    const reader = await ConversationClient.connect({
      ...cluster.connectionOptions('a', readerKey),
      namespace: 'default',
      taskQueue,
    });
    try {
      const id = uniqueId('lib-refused');
      await assert.rejects(
        reader.start({
          conversationId: id,
          userId: 'lib-user',
          settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-x', llmApiKey: 'sk-x' },
        }),
        (err: unknown) => err instanceof ConversationError && err.type === 'TemporalAccessDenied',
      );
    } finally {
      await reader.closeConnection();
    }
  });
});
