// A start's `mcpConfig` for the current agent server, which takes a map of named MCP servers
// (`agent_settings.mcp_config`: `{name: {command, args, env} | {url, transport, headers}}`). V1's own shape (that map,
// or `{mcpServers: map}`) passes through for the server to validate; V0's three lists (`sse_servers`,
// `stdio_servers`, `shttp_servers`, as OpenHands' V0 server took them) are mapped, so a caller moving from V0 keeps
// its MCP servers. Anything else is refused naming the field.
import { ErrorType, NestorError } from '../errors';

const V0_LISTS = ['sse_servers', 'stdio_servers', 'shttp_servers'] as const;
type Server = Record<string, unknown>;

const invalid = (field: string, expected: string) =>
  new NestorError(ErrorType.InvalidInput, `mcpConfig.${field}: expected ${expected}`, false, {
    field: `mcpConfig.${field}`,
  });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An SSE or streamable-HTTP server of V0 (a URL, or `{url, api_key?, timeout?}`); its API key as a bearer header. */
function remote(entry: unknown, field: string, transport: 'sse' | 'http'): Server {
  const e = typeof entry === 'string' ? { url: entry } : entry;
  if (!isObject(e) || typeof e.url !== 'string' || !e.url)
    throw invalid(field, 'a URL, or an object with a non-empty `url`');
  if (e.api_key !== undefined && e.api_key !== null && typeof e.api_key !== 'string')
    throw invalid(`${field}.api_key`, 'a string');
  if (e.timeout !== undefined && e.timeout !== null && typeof e.timeout !== 'number')
    throw invalid(`${field}.timeout`, 'a number of seconds');
  return {
    url: e.url,
    transport,
    ...(e.api_key && { headers: { Authorization: `Bearer ${e.api_key as string}` } }),
    ...(typeof e.timeout === 'number' && { timeout: e.timeout }),
  };
}

/** A stdio server of V0: `{name, command, args?, env?}`. */
function stdio(entry: unknown, field: string): [string, Server] {
  if (!isObject(entry) || typeof entry.name !== 'string' || !entry.name || typeof entry.command !== 'string')
    throw invalid(field, 'an object with a non-empty `name` and a `command`');
  if (entry.args !== undefined && !(Array.isArray(entry.args) && entry.args.every((a) => typeof a === 'string')))
    throw invalid(`${field}.args`, 'a list of strings');
  if (entry.env !== undefined && !(isObject(entry.env) && Object.values(entry.env).every((v) => typeof v === 'string')))
    throw invalid(`${field}.env`, 'an object of string values');
  return [
    entry.name,
    {
      command: entry.command,
      transport: 'stdio',
      ...(entry.args !== undefined && { args: entry.args }),
      ...(entry.env !== undefined && { env: entry.env }),
    },
  ];
}

/** The agent server's `mcp_config` for a start's `mcpConfig`; InvalidInput naming the field when it is neither shape. */
export function mcpServersOf(config: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(config);
  if (!keys.some((k) => (V0_LISTS as readonly string[]).includes(k))) {
    const map = isObject(config.mcpServers) && keys.length === 1 ? config.mcpServers : config;
    for (const [name, server] of Object.entries(map))
      if (!isObject(server)) throw invalid(name, 'an MCP server object (`command` or `url`), by name');
    return map;
  }
  const other = keys.find((k) => !(V0_LISTS as readonly string[]).includes(k));
  if (other) throw invalid(other, `only ${V0_LISTS.join(', ')} beside each other (V0's shape)`);
  const servers: Record<string, Server> = {};
  const add = (name: string, server: Server, field: string) => {
    if (servers[name]) throw invalid(field, `a name no other MCP server has ('${name}' is taken)`);
    servers[name] = server;
  };
  for (const list of V0_LISTS) {
    const entries = config[list] ?? [];
    if (!Array.isArray(entries)) throw invalid(list, 'a list');
    entries.forEach((entry, i) => {
      const field = `${list}[${i}]`;
      if (list === 'stdio_servers') return add(...stdio(entry, field), field);
      add(
        `${list === 'sse_servers' ? 'sse' : 'http'}-${i + 1}`,
        remote(entry, field, list === 'sse_servers' ? 'sse' : 'http'),
        field,
      );
    });
  }
  return servers;
}
