// A real Temporal dev server for tests: the CLI built by scripts/ensure-temporal-cli.sh, on a free port. Clients and
// workers encrypt payloads as in production, with a key made for this test process (children inherit it).
import { existsSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  DefaultLogger,
  Runtime,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadConfig } from '../../src/config';
import { dynamicConfigArgs } from '../../src/dev/server';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/constants';
import { BUNDLE_OPTIONS, createWorker } from '../../src/worker';
import type { ActivityDeps } from '../../src/activities';
import { ConversationClient } from '../../src/conversation/client';
import { generateKeySpec, parseEncryptionKeys } from '../../src/codec/encryption';
import { nestorDataConverter } from '../../src/codec/keys';

process.env.NESTOR_ENCRYPTION_KEYS ??= generateKeySpec(`test-${process.pid}`);
/** The data converter of this test process: the key in NESTOR_ENCRYPTION_KEYS. */
export const testDataConverter: DataConverter = nestorDataConverter(
  parseEncryptionKeys(process.env.NESTOR_ENCRYPTION_KEYS),
);
/** The same key, as workers use it (a payload sealed with another key is marked, not thrown on). */
export const testWorkerDataConverter: DataConverter = nestorDataConverter(
  parseEncryptionKeys(process.env.NESTOR_ENCRYPTION_KEYS),
  { role: 'worker' },
);

// Tests assert outcomes; the SDK's info and warning lines (e.g. expected activity failures) would bury them.
Runtime.install({ logger: new DefaultLogger((process.env.NESTOR_TEST_LOG_LEVEL as 'ERROR') ?? 'ERROR') });

export async function createTestEnv(): Promise<TestWorkflowEnvironment> {
  const path = loadConfig().temporalBin;
  if (!existsSync(path)) throw new Error(`Temporal CLI missing at ${path}: run 'npm run setup'`);
  return TestWorkflowEnvironment.createLocal({
    // The same dynamic config as the dev server nestor starts (update limits sized for nestor's load).
    server: {
      executable: { type: 'existing-path', path },
      searchAttributes: SEARCH_ATTRIBUTE_KEYS,
      ip: '127.0.0.1',
      extraArgs: dynamicConfigArgs(),
    },
    client: { dataConverter: testDataConverter },
  });
}

/** What the tests need of a Temporal service: the dev server (createTestEnv) or the local cluster (cluster.ts). */
export interface TemporalEnv {
  client: Client;
  nativeConnection: NativeConnection;
  teardown(): Promise<void>;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** One workflow bundle per test process, built as the worker would build it. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    ...BUNDLE_OPTIONS,
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never,
  });
  return bundle;
}

/** A worker of nestor's (createWorker) on the test server, sharing the bundle and key; `stop` drains it. */
export async function startWorker(
  env: TemporalEnv,
  taskQueue: string,
  deps: ActivityDeps,
): Promise<{ client: ConversationClient; stop(): Promise<void> }> {
  const worker = await createWorker({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    dataConverter: testWorkerDataConverter,
    deps,
  });
  const running = worker.run();
  return {
    client: new ConversationClient({ client: env.client, taskQueue }),
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

let n = 0;
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${n++}`;
}
