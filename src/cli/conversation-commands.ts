// The commands that drive one conversation: start, send, events, close, status, pause, resume, list.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ConversationClient } from '../conversation/client';
import { NestedClient } from '../nested/client';
import { AgentServerClient, describeEvent } from '../nested/agent-server';
import type { AgentLoopInfo, StartConversationRequest } from '../shared/schemas';
import { withClient } from './connect';
import { collect, describe, mask, print } from './output';

export function addConversationCommands(program: Command): void {
  addStartCommand(program);
  addMessageCommands(program);
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
}

/** start: the whole start input from a file or stdin, or flags; waits until RUNNING. */
function addStartCommand(program: Command): void {
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
}

/** The events of a conversation on the current agent server: messages, the agent's state, its errors. */
async function printV1Events(info: AgentLoopInfo, json: boolean): Promise<void> {
  const c = AgentServerClient.forConversation(info);
  const said = (await c.allEvents(info.nestedConversationId!)).filter((e) => describeEvent(e) !== undefined);
  print(said, json, () => said.map((e) => `${e.timestamp ?? ''} ${describeEvent(e)}`).join('\n'));
}

/** send and events: what is said in a conversation. */
function addMessageCommands(program: Command): void {
  program
    .command('send <conversationId> <message>')
    .description('send a message; returns once the nested server accepted it')
    .option('--message-id <id>', 'deduplication key (a UUID when omitted)')
    .action(async (id: string, message: string, o, cmd) => {
      const ack = await withClient((client) => client.sendMessage(id, { content: message, messageId: o.messageId }));
      print(
        ack,
        cmd.optsWithGlobals().json,
        () =>
          `delivered ${ack.messageId}${ack.eventId !== undefined ? ` as event ${ack.eventId}` : ''}${ack.nestedEventId ? ` as event ${ack.nestedEventId}` : ''}`,
      );
    });

  program
    .command('events <conversationId>')
    .description(
      'what was said in a running conversation, read from its nested server: user and agent messages, agent state changes',
    )
    .action(async (id: string, _o, cmd: Command) => {
      const info = await withClient((client) => client.connection(id));
      if (info.protocol === 'v1') return printV1Events(info, cmd.optsWithGlobals().json);
      const events = await NestedClient.forConversation(info).allEvents(id);
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
}
