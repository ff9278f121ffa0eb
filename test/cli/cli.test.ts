// The nestor command and worker process end to end: a real dev server, a real worker, real Docker and the emulator image (helpers/e2e.ts).
// needs: temporal, docker
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConversationClient } from '../../src/conversation/client';
import { REAPER_SCHEDULE_ID } from '../../src/shared/constants';
import { containersFor } from '../helpers/docker';
import { waitFor } from '../helpers/eventually';
import { uniqueId } from '../helpers/temporal';

import { e2eInput, startE2e, type E2e } from '../helpers/e2e';

const run = promisify(execFile);
const CLI = require.resolve('../../src/cli');

describe('the nestor command and `nestor worker` end to end (Temporal + Docker + emulator)', () => {
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  let lab: E2e;
  const made = new Set<string>();
  const input = e2eInput(made);

  before(async () => {
    lab = await startE2e(made);
    ({ env, taskQueue } = lab);
  });

  after(() => lab?.stop());

  test('the CLI: invalid input exits 2 and starts nothing; start, status and close work and mask the key', async () => {
    const cliEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      NESTOR_TASK_QUEUE: taskQueue,
      LLM_API_KEY: 'sk-cli-key',
    };
    const bad = await run('node', [CLI, 'start', '-c', 'bad/id', '-u', 'u', '--model', 'anthropic/claude-x'], {
      env: cliEnv,
    }).catch((e) => e);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error \(InvalidInput\): invalid start input: conversationId: /);

    const id = uniqueId('cli');
    made.add(id);
    const { stdout } = await run(
      'node',
      [CLI, '--json', 'start', '-c', id, '-u', 'cli-user', '--model', 'anthropic/claude-x', '-m', 'hi from the CLI'],
      { env: cliEnv },
    );
    const started = JSON.parse(stdout);
    assert.equal(started.status, 'RUNNING');
    assert.match(started.sessionApiKey, /…\(\d+ chars, use --show-secrets\)$/);
    assert.doesNotMatch(stdout, /sk-cli-key/);
    const status = await run('node', [CLI, 'status', id], { env: cliEnv });
    assert.match(status.stdout, new RegExp(`conversation ${id} \\(user cli-user\\): RUNNING`));
    const paused = await run('node', [CLI, 'pause', id, '-r', 'cli pause'], { env: cliEnv });
    assert.match(paused.stdout, /: PAUSED/);
    assert.match(paused.stdout, /paused: .* \(cli pause\)/);
    const sched = JSON.parse(
      (await run('node', [CLI, '--json', 'schedule', id, '--every', '1h', '-m', 'later'], { env: cliEnv })).stdout,
    );
    assert.match(
      (await run('node', [CLI, 'schedules', id], { env: cliEnv })).stdout,
      new RegExp(`${sched.scheduleId}\\t${id}\\tnext .*\\tmessage: later`),
    );
    await run('node', [CLI, 'unschedule', sched.scheduleId], { env: cliEnv });
    assert.match((await run('node', [CLI, 'schedules', id], { env: cliEnv })).stdout, /no scheduled resumes/);
    const badSchedule = await run('node', [CLI, 'schedule', id, '--every', 'soon'], { env: cliEnv }).catch((e) => e);
    assert.equal(badSchedule.code, 2);
    assert.match(badSchedule.stderr, /every: /);
    assert.match((await run('node', [CLI, 'resume', id], { env: cliEnv })).stdout, /: RUNNING/);
    // What was said, read from the nested server with the conversation's own key (never printed).
    const said = (await run('node', [CLI, 'events', id], { env: cliEnv })).stdout;
    assert.match(said, /^#\d+ user: hi from the CLI$/m);
    assert.match(said, /^#\d+ agent: echo: hi from the CLI$/m);
    assert.doesNotMatch(said, /session/i);
    await waitFor(
      async () =>
        (await run('node', [CLI, 'list', '-u', 'cli-user', '-s', 'RUNNING'], { env: cliEnv })).stdout.includes(
          `${id}\tcli-user\tRUNNING`,
        ),
      '`nestor list` to show it RUNNING',
      { everyMs: 200 },
    );
    const closed = await run('node', [CLI, '--json', 'close', id, '-r', 'cli test'], { env: cliEnv });
    assert.equal(JSON.parse(closed.stdout).status, 'STOPPED');
    assert.deepEqual(await containersFor(id), []);
  });

  test('`nestor worker` serves its task queue from the environment and drains on SIGINT', async () => {
    const queue = uniqueId('cli-worker');
    const child = spawn('node', [CLI, 'worker'], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, NESTOR_TASK_QUEUE: queue, NESTOR_METRICS_PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = once(child, 'exit');
    try {
      const id = uniqueId('via-cli-worker');
      const other = new ConversationClient({ client: env.client, taskQueue: queue });
      const info = await other.start(input(id));
      assert.equal(info.status, 'RUNNING');
      assert.equal((await other.close(id)).status, 'STOPPED');
      assert.deepEqual(await containersFor(id), []);
      // The worker made the orphan reaper's schedule at start.
      const reaper = await env.client.schedule.getHandle(REAPER_SCHEDULE_ID).describe();
      assert.equal(reaper.action.type === 'startWorkflow' && reaper.action.taskQueue, queue);
      await env.client.schedule.getHandle(REAPER_SCHEDULE_ID).delete();
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`task queue ${queue}`));
  });

  test("`nestor pool`: resize starts the image's pool, status shows it, disable empties it, drain ends it; bad sizes exit 2", async () => {
    const cliEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      NESTOR_TASK_QUEUE: taskQueue,
      NESTOR_RUNTIME: 'emulator',
    };
    const cli = (...args: string[]) => run('node', [CLI, ...args], { env: cliEnv });
    const none = await cli('pool', 'status').catch((e) => e);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /error \(PoolNotFound\): no warm pool 'nestor-emulator-latest' is running/);
    const bad = await cli('pool', 'resize', 'many').catch((e) => e);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error \(InvalidInput\): size: expected a whole number ≥ 0, got 'many'/);
    const tooMany = await cli('pool', 'resize', '1000').catch((e) => e);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /error \(PoolTooLarge\): size: 1000 members of 256 MB/);

    assert.match(
      (await cli('pool', 'resize', '1')).stdout,
      /pool nestor-emulator-latest \(enabled\).*target 1 \(size 1\)/,
    );
    await waitFor(async () => /1 ready/.test((await cli('pool', 'status')).stdout), 'one member ready', {
      everyMs: 200,
    });
    const status = JSON.parse((await cli('--json', 'pool', 'status')).stdout);
    assert.equal(status.ready, 1);
    assert.match((await cli('pool', 'disable')).stdout, /\(disabled\)/);
    await waitFor(async () => /0 ready, 0 booting/.test((await cli('pool', 'status')).stdout), 'emptied', {
      everyMs: 200,
    });
    const drained = await cli('pool', 'drain');
    assert.match(drained.stdout, /\(draining\): 0 ready, 0 booting/);
    assert.match((await cli('pool', 'status').catch((e) => e)).stderr, /PoolNotFound/);
  });

  test('`nestor worker` refuses a pool larger than its Docker host holds, saying what to set', async () => {
    const res = await run('node', [CLI, 'worker'], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        NESTOR_TASK_QUEUE: uniqueId('too-big'),
        NESTOR_METRICS_PORT: '0',
        NESTOR_RUNTIME: 'emulator',
        NESTOR_POOL_SIZE: '1000',
        NESTOR_REAPER_INTERVAL_MS: '0',
      },
      timeout: 60_000, // a worker that did not exit on its own would be killed: the test fails, it does not hang
    }).catch((e) => e);
    assert.equal(res.killed, false, 'the worker exited by itself');
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /NESTOR_POOL_SIZE: 1000 members of 256 MB .* set it to \d+ or fewer/);
  });
});
