// The fault suite, reduced: every fault of scripts/faults.ts once (the full suite, `npm run test:faults`, runs each
// five times). Each fault is a subtest whose failure lists the invariant violations.
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

describe('faults survived (each once; npm run test:faults for the full suite)', () => {
  let rows: FaultRow[] = [];
  before(async () => {
    rows = await runFaultSuite({ runs: 1, log: () => {} });
    process.stderr.write(`${formatMatrix(rows)}\n`);
  });

  for (const name of FAULT_NAMES) {
    test(name, () => {
      const row = rows.find((r) => r.fault === name);
      assert.ok(row, `${name} ran`);
      assert.equal(row.runs, 1);
      assert.deepEqual(row.violations, []);
    });
  }
});

describe('faults survived on the V1 protocol (the emulator speaking it; each once)', () => {
  let rows: FaultRow[] = [];
  before(async () => {
    rows = await runFaultSuite({ runs: 1, runtime: 'emulator-v1', log: () => {} });
    process.stderr.write(`${formatMatrix(rows)}\n`);
  });

  for (const name of V1_FAULT_NAMES) {
    test(`V1: ${name}`, () => {
      const row = rows.find((r) => r.fault === name);
      assert.ok(row, `${name} ran`);
      assert.equal(row.runs, 1);
      assert.deepEqual(row.violations, []);
    });
  }
});

describe('delivery faults survived on the real agent server (V1), through the fault proxy; each once', () => {
  let rows: FaultRow[] = [];
  before(async () => {
    rows = await runFaultSuite({ runs: 1, runtime: 'openhands', log: () => {} });
    process.stderr.write(`${formatMatrix(rows)}\n`);
  });

  for (const name of REAL_V1_FAULT_NAMES) {
    test(`real V1: ${name}`, () => {
      const row = rows.find((r) => r.fault === name);
      assert.ok(row, `${name} ran`);
      assert.equal(row.runs, 1);
      assert.deepEqual(row.violations, []);
    });
  }
});
