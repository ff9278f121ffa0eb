// acquireSession / releaseSession: the settings registry (agents, model capabilities) and the session lease.
import { DEFAULT_SANDBOX_MAXIMA } from '../defaults';
import { ErrorType, NestorError } from '../errors';
import type { UserSettings } from '../shared/schemas';
import { protocolOfKind, type ImageManifest, type NestedProtocol } from '../runtime/image-manifest';
import { reservedEnvName } from '../runtime/container-spec';
import { refusedForV1 } from '../nested/agent-server-settings';

export type Capability = 'functionCalling' | 'vision';
export type ModelCapabilities = Partial<Record<Capability, boolean>>;

/**
 * Agents nestor knows, with what each cannot do without (OpenHands' agent classes). As in OpenHands, function calling
 * is no requirement: the tool-using agents (CodeAct and its subclasses) emulate it in the prompt for a model without
 * native function calling, so any model runs them. Vision cannot be emulated: a model the table knows to lack it is
 * refused for the screenshot-driven agent; an unknown model is given the benefit of the doubt, as OpenHands does.
 */
export const AGENT_REGISTRY: Record<string, { needs: Capability[]; description: string }> = {
  CodeActAgent: { needs: [], description: 'edits code and runs commands through tool calls (native or emulated)' },
  BrowsingAgent: { needs: [], description: 'text-only web browsing' },
  VisualBrowsingAgent: { needs: ['vision'], description: 'web browsing from screenshots' },
  ReadOnlyAgent: { needs: [], description: 'explores a repository without changing it' },
  LocAgent: { needs: [], description: 'localises code for an issue' },
};

/**
 * Model capability table: glob patterns ('*' matches anything) to capabilities; the first match wins.
 * Operators extend or override it with NESTOR_MODEL_CAPABILITIES (a JSON object of the same shape).
 */
export const DEFAULT_MODEL_CAPABILITIES: Record<string, ModelCapabilities> = {
  'anthropic/claude-*': { functionCalling: true, vision: true },
  'claude-*': { functionCalling: true, vision: true },
  'openai/gpt-4o*': { functionCalling: true, vision: true },
  'gpt-4o*': { functionCalling: true, vision: true },
  'openai/gpt-4.1*': { functionCalling: true, vision: true },
  'openai/gpt-5*': { functionCalling: true, vision: true },
  'openai/o3*': { functionCalling: true, vision: true },
  'openai/o4-mini*': { functionCalling: true, vision: true },
  'openai/gpt-3.5*': { functionCalling: true, vision: false },
  'gemini/*': { functionCalling: true, vision: true },
  'deepseek/*': { functionCalling: true, vision: false },
  'mistral/devstral*': { functionCalling: true, vision: false },
  'litellm_proxy/*': { functionCalling: true, vision: true },
  'ollama/*': { functionCalling: false, vision: false },
};

/** Models that authenticate without an API key (contract §1.1: bedrock/ and lemonade/). */
const KEYLESS_MODEL_PREFIXES = ['bedrock/', 'lemonade/'];

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
}

export function capabilitiesOf(model: string, table: Record<string, ModelCapabilities>): ModelCapabilities | undefined {
  for (const [pattern, caps] of Object.entries(table)) if (globToRegExp(pattern).test(model)) return caps;
  return undefined;
}

export interface AcquireSessionInput {
  conversationId: string;
  userId: string;
  /** The whole settings at run time (the workflow passes them as given); the V1 check reads every field. */
  settings: Pick<UserSettings, 'agent' | 'llmModel' | 'llmApiKey' | 'llmBaseUrl' | 'sandbox'> & Partial<UserSettings>;
  /**
   * A resume: the protocol of the conversation's own sandbox (its settings are checked for that server, not for the
   * worker's image now). A start leaves it out: the worker's image decides.
   */
  protocol?: NestedProtocol;
}

/** The most a conversation's settings may ask of a sandbox; operators set them (NESTOR_MAX_*). */
export interface SandboxMaxima {
  cpus: number;
  memoryMb: number;
  pidsLimit: number;
}

