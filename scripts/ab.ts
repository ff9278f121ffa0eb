// A/B of two checkouts on one harness (scripts/lab): the `nestor worker` of each tree, built, in alternating rounds,
// measuring the relay round trip (200 messages) and starts per second at concurrency 8. For judging whether a change
// made the worker slower, beyond run-to-run spread. Reports; never asserts.
//   node dist/scripts/ab.js <before-tree> [<after-tree>, default this checkout] [rounds, default 3]
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { PROJECT_ROOT } from '../src/config';
import { nestorRate, nestorStarts, startInput } from './bench/measure';
import { Lab } from './lab/lab';
import { stats } from './stats';

process.env.NESTOR_RUNTIME ??= 'emulator';

/** One round: a fresh lab, the tree's worker, then `measure`. */
async function round<T>(tree: string, measure: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create({ name: 'ab' });
  const child = spawn('node', [`${tree}/dist/src/cli.js`, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: lab.server.address,
      NESTOR_TASK_QUEUE: lab.taskQueue,
      NESTOR_ENCRYPTION_KEYS: lab.keySpec,
      NESTOR_METRICS_PORT: '0',
      NESTOR_REAPER_INTERVAL_MS: '0',
      NESTOR_LOG_LEVEL: 'WARN',
      NESTOR_MAX_CONVERSATIONS_PER_USER: '1000',
    },
    stdio: 'ignore',
  });
  try {
    await nestorStarts(lab.client, 3, 1, 'warm');
    return await measure(lab);
  } finally {
    child.kill('SIGKILL');
    await lab.close();
  }
}

async function relayP50(lab: Lab): Promise<number> {
  const id = `ab-relay-${Date.now()}`;
  await lab.client.start(startInput(id));
  const rtt: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await lab.client.sendMessage(id, { content: `m ${i}`, messageId: `m-${i}` });
    rtt.push(performance.now() - t0);
  }
  await lab.client.close(id);
  return stats(rtt).p50;
}

async function main() {
  const [before, after = PROJECT_ROOT, rounds = '3'] = process.argv.slice(2);
  if (!before) throw new Error('usage: node dist/scripts/ab.js <before-tree> [<after-tree>] [rounds]');
  for (let r = 1; r <= Number(rounds); r++) {
    for (const [name, tree] of [
      ['before', before],
      ['after', after],
    ]) {
      const relay = await round(tree, relayP50);
      const rate = await round(tree, (lab) => nestorRate(lab.client, 24, 8));
      console.log(`${name} round ${r}: relay round trip p50 ${relay.toFixed(1)} ms; ${rate.toFixed(2)} starts/s at 8`);
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
