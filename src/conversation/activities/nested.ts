// configureNestedServer / createConversation / waitForReady / stopConversation: the nested agent server's side of a
// conversation's life, in the contract's order (§4.1); delivering messages is delivery.ts.
import type { InitSessionRequest, NestedClient } from '../../nested/client';
import { cancellationSignal, heartbeat, sleep } from '../../shared/activity-context';
import { createDeliveryActivities } from './delivery';
import { client, type NestedDeps, type NestedTarget } from './nested-target';
import { createV1, deleteV1, waitReadyV1 } from './agent-server';
import { prepareRepositoryV1, type PrepareRepositoryInput } from './repository';
import { ErrorType, NestorError } from '../../errors';
import type { CustomSecret, GitProvider, ProviderTokens, UserSettings } from '../../shared/schemas';

export type { NestedDeps, NestedTarget } from './nested-target';

export type { SendEventInput, SentEvent } from './delivery';

/** OpenHands' Settings on the wire (snake_case); the sandbox block is nestor's own and stays out. */
export function nestedSettingsBody(s: UserSettings): Record<string, unknown> {
  const body: Record<string, unknown> = {
    agent: s.agent,
    llm_model: s.llmModel,
    llm_api_key: s.llmApiKey ?? null,
    llm_base_url: s.llmBaseUrl ?? null,
    language: s.language,
    max_iterations: s.maxIterations,
    confirmation_mode: s.confirmationMode,
    security_analyzer: s.securityAnalyzer,
    enable_default_condenser: s.enableDefaultCondenser,
    condenser_max_size: s.condenserMaxSize,
    max_budget_per_task: s.maxBudgetPerTask,
    search_api_key: s.searchApiKey,
    git_user_name: s.gitUserName,
    git_user_email: s.gitUserEmail,
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

export interface ConfigureInput extends NestedTarget {
  settings: UserSettings;
  providerTokens?: ProviderTokens;
  customSecrets?: CustomSecret[];
  /** OpenHands' experiment config: strings to strings (the server answers 422 otherwise). */
  experimentConfig?: Record<string, string>;
  /** The repository the conversation works on, and its provider: a start that needs a rejected token fails. */
  repository?: string;
  gitProvider?: GitProvider;
}

export interface ConfigureReport {
  secretsCreated: number;
  /** Secrets that existed (a resume) and were replaced, so a changed value reaches the server. */
  secretsReplaced: number;
  /** What the conversation runs without, for its status (a rejected git token, no experiment config route). */
  warnings: string[];
}

export interface CreateConversationInput extends NestedTarget {
  /** V1 only: the agent server takes settings and secrets with the create (V0 took them in configureNestedServer). */
  settings?: UserSettings;
  customSecrets?: CustomSecret[];
  providerTokens?: ProviderTokens;
  initialMessage?: string;
  replayJson?: string;
  repository?: string;
  branch?: string;
  gitProvider?: GitProvider;
  conversationInstructions?: string;
  mcpConfig?: Record<string, unknown>;
}

export interface WaitForReadyInput extends NestedTarget {
  /** Give up (NotReady) after this long. */
  readyTimeoutMs: number;
}

export interface ReadyReport {
  polls: number;
  waitedMs: number;
  status: string;
  /** ID of the newest event at readiness (-1 for none): the cursor later deliveries look past. */
  lastEventId: number;
}

export const POLL_FIRST_MS = 25;
export const POLL_MAX_MS = 500;

/** Store settings, git providers, custom secrets and experiment config on the nested server (configureNestedServer). */
async function configure(c: NestedClient, input: ConfigureInput): Promise<ConfigureReport> {
  const warnings: string[] = [];
  await c.storeSettings(nestedSettingsBody(input.settings));
  const tokens = Object.entries(input.providerTokens ?? {}).filter(([, t]) => t?.token);
  if (tokens.length > 0) {
    try {
      await c.addGitProviders(
        Object.fromEntries(
          tokens.map(([p, t]) => [p, { token: t!.token, user_id: t!.userId ?? null, host: t!.host ?? null }]),
        ),
      );
    } catch (err) {
      if (!(err instanceof NestorError && err.type === ErrorType.GitProviderRejected)) throw err;
      const needed = input.repository ? (input.gitProvider ?? 'github') : undefined;
      if (needed && tokens.some(([p]) => p === needed)) {
        throw new NestorError(
          err.type,
          `${err.message}; repository ${input.repository} needs the ${needed} token`,
          false,
          err.details,
        );
      }
      warnings.push(`git providers: ${err.message}; the conversation runs without them`);
    }
  }
  let secretsCreated = 0;
  let secretsReplaced = 0;
  for (const s of input.customSecrets ?? []) {
    if ((await c.putSecret(s)) === 'created') secretsCreated++;
    else secretsReplaced++;
  }
  if ((await c.setExperimentConfig(input.conversationId, input.experimentConfig ?? {})) === 'unsupported') {
    warnings.push('experiment config: the nested server has no exp-config route (OpenHands 1.5.0+); none set');
  }
  return { secretsCreated, secretsReplaced, warnings };
}

/**
 * Ready = the events endpoint answers 2xx and the conversation reports RUNNING (the contract's §5.3 criterion
 * plus the status OpenHands did not check). Exhausting the bound throws NotReady; it never returns silently.
 */
async function waitReadyV0(input: WaitForReadyInput, deps: NestedDeps): Promise<ReadyReport> {
  const c = client(input, deps, cancellationSignal());
  const started = Date.now();
  let delay = POLL_FIRST_MS;
  let polls = 0;
  let last: string;
  for (;;) {
    polls++;
    try {
      // Status first, then the events endpoint (it must answer 2xx too), whose newest ID becomes the cursor.
      const info = await c.getConversation(input.conversationId);
      const status = info?.status ?? 'unknown';
      if (status === 'RUNNING') {
        const newest = await c.getEvents(input.conversationId, { reverse: true, limit: 1 });
        return { polls, waitedMs: Date.now() - started, status, lastEventId: newest.events[0]?.id ?? -1 };
      }
      last = `conversation status ${status}`;
    } catch (err) {
      if (err instanceof NestorError && !err.retryable) throw err; // 401 or 400: waiting will not help
      last = (err as Error).message;
    }
    heartbeat({ polls, last });
    const elapsed = Date.now() - started;
    if (elapsed >= input.readyTimeoutMs) {
      throw new NestorError(
        ErrorType.NotReady,
        `not ready after ${elapsed} ms and ${polls} polls (last: ${last})`,
        false,
        { polls, last },
      );
    }
    await sleep(Math.min(delay, input.readyTimeoutMs - elapsed));
    delay = Math.min(POLL_MAX_MS, Math.ceil(delay * 1.5));
  }
}

export function createNestedActivities(deps: NestedDeps) {
  return {
    /**
     * Settings → git providers → custom secrets → experiment config. Each call overwrites: settings are sent whole (the
     * server replaces what it stored), secrets are replaced. A git token the server rejects fails the start only when
     * the conversation's repository needs that provider; otherwise it runs without it, with a warning.
     */
    async configureNestedServer(input: ConfigureInput): Promise<ConfigureReport> {
      // V1: settings and secrets travel with the create (createConversation); nothing to store before it.
      if (input.protocol === 'v1') return { secretsCreated: 0, secretsReplaced: 0, warnings: [] };
      return configure(client(input, deps, cancellationSignal()), input);
    },

    /**
     * The current agent server (V1) only: clone the start's repository into the workspace and check out its branch,
     * idempotently (the V0 server clones it itself when its conversation is created).
     */
    async prepareRepository(input: PrepareRepositoryInput): ReturnType<typeof prepareRepositoryV1> {
      if (input.protocol !== 'v1')
        throw new NestorError(ErrorType.InvalidInput, 'prepareRepository: only the agent server (V1) needs it', false);
      return prepareRepositoryV1(input, deps);
    },

    /** POST /api/conversations with our ID; the nested server treats a repeat as "reuse". */
    async createConversation(
      input: CreateConversationInput,
    ): Promise<{ conversationStatus: string | null; nestedConversationId?: string; warnings?: string[] }> {
      if (input.protocol === 'v1') {
        if (!input.settings)
          throw new NestorError(ErrorType.InvalidInput, 'createConversation (V1): settings are required', false);
        return createV1({ ...input, settings: input.settings }, deps);
      }
      if (input.initialMessage !== undefined && input.replayJson !== undefined) {
        throw new NestorError(ErrorType.InvalidInput, 'replayJson cannot be combined with initialMessage', false);
      }
      const body: InitSessionRequest = {
        conversation_id: input.conversationId,
        initial_user_msg: input.initialMessage ?? null,
        image_urls: [],
        replay_json: input.replayJson ?? null,
        repository: input.repository ?? null,
        selected_branch: input.branch ?? null,
        git_provider: input.gitProvider ?? null,
        conversation_instructions: input.conversationInstructions ?? null,
      };
      if (input.mcpConfig) body.mcp_config = input.mcpConfig;
      const res = await client(input, deps, cancellationSignal()).createConversation(body);
      if (res.status !== 'ok')
        throw new NestorError(
          ErrorType.NestedBadRequest,
          `POST /api/conversations answered status '${res.status}': ${res.message ?? ''}`,
          false,
        );
      return { conversationStatus: res.conversation_status ?? null };
    },

    async waitForReady(input: WaitForReadyInput): Promise<ReadyReport> {
      return input.protocol === 'v1' ? waitReadyV1(input, deps) : waitReadyV0(input, deps);
    },

    ...createDeliveryActivities(deps),

    /**
     * Ask the nested server to stop the agent loop. A server that is already gone counts as stopped. The answer's
     * body is not read: the real server's still says `RUNNING` (the status from before the stop).
     */
    async stopConversation(input: NestedTarget): Promise<{ stopped: boolean }> {
      // V1: the conversation is deleted on the server (which stops its agent): close leaves nothing there.
      if (input.protocol === 'v1') return deleteV1(input, deps);
      try {
        await client(input, deps, cancellationSignal()).stopConversation(input.conversationId);
        return { stopped: true };
      } catch (err) {
        if (
          err instanceof NestorError &&
          (err.type === ErrorType.NestedUnavailable || err.type === ErrorType.NestedNotFound)
        )
          return { stopped: false };
        throw err;
      }
    },
  };
}
