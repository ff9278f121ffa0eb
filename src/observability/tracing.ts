// Traces for an operator (OpenTelemetry). Off unless the standard OTLP variables name an endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SDK_DISABLED=true turns it off again).
// Then a start is one trace: the client's update-with-start, the workflow, each activity, and the HTTP calls the
// activities make to the agent server (undici's instrumentation), exported over OTLP/HTTP as the OTEL_* variables say
// (headers, timeout, service name). Temporal's interceptors carry the trace across the server in headers, never in
// payloads; spans hold IDs, types and URLs, never a payload, a key or a header's value.
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

/** Whether the environment asks for traces. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export interface Tracing {
  /** Temporal's OpenTelemetry plugin: for the client (`plugins`) and the worker (`plugins`). */
  plugin: OpenTelemetryPlugin;
  /** Export what is buffered and stop (shutdownTracing: before the process exits). */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

/**
 * The process's tracing, set up once on first use when the environment asks for it (undefined otherwise): one
 * provider, one exporter and one plugin shared by every client and worker of the process.
 */
export function processTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (current || !tracingRequested(env)) return current;
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME ?? serviceName });
  // The exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT itself.
  const processor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  // The agent server's HTTP calls (undici's diagnostics channel): method, URL, status; no header values.
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [new UndiciInstrumentation()],
  });
  const plugin = new OpenTelemetryPlugin({
    resource,
    spanProcessor: processor,
    tracer: trace.getTracer('nestor'),
  });
  current = {
    plugin,
    async shutdown() {
      unregister();
      await provider.shutdown();
    },
  };
  return current;
}

/** Export what the process's tracing buffered and stop it (nothing when it was never set up). */
export async function shutdownTracing(): Promise<void> {
  const t = current;
  current = undefined;
  await t?.shutdown();
}
