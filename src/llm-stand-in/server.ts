// A stand-in for an LLM provider: a small OpenAI-compatible chat-completions server with scripted replies, so the
// real OpenHands agent runs whole turns offline (tests, demos, a newcomer without an API key). Node built-ins only.
//
// What it answers, by the request:
// - model name containing `error` (e.g. `openai/stand-in-error`): 401 with an OpenAI error body, on every call; LiteLLM
//   raises AuthenticationError, which OpenHands does not retry, so the agent stops in its error state at once;
// - last user text containing `[finish]`: the `finish` tool call (native `tool_calls` when the request offers tools,
//   else OpenHands' emulated `<function=finish>` markup), ending the agent's task;
// - last user text holding `[run] <command>`, when the request offers the `terminal` tool (the current agent server):
//   that tool call; the agent runs the command in its sandbox and, with the tool's output as the newest message, the
//   stand-in answers `stand-in reply to: tool output: <the output>`, ending the turn;
// - anything else: an assistant message `stand-in reply to: <the last user text>`, after which the agent waits for
//   the user.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Marker a user message carries to make the stand-in call the `finish` tool. */
export const FINISH_MARKER = '[finish]';
/** Marker before a shell command the stand-in has the agent run (the current agent server's `terminal` tool). */
export const RUN_MARKER = '[run] ';
/** Prefix of every plain reply, so tests can find the agent's answer among the events. */
export const REPLY_PREFIX = 'stand-in reply to: ';

export interface ChatRequestRecord {
  model: string;
  lastUserText: string;
  tools: string[];
  at: string;
}

export interface LlmStandIn {
  /** e.g. http://172.18.0.1:40123/v1 — what settings.llmBaseUrl takes. */
  baseUrl: string;
  host: string;
  port: number;
  /** Every chat request seen, oldest first (newest 500). */
  requests: ChatRequestRecord[];
  close(): Promise<void>;
}

type Message = { role?: string; content?: unknown };

/** A message's text parts, whether content is a string or a list of parts. */
function partsOf(content: unknown): string[] {
  if (typeof content === 'string') return [content];
  if (Array.isArray(content)) {
    return content.flatMap((p) =>
      p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
        ? [(p as { text: string }).text]
        : [],
    );
  }
  return [];
}

/**
 * What the user wrote, without what OpenHands wraps around it: context blocks of its own (`<RUNTIME_INFORMATION>…`),
 * and, for a model without native function calling, an in-context example before the task and a format reminder after.
 */
function userWords(part: string): string {
  let t = part;
  const task = /-{5,} NEW TASK DESCRIPTION -{5,}\n([\s\S]*?)\n-{5,} END OF NEW TASK DESCRIPTION -{5,}/.exec(t);
  if (task) t = task[1];
  return t.replace(/PLEASE follow the format strictly![^\n]*/g, '').trim();
}

