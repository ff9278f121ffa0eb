// nestor's start input as the current agent server takes it: which settings V1 uses (and where they go in
// `POST /api/conversations`), which it ignores, and which it refuses because V1 has no counterpart. One table, read
// by the settings check (acquireSession), the create body and the table in docs/runtimes.md.
import type { UserSettings } from '../shared/schemas';

type Use = { use: 'used'; how: string } | { use: 'ignored'; why: string } | { use: 'refused'; why: string };

/** Every user setting, for V1. `refusedUnless` says which values are still fine (e.g. the default agent). */
export const V1_SETTINGS: Record<keyof UserSettings, Use & { refusedUnless?: (s: UserSettings) => boolean }> = {
  agent: {
    use: 'refused',
    why: "the agent server runs one agent (its default, CodeActAgent's successor): only 'CodeActAgent' has a counterpart",
    refusedUnless: (s) => s.agent === 'CodeActAgent',
  },
  llmModel: { use: 'used', how: 'agent_settings.llm.model' },
  llmApiKey: { use: 'used', how: 'agent_settings.llm.api_key' },
  llmBaseUrl: { use: 'used', how: 'agent_settings.llm.base_url' },
  maxIterations: { use: 'used', how: 'max_iterations' },
  confirmationMode: {
    use: 'used',
    how: 'confirmation_policy: true → AlwaysConfirm, false → NeverConfirm (the default)',
  },
  language: { use: 'ignored', why: "the OpenHands front end's language; the agent server has none" },
  gitUserName: {
    use: 'ignored',
    why: "OpenHands' app server sets it with `git config`; the agent server has no setting",
  },
  gitUserEmail: {
    use: 'ignored',
    why: "OpenHands' app server sets it with `git config`; the agent server has no setting",
  },
  securityAnalyzer: {
    use: 'refused',
    why: 'the agent server takes a security analyzer object, not a name; nestor does not map one yet',
  },
  enableDefaultCondenser: { use: 'used', how: 'agent_settings.condenser.enabled (the LLM summarizing condenser)' },
  condenserMaxSize: { use: 'used', how: 'agent_settings.condenser.max_size' },
  maxBudgetPerTask: { use: 'refused', why: 'the agent server has no budget per task' },
  searchApiKey: { use: 'refused', why: 'the agent server has no search API key setting (search comes by MCP)' },
  sandbox: { use: 'used', how: "nestor's own: the sandbox's limits, environment and network" },
};

/** The first setting V1 cannot honour, as `{field, why}`, or undefined. */
export function refusedForV1(s: UserSettings): { field: string; why: string } | undefined {
  for (const [field, u] of Object.entries(V1_SETTINGS)) {
    const value = s[field as keyof UserSettings];
    if (u.use !== 'refused' || value === undefined) continue;
    if (u.refusedUnless?.(s)) continue;
    return { field: `settings.${field}`, why: u.why };
  }
  return undefined;
}

/** The settings that were given but that V1 ignores, for the conversation's warnings. */
export function ignoredByV1(s: UserSettings): string[] {
  return Object.entries(V1_SETTINGS)
    .filter(([field, u]) => u.use === 'ignored' && s[field as keyof UserSettings] !== undefined)
    .map(([field, u]) => `settings.${field} is ignored by the agent server: ${u.use === 'ignored' ? u.why : ''}`);
}

/**
 * The agent settings and options of `POST /api/conversations` that come from the user's settings, and the
 * conversation's instructions (V0's `conversation_instructions`: the agent server appends them to its system message).
 */
export function agentSettingsOf(
  s: UserSettings,
  conversationInstructions?: string,
  mcpServers?: Record<string, unknown>,
): Record<string, unknown> {
  const llm: Record<string, unknown> = { model: s.llmModel, usage_id: 'agent' };
  if (s.llmApiKey !== undefined) llm.api_key = s.llmApiKey;
  if (s.llmBaseUrl !== undefined) llm.base_url = s.llmBaseUrl;
  const condenser =
    s.enableDefaultCondenser !== undefined || s.condenserMaxSize !== undefined
      ? {
          condenser_kind: 'llm_summarizing',
          enabled: s.enableDefaultCondenser ?? true,
          ...(s.condenserMaxSize !== undefined && { max_size: s.condenserMaxSize }),
        }
      : undefined;
  return {
    agent_settings: {
      llm,
      ...(condenser && { condenser }),
      ...(conversationInstructions !== undefined && {
        agent_context: { system_message_suffix: conversationInstructions },
      }),
      // The start's MCP servers (agent-server-mcp.ts), by name.
      ...(mcpServers && { mcp_config: mcpServers }),
    },
    ...(s.maxIterations !== undefined && { max_iterations: s.maxIterations }),
    confirmation_policy: { kind: s.confirmationMode ? 'AlwaysConfirm' : 'NeverConfirm' },
  };
}