/** The resolved LLM configuration. Carries no key: the key stays in the settings. */
export interface SessionLease {
  conversationId: string;
  userId: string;
  agent: string;
  llmModel: string;
  llmBaseUrl?: string;
  capabilities: ModelCapabilities;
}

/**
 * What the sandbox's server cannot take: environment that configures the server itself (any image), and settings the
 * current agent server has no counterpart for (a V1 image). Throws InvalidSettings naming the field.
 */
function checkForServer(input: AcquireSessionInput, image?: Pick<ImageManifest, 'kind'>): void {
  const { settings } = input;
  const sandbox = settings.sandbox;
  const reserved = reservedEnvName(sandbox?.env);
  if (reserved) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `settings.sandbox.env.${reserved}: configures the sandbox's server itself (nestor sets its keys, paths and routes); choose another name`,
      false,
      { field: `settings.sandbox.env.${reserved}` },
    );
  }
  if ((input.protocol ?? (image && protocolOfKind(image.kind))) === 'v1') {
    const refused = refusedForV1(settings as UserSettings);
    if (refused)
      throw new NestorError(
        ErrorType.InvalidSettings,
        `${refused.field}: not supported by the current OpenHands agent server: ${refused.why}`,
        false,
        { field: refused.field },
      );
  }
}

/** Validate the agent/model pair and the key; throws InvalidSettings naming the field. */
export function resolveSession(
  input: AcquireSessionInput,
  table: Record<string, ModelCapabilities>,
  maxima: SandboxMaxima = DEFAULT_SANDBOX_MAXIMA,
  /** The runtime image's needs (its manifest): a memory request below its floor cannot run a conversation. */
  image?: Pick<ImageManifest, 'kind' | 'memoryFloorMb'>,
): SessionLease {
  const { agent, llmModel, llmApiKey, llmBaseUrl, sandbox } = input.settings;
  checkForServer(input, image);
  if (image && sandbox?.memoryMb !== undefined && sandbox.memoryMb < image.memoryFloorMb) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `settings.sandbox.memoryMb: ${sandbox.memoryMb} is below the ${image.memoryFloorMb} MB the ${image.kind} runtime image needs for a live conversation`,
      false,
      { field: 'settings.sandbox.memoryMb', floorMb: image.memoryFloorMb },
    );
  }
  for (const key of ['cpus', 'memoryMb', 'pidsLimit'] as const) {
    const asked = sandbox?.[key];
    if (asked !== undefined && asked > maxima[key]) {
      throw new NestorError(
        ErrorType.InvalidSettings,
        `settings.sandbox.${key}: ${asked} is above the operator's maximum of ${maxima[key]}`,
        false,
        { field: `settings.sandbox.${key}` },
      );
    }
  }
  const known = AGENT_REGISTRY[agent];
  if (!known) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `settings.agent: unknown agent '${agent}'; expected one of ${Object.keys(AGENT_REGISTRY).join(', ')}`,
      false,
      { field: 'settings.agent' },
    );
  }
  if (!llmModel?.trim()) {
    throw new NestorError(ErrorType.InvalidSettings, 'settings.llmModel: an LLM model is required', false, {
      field: 'settings.llmModel',
    });
  }
  if (!llmApiKey?.trim() && !KEYLESS_MODEL_PREFIXES.some((p) => llmModel.startsWith(p))) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `settings.llmApiKey: an LLM API key is required for model '${llmModel}'`,
      false,
      { field: 'settings.llmApiKey' },
    );
  }
  const caps = capabilitiesOf(llmModel, table);
  // Only what the table knows a model lacks is refused (see AGENT_REGISTRY).
  const missing = known.needs.filter((need) => caps?.[need] === false);
  if (missing.length > 0) {
    throw new NestorError(
      ErrorType.InvalidSettings,
      `settings.llmModel: agent ${agent} needs ${known.needs.join(' and ')}; model '${llmModel}' lacks ${missing.join(' and ')} (model capability table, NESTOR_MODEL_CAPABILITIES)`,
      false,
      { field: 'settings.llmModel', agent, missing },
    );
  }
  return {
    conversationId: input.conversationId,
    userId: input.userId,
    agent,
    llmModel,
    llmBaseUrl,
    capabilities: caps ?? {},
  };
}
