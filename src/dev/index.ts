// `nestor dev`: the whole service on one machine: the codec server, the Temporal dev server (unless TEMPORAL_ADDRESS
// is set) and the worker `nestor worker` runs (worker.ts startWorker), until Ctrl-C.
import { type NestorConfig } from '../config';
import { describeRuntime } from '../describe-runtime';
import { ConfigError } from '../errors';
import { EncryptionCodec, type EncryptionKey } from '../codec/encryption';
import { resolveEncryptionKeys } from '../codec/keys';
import { startCodecServer, type RunningCodecServer } from '../codec/server';
import { prepareProcess, startWorker } from '../worker';
import { startDevServer } from './server';

/** The codec server on the configured port and origins, with the given keys (else the configured ones). */
export function codecServer(
  c: NestorConfig,
  o: { port?: number; keys?: EncryptionKey[]; insecure?: boolean } = {},
): Promise<RunningCodecServer> {
  const keys = o.keys ?? resolveEncryptionKeys(c).keys;
  return startCodecServer({
    codec: new EncryptionCodec(keys),
    corsOrigins: c.codec.corsOrigins,
    token: c.codec.token,
    insecure: o.insecure ?? c.codec.insecure,
    port: o.port ?? c.codec.port,
  });
}

/**
 * Whether `nestor dev` / `nestor cluster` may serve the codec without a token: only for local development (this
 * machine's own Temporal server and the generated development key), whose UI cannot send one. With real keys
 * (NESTOR_ENCRYPTION_KEYS) or a Temporal server elsewhere (TEMPORAL_ADDRESS), anyone who reaches the port could
 * decrypt production payloads: a token is required, or NESTOR_CODEC_INSECURE=true to serve without one knowingly.
 */
export function codecWithoutToken(c: NestorConfig): boolean {
  if (c.codec.token) return false;
  if (c.codec.insecure) return true;
  if (!c.temporalAddress && resolveEncryptionKeys(c).source === 'dev-file') return true;
  throw new ConfigError(
    `NESTOR_CODEC_TOKEN: required: the codec server would decrypt ${c.temporalAddress ? `payloads of ${c.temporalAddress}` : 'with the keys of NESTOR_ENCRYPTION_KEYS'} for anyone who reaches it; set a token (the UI's codec endpoint then needs it), or NESTOR_CODEC_INSECURE=true to serve without one knowingly`,
  );
}

/** How the codec server is guarded, for its start line. */
export function codecGuard(c: NestorConfig): string {
  return c.codec.token
    ? 'bearer token required (NESTOR_CODEC_TOKEN)'
    : 'NO TOKEN: anyone who reaches it can decrypt every payload (local development only; set NESTOR_CODEC_TOKEN)';
}

/** Run the whole service until SIGINT/SIGTERM, printing where everything is and how to try it. */
export async function runDev(c: NestorConfig): Promise<void> {
  const { dataConverter, keys } = prepareProcess(c);
  // Local development: the dev server's UI has no way to send a token, so `dev` serves without one, and says so.
  const codec = await codecServer(c, { keys, insecure: codecWithoutToken(c) });
  const server = c.temporalAddress ? undefined : await startDevServer(c, { codecEndpoint: codec.url });
  const { worker, connection, address } = await startWorker(c, dataConverter);
  const ui = server ? server.uiUrl : '(the UI of your Temporal server)';
  console.log(
    [
      '',
      `nestor is running: Temporal ${address} (namespace ${c.namespace}), task queue ${c.taskQueue}`,
      describeRuntime(c),
      `Temporal UI: ${ui}`,
      server ? `Dev server database: ${c.dataDir}/temporal.db` : '',
      `Codec server (the UI decrypts payloads through it): ${codec.url}; ${codecGuard(c)}`,
      c.metricsPort > 0 ? `Metrics (Prometheus): http://127.0.0.1:${c.metricsPort}/metrics` : '',
      '',
      'Try it (in another terminal):',
      ...(c.runtime !== 'emulator'
        ? [
            '  npx nestor llm-stand-in   # a scripted LLM for the agent; or use a real model and key',
            '  LLM_API_KEY=sk-stand-in npx nestor start -c demo-1 -u alice --model openai/stand-in --base-url <its URL> -m "hello"',
          ]
        : [`  LLM_API_KEY=sk-demo npx nestor start -c demo-1 -u alice --model anthropic/claude-sonnet-4-5 -m "hello"`]),
      '  npx nestor send demo-1 "how are you?"',
      "  npx nestor events demo-1   # what was said: the agent's answer",
      '  npx nestor status demo-1',
      '  npx nestor close demo-1',
      '',
      'Ctrl-C stops everything.',
    ].join('\n'),
  );
  // The worker drains on SIGINT/SIGTERM by itself; then the server goes.
  await worker.run();
  await connection.close();
  if (server) await server.stop();
  await codec.close();
  console.log('nestor stopped');
}
