// The fault suite, reduced: every fault of scripts/faults.ts once (the full suite, `npm run test:faults`, runs each
// five times), on each runtime it applies to. Each fault is a subtest whose failure lists the invariant violations.
// needs: temporal, docker, openhands
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  FAULT_NAMES,
  REAL_V1_FAULT_NAMES,
  V1_FAULT_NAMES,
  formatMatrix,
  runFaultSuite,
  type FaultRow,
} from '../../scripts/faults';
import type { FaultRuntime } from '../../scripts/faults/lab';

const SUITES: Array<{ title: string; runtime: FaultRuntime; names: string[]; prefix: string }> = [
  {
    title: 'faults survived (each once; npm run test:faults for the full suite)',
    runtime: 'emulator',
    names: FAULT_NAMES,
    prefix: '',
  },
  {
    title: 'faults survived on the V1 protocol (the emulator speaking it; each once)',
    runtime: 'emulator-v1',
    names: V1_FAULT_NAMES,
    prefix: 'V1: ',
  },
  {
    title: 'delivery faults survived on the real agent server (V1), through the fault proxy; each once',
    runtime: 'openhands',
    names: REAL_V1_FAULT_NAMES,
    prefix: 'real V1: ',
  },
];

for (const suite of SUITES) {
  describe(suite.title, () => {
    let rows: FaultRow[] = [];
    before(async () => {
      rows = await runFaultSuite({ runs: 1, runtime: suite.runtime, log: () => {} });
      process.stderr.write(`${formatMatrix(rows)}\n`);
    });

    for (const name of suite.names) {
      test(`${suite.prefix}${name}`, () => {
        const row = rows.find((r) => r.fault === name);
        assert.ok(row, `${name} ran`);
        assert.equal(row.runs, 1);
        assert.deepEqual(row.violations, []);
      });
    }
  });
}
