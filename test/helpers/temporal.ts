// A real Temporal dev server for tests: the CLI built by scripts/ensure-temporal-cli.sh, on a free port. Clients and
// workers encrypt payloads as in production, with a key made for this test process (children inherit it).
import { existsSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { loadConfig } from '../../src/config';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/constants';
import { BUNDLE_OPTIONS } from '../../src/worker';
import { generateKeySpec, parseEncryptionKeys } from '../../src/codec/encryption';
import { nestorDataConverter } from '../../src/codec/keys';

process.env.NESTOR_ENCRYPTION_KEYS ??= generateKeySpec(`test-${process.pid}`);
/** The data converter of this test process: the key in NESTOR_ENCRYPTION_KEYS. */
export const testDataConverter: DataConverter = nestorDataConverter(parseEncryptionKeys(process.env.NESTOR_ENCRYPTION_KEYS));

// Tests assert outcomes; the SDK's info and warning lines (e.g. expected activity failures) would bury them.
Runtime.install({ logger: new DefaultLogger((process.env.NESTOR_TEST_LOG_LEVEL as 'ERROR') ?? 'ERROR') });

export async function createTestEnv(): Promise<TestWorkflowEnvironment> {
  const path = loadConfig().temporalBin;
  if (!existsSync(path)) throw new Error(`Temporal CLI missing at ${path}: run 'npm run setup'`);
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path }, searchAttributes: SEARCH_ATTRIBUTE_KEYS, ip: '127.0.0.1' },
    client: { dataConverter: testDataConverter },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** One workflow bundle per test process, built as the worker would build it. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ ...BUNDLE_OPTIONS, logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never });
  return bundle;
}

let n = 0;
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${n++}`;
}
