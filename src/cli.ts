#!/usr/bin/env node
// The `nestor` command: start, send, close, status, worker, dev.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { NativeConnection } from '@temporalio/worker';
import { ConversationClient, ConversationError } from './client';
import { ConfigError, describeRuntime, loadConfig, temporalAddress, type NestorConfig } from './config';
import { startDevServer } from './dev-server';
import { createWorker, depsFromConfig, prepareProcess, runWorker, startReaper } from './worker';
import { EncryptionCodec, type EncryptionKey } from './codec/encryption';
import { resolveEncryptionKeys } from './codec/keys';
import { startCodecServer, type RunningCodecServer } from './codec/server';
import { NestorError } from './shared/errors';
import { NestedClient } from './nested/client';
import { SANDBOX_NETWORK } from './runtime/container-spec';
import { DockerRuntimeProvider } from './runtime/docker';
import { FINISH_MARKER, startLlmStandIn } from './llm-stand-in/server';
import type { AgentLoopInfo, StartConversationRequest } from './shared/schemas';

/** Exit codes: 1 a failure reported by the service, 2 bad input or configuration, 3 cannot reach Temporal. */
const EXIT = { failure: 1, invalid: 2, unreachable: 3 } as const;

/** A `--port` value: an integer 0–65535 (0: any free port), else a usage error (exit 2). */
function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

function mask(key: string | undefined): string | undefined {
  return key ? `${key.slice(0, 4)}…(${key.length} chars, use --show-secrets)` : key;
}

