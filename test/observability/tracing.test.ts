// Traces for an operator: with the standard OTEL_EXPORTER_OTLP_* variables set, a start is one trace from the client
// through the workflow, its activities and the agent server's HTTP calls, exported over OTLP to a real receiver (Jaeger
// v2, the OpenTelemetry Collector with a trace store, built by scripts/ensure-jaeger.sh) and read back from its query
// API; no secret of the conversation appears in any span.
// needs: temporal, docker, otel
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { request } from 'undici';
import { ConversationClient } from '../../src/client';
import { shutdownTracing } from '../../src/observability/tracing';
import { cliWorkers, type CliWorkers } from '../helpers/cli-worker';
import { removeContainers } from '../helpers/docker';
import { waitFor } from '../helpers/eventually';
import { freePort } from '../helpers/net';
import { createTestEnv, uniqueId } from '../helpers/temporal';
import { PROJECT_ROOT } from '../../src/config';

// The binary scripts/ensure-jaeger.sh builds, at the version scripts/lib.sh pins.
const JAEGER_VERSION = /JAEGER_VERSION="([^"]+)"/.exec(readFileSync(join(PROJECT_ROOT, 'scripts/lib.sh'), 'utf8'))![1];
const JAEGER = join(PROJECT_ROOT, `.tools/jaeger-${JAEGER_VERSION}/jaeger`);

/** Jaeger v2 with only what the test uses, every port on 127.0.0.1: OTLP/HTTP in, the query API out, memory store. */
function jaegerConfig(otlp: number, query: number, grpc: number): string {
  return `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }
  telemetry: { metrics: { level: none }, logs: { level: warn } }
extensions:
  jaeger_query: { storage: { traces: mem }, http: { endpoint: 127.0.0.1:${query} }, grpc: { endpoint: 127.0.0.1:${grpc} } }
  jaeger_storage: { backends: { mem: { memory: { max_traces: 1000 } } } }
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:${otlp} } } }
processors:
  batch: { timeout: 100ms }
exporters:
  jaeger_storage_exporter: { trace_storage: mem }
`;
}

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  processID: string;
  tags: { key: string; value: unknown }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

describe('tracing over OTLP (Jaeger v2 as the receiver)', () => {
  let jaeger: ChildProcess;
  let queryUrl: string;
  let dir: string;
  let env: TestWorkflowEnvironment;
  let workers: CliWorkers;
  let client: ConversationClient;
  const taskQueue = uniqueId('otel');
  const id = uniqueId('traced');

  before(async () => {
    const [otlp, query, grpc] = [await freePort(), await freePort(), await freePort()];
    dir = mkdtempSync(join(tmpdir(), 'nestor-jaeger-'));
    writeFileSync(join(dir, 'config.yaml'), jaegerConfig(otlp, query, grpc));
    jaeger = spawn(JAEGER, ['--config', join(dir, 'config.yaml')], { stdio: 'ignore' });
    queryUrl = `http://127.0.0.1:${query}`;
    await waitFor(
      async () => (await request(`${queryUrl}/api/services`).catch(() => undefined))?.statusCode === 200,
      'Jaeger’s query API',
      { timeoutMs: 60_000, everyMs: 200 },
    );
    // The standard variables, as an operator sets them; the worker process inherits them. Batches leave quickly.
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    env = await createTestEnv();
    workers = cliWorkers(env.address, taskQueue, 'emulator');
    const w = workers.spawn();
    await waitFor(() => /nestor worker on/.test(w.output()), '`nestor worker` to start', { timeoutMs: 120_000 });
    client = await ConversationClient.connect({ address: env.address, taskQueue });
  });

  after(async () => {
    await client?.closeConnection();
    await shutdownTracing();
    await workers?.stopAll();
    await removeContainers([id]);
    await env?.teardown();
    jaeger?.kill();
    if (jaeger) await once(jaeger, 'exit');
    rmSync(dir, { recursive: true, force: true });
  });

  test('a start is one trace: client, workflow, activities, the agent server’s HTTP calls; no secret in a span', async () => {
    const secrets = ['sk-otel-llm-key-4242', 'ghp_otelgittoken4242', 'otel-custom-secret-4242'];
    const info = await client.start({
      conversationId: id,
      userId: 'otel-user',
      settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: secrets[0] },
      gitProviderTokens: { github: { token: secrets[1] } },
      customSecrets: [{ name: 'OTEL_SECRET', value: secrets[2] }],
      initialMessage: 'hello, traced',
    });
    assert.equal(info.status, 'RUNNING');
    secrets.push(info.sessionApiKey!);
    await client.sendMessage(id, 'a traced message');
    await client.close(id, 'traced');
    await shutdownTracing(); // flush the client's spans

    // The trace whose root is the client's start; the worker's spans arrive in their own batches.
    let start: JaegerTrace | undefined;
    const names = () => new Set(start?.spans.map((s) => s.operationName));
    await waitFor(
      async () => {
        const res = await request(`${queryUrl}/api/traces?service=nestor-client&limit=100&lookback=1h`);
        const traces = ((await res.body.json()) as { data: JaegerTrace[] | null }).data ?? [];
        start = traces.find((t) => t.spans.some((s) => s.operationName === 'UpdateWithStartWorkflow:waitReady'));
        return ['RunWorkflow:StartConversation', 'RunActivity:createRuntime', 'RunActivity:waitForReady'].every((n) =>
          names().has(n),
        );
      },
      'the start’s trace with the worker’s spans',
      { timeoutMs: 60_000, everyMs: 500 },
    ).catch(async (err: Error) => {
      const ops = async (svc: string) =>
        request(`${queryUrl}/api/services/${svc}/operations`).then((r) => r.body.text());
      const seen = `client ${await ops('nestor-client')}, worker ${await ops('nestor-worker')}`;
      throw new Error(`${err.message}; services ${seen}; the start's trace: ${[...names()].join(', ') || 'none'}`);
    });
    const services = new Set(Object.values(start!.processes).map((p) => p.serviceName));
    assert.deepEqual([...services].sort(), ['nestor-client', 'nestor-worker'], 'one trace across both processes');
    for (const step of [
      'acquireSession',
      'createRuntime',
      'configureNestedServer',
      'createConversation',
      'waitForReady',
    ])
      assert.ok(
        [...names()].some((n) => n.endsWith(`:${step}`)),
        `${step} in the trace (${[...names()].join(', ')})`,
      );
    const http = start!.spans.filter((s) => s.tags.some((t) => t.key === 'url.full'));
    assert.ok(
      http.some((s) => s.tags.some((t) => t.key === 'url.full' && String(t.value).includes('/api/conversations'))),
      'the agent server’s HTTP calls are spans of the trace',
    );

    // Nothing secret in any span of either service: attributes, events, names.
    for (const service of ['nestor-client', 'nestor-worker']) {
      const res = await request(`${queryUrl}/api/traces?service=${service}&limit=1000&lookback=1h`);
      const all = await res.body.text();
      assert.ok(all.length > 1000, `${service} exported spans`);
      for (const s of secrets) assert.ok(!all.includes(s), `a secret of the conversation in ${service}'s spans`);
    }
  });
});
