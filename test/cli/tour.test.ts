// The README's five-minute tour, run as copied: its command-line block line by line, then its TypeScript example with
// tsx, against a real dev server, a worker and Docker sandboxes running the emulator (as `NESTOR_RUNTIME=emulator npm
// start` would serve them). A tour that no longer works fails here, not in a newcomer's first hour.
// needs: temporal, docker
import assert from 'node:assert/strict';
import { exec } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/config';
import { fencedBlocks } from '../helpers/docs';
import { startE2e, type E2e } from '../helpers/e2e';
import { waitFor } from '../helpers/eventually';

const sh = promisify(exec);
const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');

describe("the README's tour, as copied", () => {
  let lab: E2e;
  // The tour's conversations, removed with the lab should a step fail.
  const made = new Set<string>(['demo-1', 'demo-2']);
  /** The tour's terminal: the checkout, and the variables that point `nestor` at this test's server and worker. */
  let env: NodeJS.ProcessEnv;

  before(async () => {
    lab = await startE2e(made);
    env = { ...process.env, TEMPORAL_ADDRESS: lab.env.address, NESTOR_TASK_QUEUE: lab.taskQueue };
  });
  after(() => lab?.stop());

  test('the command-line tour: start, send, the agent’s answer in events, status, close', async () => {
    const [block] = fencedBlocks(readme, 'sh').filter((b) => b.info === 'sh tour');
    assert.ok(block, 'the README has a ```sh tour block');
    const lines = block.code.split('\n').filter((l) => l.trim());
    const out: Record<string, string> = {};
    for (const line of lines) {
      const command = line.split(' ').find((w, i, all) => all[i - 1] === 'nestor') ?? line;
      if (command === 'events') {
        // The agent answers on its own time: read the events until its answer is there.
        await waitFor(
          async () => /echo: how are you\?/.test((out.events = (await sh(line, { cwd: PROJECT_ROOT, env })).stdout)),
          'the agent’s answer in `nestor events`',
          { timeoutMs: 30_000, everyMs: 500 },
        );
        continue;
      }
      out[command] = (await sh(line, { cwd: PROJECT_ROOT, env })).stdout;
    }
    assert.match(out.start, /conversation demo-1 \(user alice\): RUNNING/);
    assert.match(out.send, /^delivered /);
    assert.match(out.events, /user: hello$/m);
    assert.match(out.events, /agent: echo: how are you\?$/m);
    assert.match(out.status, /: RUNNING/);
    assert.match(out.close, /: STOPPED/);
  });

  test('the TypeScript tour, saved in the checkout and run with tsx', async () => {
    const [block] = fencedBlocks(readme, 'ts');
    // A name of its own, so a newcomer's tour.ts is never touched; removed whatever happens.
    const file = join(PROJECT_ROOT, `.tour-test-${process.pid}.ts`);
    writeFileSync(file, block.code);
    try {
      const { stdout } = await sh(`npx tsx ${file}`, { cwd: PROJECT_ROOT, env });
      assert.match(stdout, /^RUNNING /m);
      assert.match(stdout, /^delivered /m);
      assert.match(stdout, /^user: how are you\?$/m);
      assert.match(stdout, /^agent: echo: how are you\?$/m);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