function print(value: unknown, json: boolean, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

function describe(info: AgentLoopInfo): string {
  const lines = [
    `conversation ${info.conversationId} (user ${info.userId}): ${info.status}${info.step ? ` · ${info.step}` : ''}`,
    info.runtimeId && `  runtime:  ${info.runtimeId.slice(0, 12)}`,
    info.url && `  url:      ${info.url}`,
    info.sessionApiKey && `  session key: ${info.sessionApiKey}`,
    `  started:  ${info.startedAt}${info.readyAt ? `, ready ${info.readyAt}` : ''}${info.closedAt ? `, closed ${info.closedAt}` : ''}`,
    `  messages delivered: ${info.messagesDelivered}`,
    info.pausedAt && `  paused:   ${info.pausedAt}${info.pauseReason ? ` (${info.pauseReason})` : ''}`,
    info.lastError && `  error:    ${info.lastError.type} at ${info.lastError.step}: ${info.lastError.message}`,
    ...info.warnings.map((w) => `  warning:  ${w}`),
  ];
  return lines.filter(Boolean).join('\n');
}

/** Run fn with a connected client and close the connection after, so the command exits. */
async function withClient<T>(fn: (client: ConversationClient) => Promise<T>): Promise<T> {
  const client = await connect(loadConfig());
  try {
    return await fn(client);
  } finally {
    await client.closeConnection();
  }
}

async function connect(c: NestorConfig): Promise<ConversationClient> {
  try {
    return await ConversationClient.connect({
      address: temporalAddress(c),
      namespace: c.namespace,
      taskQueue: c.taskQueue,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = new Error(
      `cannot reach Temporal at ${temporalAddress(c)} (${(err as Error).message}); run 'npm start' or set TEMPORAL_ADDRESS`,
    );
    (e as Error & { exitCode: number }).exitCode = EXIT.unreachable;
    throw e;
  }
}

/** The codec server on the configured port and origins, with the given keys (else the configured ones). */
function codecServer(
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

/** How the codec server is guarded, for its start line. */
function codecGuard(c: NestorConfig): string {
  return c.codec.token
    ? 'bearer token required (NESTOR_CODEC_TOKEN)'
    : 'NO TOKEN: anyone who reaches it can decrypt every payload (local development only; set NESTOR_CODEC_TOKEN)';
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function buildProgram(): Command {
  const program = new Command('nestor')
    .description('Durable AI-agent conversations on Temporal')
    .option('--json', 'print JSON for scripts', false)
    .showHelpAfterError()
    // Errors in the arguments are thrown to main, which exits 2 (bad input) as for any invalid input.
    .exitOverride();

  program
    .command('start')
    .description('start a conversation (or attach to the running one) and wait until it is RUNNING')
    .option('-i, --input <file>', 'the whole start input as JSON (- for stdin); flags below override it')
    .option('-c, --conversation-id <id>')
    .option('-u, --user-id <id>')
    .option('--agent <name>', 'agent class, e.g. CodeActAgent')
    .option('--model <name>', 'LLM model, e.g. anthropic/claude-sonnet-4-5')
    .option(
      '--llm-api-key-env <var>',
      'environment variable holding the LLM API key (never pass keys as arguments)',
      'LLM_API_KEY',
    )
    .option('--base-url <url>', "the LLM's OpenAI-compatible base URL, e.g. the stand-in's (nestor llm-stand-in)")
    .option('-m, --message <text>', 'initial message')
    .option('--repository <owner/repo>')
    .option('--env <KEY=VALUE>', 'extra sandbox environment (repeatable)', collect, [])
    .option('--show-secrets', 'print the session API key in full', false)
    .action(async (o, cmd) => {
      const json = cmd.optsWithGlobals().json as boolean;
      const base = o.input
        ? (JSON.parse(readFileSync(o.input === '-' ? 0 : o.input, 'utf8')) as Record<string, any>)
        : {};
      const settings = { ...(base.settings ?? {}) };
      if (o.agent) settings.agent = o.agent;
      if (o.model) settings.llmModel = o.model;
      if (o.baseUrl) settings.llmBaseUrl = o.baseUrl;
      if (process.env[o.llmApiKeyEnv] && !settings.llmApiKey) settings.llmApiKey = process.env[o.llmApiKeyEnv];
      if (o.env.length) {
        const env = Object.fromEntries(o.env.map((kv: string) => [kv.split('=')[0], kv.split('=').slice(1).join('=')]));
        settings.sandbox = { ...settings.sandbox, env: { ...settings.sandbox?.env, ...env } };
      }
      const input: StartConversationRequest = {
        ...base,
        ...(o.conversationId && { conversationId: o.conversationId }),
        ...(o.userId && { userId: o.userId }),
        ...(o.message && { initialMessage: o.message }),
        ...(o.repository && { repository: o.repository }),
        settings,
      } as StartConversationRequest;
      const info = await withClient((client) => client.start(input));
      const shown = o.showSecrets ? info : { ...info, sessionApiKey: mask(info.sessionApiKey) };
      print(shown, json, () => describe(shown));
    });

  program
    .command('send <conversationId> <message>')
    .description('send a message; returns once the nested server accepted it')
    .option('--message-id <id>', 'deduplication key (a UUID when omitted)')
    .action(async (id: string, message: string, o, cmd) => {
      const ack = await withClient((client) => client.sendMessage(id, { content: message, messageId: o.messageId }));
      print(
        ack,
        cmd.optsWithGlobals().json,
        () => `delivered ${ack.messageId}${ack.eventId !== undefined ? ` as event ${ack.eventId}` : ''}`,
      );
    });

  program
    .command('events <conversationId>')
    .description(
      'what was said in a running conversation, read from its nested server: user and agent messages, agent state changes',
    )
    .action(async (id: string, _o, cmd: Command) => {
      const events = await withClient(async (client) =>
        NestedClient.forConversation(await client.connection(id)).allEvents(id),
      );
      const said = events.filter((e) => e.action === 'message' || e.observation === 'agent_state_changed');
      print(said, cmd.optsWithGlobals().json, () =>
        said
          .map((e) => {
            const state = (e.extras as { agent_state?: string; reason?: string } | undefined) ?? {};
            return e.action === 'message'
              ? `#${e.id} ${e.source}: ${String(e.args?.content ?? e.message ?? '')}`
              : `#${e.id} agent state: ${state.agent_state}${state.reason ? ` (${state.reason})` : ''}`;
          })
          .join('\n'),
      );
    });

  /** A command that acts on one conversation and prints its AgentLoopInfo. */
  const conversationCommand = (
    spec: string,
    description: string,
    call: (client: ConversationClient, id: string, o: { reason?: string }) => Promise<AgentLoopInfo>,
    withReason = false,
  ) => {
    const cmd = program.command(spec).description(description);
    if (withReason) cmd.option('-r, --reason <text>');
    cmd.action(async (id: string, o: { reason?: string }, c: Command) => {
      const info = await withClient((client) => call(client, id, o));
      print(info, c.optsWithGlobals().json, () => describe(info));
    });
  };
  conversationCommand(
    'close <conversationId>',
    'stop the conversation and remove its sandbox',
    (cl, id, o) => cl.close(id, o.reason),
    true,
  );
  conversationCommand('status <conversationId>', 'show where a conversation is (never shows secrets)', (cl, id) =>
    cl.status(id),
  );
  conversationCommand(
    'pause <conversationId>',
    'stop the sandbox but keep it; a message or resume brings it back',
    (cl, id, o) => cl.pause(id, o.reason),
    true,
  );
  conversationCommand('resume <conversationId>', 'bring a paused conversation back', (cl, id) => cl.resume(id));

  program
    .command('list')
    .description('list conversations (from the search attributes)')
    .option('-u, --user-id <id>')
    .option('-s, --status <status>', 'STARTING, RUNNING, PAUSED, STOPPED or ERROR')
    .action(async (o, cmd) => {
      const rows = await withClient((client) => client.list({ userId: o.userId, status: o.status }));
      print(rows, cmd.optsWithGlobals().json, () =>
        rows.length === 0
          ? 'no conversations'
          : rows.map((r) => `${r.conversationId}\t${r.userId}\t${r.status}\t${r.startTime.toISOString()}`).join('\n'),
      );
    });

  program
    .command('schedule <conversationId>')
    .description('schedule a resume, with an optional message')
    .option('--at <iso-time>', 'once, at this time')
    .option('--cron <expression>', 'on a cron expression')
    .option('--every <interval>', "every interval, e.g. '1h'")
    .option('-m, --message <text>')
    .action(async (id: string, o, cmd) => {
      const scheduleId = await withClient((client) =>
        client.scheduleResume(id, { at: o.at, cron: o.cron, every: o.every, message: o.message }),
      );
      print({ scheduleId }, cmd.optsWithGlobals().json, () => `scheduled ${scheduleId}`);
    });

  program
    .command('schedules [conversationId]')
    .description('list scheduled resumes')
    .action(async (id: string | undefined, _o, cmd) => {
      const rows = await withClient((client) => client.listScheduledResumes(id));
      print(rows, cmd.optsWithGlobals().json, () =>
        rows.length === 0
          ? 'no scheduled resumes'
          : rows
              .map(
                (r) =>
                  `${r.scheduleId}\t${r.conversationId}\tnext ${r.nextActionTimes[0]?.toISOString() ?? '-'}${r.message ? `\tmessage: ${r.message}` : ''}`,
              )
              .join('\n'),
      );
    });

  program
    .command('unschedule <scheduleId>')
    .description('cancel a scheduled resume')
    .action(async (scheduleId: string, _o, cmd) => {
      await withClient((client) => client.cancelScheduledResume(scheduleId));
      print({ cancelled: scheduleId }, cmd.optsWithGlobals().json, () => `cancelled ${scheduleId}`);
    });

  program
    .command('worker')
    .description('run a worker against TEMPORAL_ADDRESS (default 127.0.0.1:7233)')
    .action(async () => {
      await runWorker(loadConfig());
    });

  program
    .command('llm-stand-in')
    .description(
      "serve a scripted OpenAI-compatible LLM where sandboxes reach it (the sandbox network's gateway), for trying the real agent offline",
    )
    .option('-p, --port <port>', 'port (0: any free one)', portNumber, 0)
    .action(async (o) => {
      const c = loadConfig();
      const host = await new DockerRuntimeProvider({ image: c.runtimeImage }).sandboxGateway();
      const llm = await startLlmStandIn({ host, port: o.port });
      console.log(
        [
          `LLM stand-in on ${llm.baseUrl} (reachable from sandboxes on ${SANDBOX_NETWORK}, not from other hosts)`,
          `  LLM_API_KEY=sk-stand-in npx nestor start -c demo-1 -u alice --model openai/stand-in --base-url ${llm.baseUrl} -m "hello"`,
          `  model openai/stand-in-error: every call fails (401); a message containing ${FINISH_MARKER}: the agent finishes`,
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await llm.close();
    });

  program
    .command('codec-server')
    .description('serve /encode and /decode for the Temporal UI, so it shows payloads decrypted (127.0.0.1 only)')
    .option('-p, --port <port>', 'port (default NESTOR_CODEC_PORT, 8234)', portNumber)
    .action(async (o) => {
      const c = loadConfig();
      const server = await codecServer(c, { port: o.port });
      console.error(`codec server on ${server.url} for ${c.codec.corsOrigins.join(', ')}; ${codecGuard(c)}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });

  program
    .command('dev')
    .description('run the whole service: Temporal dev server (unless TEMPORAL_ADDRESS is set) and a worker')
    .action(async () => {
      const c = loadConfig();
      const { dataConverter, keys } = prepareProcess(c);
      // Local development: the dev server's UI has no way to send a token, so `dev` serves without one, and says so.
      const codec = await codecServer(c, { keys, insecure: c.codec.insecure || !c.codec.token });
      const server = c.temporalAddress ? undefined : await startDevServer(c, { codecEndpoint: codec.url });
      const address = temporalAddress(c);
      const connection = await NativeConnection.connect({ address });
      const worker = await createWorker({
        connection,
        namespace: c.namespace,
        taskQueue: c.taskQueue,
        deps: depsFromConfig(c),
        dataConverter,
      });
      await startReaper(worker, c);
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
          ...(c.runtime === 'openhands'
            ? [
                '  npx nestor llm-stand-in   # a scripted LLM for the agent; or use a real model and key',
                '  LLM_API_KEY=sk-stand-in npx nestor start -c demo-1 -u alice --model openai/stand-in --base-url <its URL> -m "hello"',
              ]
            : [
                `  LLM_API_KEY=sk-test npx nestor start -c demo-1 -u alice --model anthropic/claude-sonnet-4-5 -m "hello"`,
              ]),
          '  npx nestor send demo-1 "how are you?"',
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
    });

  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    if (err instanceof CommanderError) {
      // Commander has printed the message (and help); --help and --version end here with 0.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.invalid;
    } else if (err instanceof ConversationError) {
      console.error(`error (${err.type}): ${err.message}`);
      process.exitCode = err.type === 'InvalidInput' ? EXIT.invalid : EXIT.failure;
    } else if (err instanceof NestorError) {
      console.error(`error (${err.type}): ${err.message}`);
      process.exitCode = err.type === 'InvalidInput' ? EXIT.invalid : EXIT.failure;
    } else if (err instanceof ConfigError || err instanceof SyntaxError) {
      console.error(`error: ${err.message}`);
      process.exitCode = EXIT.invalid;
    } else {
      console.error(`error: ${(err as Error).message}`);
      process.exitCode = code ?? EXIT.failure;
    }
  }
}

if (require.main === module) void main();