/** The newest thing the user said, skipping OpenHands' own context blocks (also sent as the user). */
function lastUserText(messages: Message[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role !== 'user') continue;
    const words = partsOf(messages[i].content)
      .filter((p) => !p.trim().startsWith('<'))
      .map(userWords)
      .filter(Boolean);
    if (words.length) return words[words.length - 1];
  }
  return '';
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function completion(model: string, message: Record<string, unknown>, finishReason: string) {
  return {
    id: `chatcmpl-stand-in-${Date.now().toString(36)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finishReason }],
    usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
  };
}

/** The reply to one chat request: status and body. Pure, so tests check the script without a server. */
export function scriptedReply(body: { model?: unknown; messages?: unknown; tools?: unknown }): {
  status: number;
  body: unknown;
} {
  const model = typeof body.model === 'string' ? body.model : '';
  if (!model || !Array.isArray(body.messages)) {
    return {
      status: 400,
      body: {
        error: {
          message: "expected a JSON body with 'model' (string) and 'messages' (array)",
          type: 'invalid_request_error',
        },
      },
    };
  }
  if (/error/i.test(model)) {
    return {
      status: 401,
      body: {
        error: {
          message: `stand-in: scripted error for model '${model}' (an invalid API key)`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      },
    };
  }
  const messages = body.messages as Message[];
  const text = lastUserText(messages);
  const tools = Array.isArray(body.tools)
    ? (body.tools as Array<{ function?: { name?: string } }>).map((t) => t.function?.name ?? '')
    : [];
  if (messages.at(-1)?.role === 'tool') {
    const output = partsOf(messages.at(-1)!.content).join(' ').replace(/\s+/g, ' ').trim().slice(0, 400);
    return { status: 200, body: completion(model, { content: `${REPLY_PREFIX}tool output: ${output}` }, 'stop') };
  }
  const run = text.indexOf(RUN_MARKER);
  if (run >= 0 && tools.includes('terminal')) {
    const command = text.slice(run + RUN_MARKER.length).trim();
    const call = {
      id: `call_stand_in_run_${Date.now().toString(36)}`,
      type: 'function',
      function: { name: 'terminal', arguments: JSON.stringify({ command, security_risk: 'LOW' }) },
    };
    return { status: 200, body: completion(model, { content: null, tool_calls: [call] }, 'tool_calls') };
  }
  if (text.includes(FINISH_MARKER)) {
    const message = 'stand-in: task finished';
    if (tools.includes('finish')) {
      const call = {
        id: 'call_stand_in_finish',
        type: 'function',
        function: { name: 'finish', arguments: JSON.stringify({ message }) },
      };
      return { status: 200, body: completion(model, { content: null, tool_calls: [call] }, 'tool_calls') };
    }
    return {
      status: 200,
      body: completion(
        model,
        { content: `<function=finish>\n<parameter=message>${message}</parameter>\n</function>` },
        'stop',
      ),
    };
  }
  const said = text.replace(/\s+/g, ' ').slice(0, 200);
  return { status: 200, body: completion(model, { content: `${REPLY_PREFIX}${said}` }, 'stop') };
}

/** Start the stand-in on host:port (port 0: any free one). */
export async function startLlmStandIn(opts: { host: string; port?: number }): Promise<LlmStandIn> {
  const requests: ChatRequestRecord[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
      return send(res, 200, { object: 'list', data: [{ id: 'stand-in', object: 'model', owned_by: 'nestor' }] });
    }
    if (req.method !== 'POST' || !(path === '/v1/chat/completions' || path === '/chat/completions')) {
      return send(res, 404, {
        error: {
          message: `no route ${req.method} ${path}; try POST /v1/chat/completions`,
          type: 'invalid_request_error',
        },
      });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { model?: unknown; messages?: unknown; tools?: unknown; stream?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error' } });
      }
      const reply = scriptedReply(body);
      if (reply.status === 200) {
        requests.push({
          model: String(body.model),
          lastUserText: lastUserText(body.messages as Message[]),
          tools: Array.isArray(body.tools)
            ? body.tools.map((t: { function?: { name?: string } }) => t.function?.name ?? '')
            : [],
          at: new Date().toISOString(),
        });
        if (requests.length > 500) requests.shift();
      }
      if (body.stream === true && reply.status === 200) return stream(res, reply.body as ReturnType<typeof completion>);
      send(res, reply.status, reply.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: opts.host,
    port,
    baseUrl: `http://${opts.host}:${port}/v1`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The same completion as server-sent events, for clients that ask to stream. */
function stream(res: ServerResponse, c: ReturnType<typeof completion>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const choice = c.choices[0];
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id: c.id, object: 'chat.completion.chunk', created: c.created, model: c.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  const { role: _role, tool_calls, ...rest } = choice.message as Record<string, unknown>;
  res.write(
    chunk(
      {
        role: 'assistant',
        ...rest,
        ...(tool_calls ? { tool_calls: (tool_calls as object[]).map((t, index) => ({ index, ...t })) } : {}),
      },
      null,
    ),
  );
  res.write(chunk({}, choice.finish_reason));
  res.end('data: [DONE]\n\n');
}
