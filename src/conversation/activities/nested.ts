// configureNestedServer / createConversation / waitForReady / sendEvent / stopConversation:
// the nested agent server's side of a conversation, in the contract's order (§4.1).
import type { Dispatcher } from 'undici';
import {
  DEFAULT_NESTED_TIMEOUT_MS,
  NestedClient,
  isUserMessage,
  type InitSessionRequest,
  type NestedEvent,
} from '../../nested/client';
import { attempt, cancellationSignal, heartbeat, sleep } from '../../shared/activity-context';
import { ErrorType, NestorError } from '../../errors';
import type { CustomSecret, GitProvider, ProviderTokens, UserSettings } from '../../shared/schemas';

export interface NestedTarget {
  url: string;
  sessionApiKey: string;
  conversationId: string;
}

export interface NestedDeps {
  dispatcher?: Dispatcher;
  /** Per-request timeout. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * How long a delivery that finds no trace of an earlier post of its message waits for that post to land before
   * posting. @default the request timeout (DEFAULT_NESTED_TIMEOUT_MS)
   */
  settleMs?: number;
}

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

export interface SendEventInput extends NestedTarget {
  content: string;
  imageUrls?: string[];
  /**
   * Newest event ID the workflow knew before it first tried to deliver this message: an earlier post of it, if any,
   * is after this.
   */
  afterEventId: number;
  /**
   * The workflow scheduled a delivery of this message before (an earlier activity, before a sandbox recovery or a
   * caller's retry): it may have been posted, so look for it before posting. Retries of one activity look anyway.
   */
  mayHavePosted?: boolean;
}

export interface SentEvent {
  eventId?: number;
  /** True when an earlier post of this message was found and it was not posted again. */
  recovered: boolean;
  /** Newest event ID this delivery saw: the workflow's next cursor, so later looks skip what the agent said since. */
  newestEventId?: number;
}

/** First poll after this; then ×1.5 up to POLL_MAX_MS. Short so readiness is noticed quickly. */
export const POLL_FIRST_MS = 25;
export const POLL_MAX_MS = 500;

function client(t: NestedTarget, deps: NestedDeps, signal?: AbortSignal): NestedClient {
  return new NestedClient({
    baseUrl: t.url,
    sessionApiKey: t.sessionApiKey,
    dispatcher: deps.dispatcher,
    timeoutMs: deps.requestTimeoutMs,
    signal,
  });
}

export function createNestedActivities(deps: NestedDeps) {
  return {
    /**
     * Settings → git providers → custom secrets → experiment config. Each call overwrites: settings are sent whole (the
     * server replaces what it stored), secrets are replaced. A git token the server rejects fails the start only when
     * the conversation's repository needs that provider; otherwise it runs without it, with a warning.
     */
    async configureNestedServer(input: ConfigureInput): Promise<ConfigureReport> {
      const c = client(input, deps, cancellationSignal());
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
    },

    /** POST /api/conversations with our ID; the nested server treats a repeat as "reuse". */
    async createConversation(input: CreateConversationInput): Promise<{ conversationStatus: string | null }> {
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

    /**
     * Ready = the events endpoint answers 2xx and the conversation reports RUNNING (the contract's §5.3 criterion
     * plus the status OpenHands did not check). Exhausting the bound throws NotReady; it never returns silently.
     */
    async waitForReady(input: WaitForReadyInput): Promise<ReadyReport> {
      const c = client(input, deps, cancellationSignal());
      const started = Date.now();
      let delay = POLL_FIRST_MS;
      let polls = 0;
      let last = 'no answer yet';
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
    },

    /**
     * What the conversation itself has been doing, for the idle timer: how long ago its newest event was (the agent's
     * too, not only the user's messages) and the agent's latest state. OpenHands' event timestamps carry no zone: the
     * sandbox runs in UTC.
     */
    async conversationActivity(input: NestedTarget): Promise<{ lastEventAgoMs?: number; agentState?: string }> {
      const page = await client(input, deps, cancellationSignal()).getEvents(input.conversationId, {
        reverse: true,
        limit: 20,
      });
      const stamp = page.events[0]?.timestamp;
      const at = stamp ? Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(stamp) ? stamp : `${stamp}Z`) : NaN;
      const state = page.events.find((e) => e.observation === 'agent_state_changed')?.extras?.agent_state;
      return {
        lastEventAgoMs: Number.isFinite(at) ? Math.max(0, Date.now() - at) : undefined,
        agentState: typeof state === 'string' ? state : undefined,
      };
    },

    /**
     * The newest event ID, taken just before a message's first delivery: an earlier post of that message can only be
     * after it, and another writer's message before it is never taken for ours. Run as a local activity (no round trip
     * through the server).
     */
    async markDeliveryCursor(input: NestedTarget): Promise<{ newestEventId: number }> {
      return { newestEventId: await client(input, deps, cancellationSignal()).newestEventId(input.conversationId) };
    },

    /**
     * Post one user message, at most once, and report the event ID the nested server gave it. The nested server keeps
     * no ID of ours with an event, so a post whose outcome is unknown (an earlier attempt or delivery the workflow
     * knows of) is looked for before posting again: the first user message with the same content and images after
     * the cursor marked before its first delivery (markDeliveryCursor). Not found at once, it is given `settleMs` to land (a post slower than its caller) and looked
     * for again. What remains ambiguous is in the README (Messages: exactly once).
     */
    async sendEvent(input: SendEventInput): Promise<SentEvent> {
      const c = client(input, deps, cancellationSignal());
      const isMine = (e: NestedEvent) => isUserMessage(e, input.content, input.imageUrls);
      let before: number | undefined;
      if (input.mayHavePosted || attempt() > 1) {
        const look = async () => {
          const r = await c.findAfter(input.conversationId, input.afterEventId, isMine);
          before = r.newestId;
          return r.found;
        };
        const earlier =
          (await look()) ??
          (await sleep(deps.settleMs ?? deps.requestTimeoutMs ?? DEFAULT_NESTED_TIMEOUT_MS).then(look));
        if (earlier) return { eventId: earlier.id, recovered: true, newestEventId: before };
      }
      // Only what comes after the mark can be our post: another writer's identical message before it is not ours.
      before ??= input.afterEventId;
      try {
        await c.postEvent(input.conversationId, {
          action: 'message',
          args: { content: input.content, image_urls: input.imageUrls ?? [], file_urls: [], wait_for_response: false },
        });
      } catch (err) {
        // The real server answers a plain-text 500 when the conversation is not running there (e.g. its sandbox was
        // restarted): retrying the post cannot help, so say so at once and let the workflow bring it back (a resume).
        if (err instanceof NestorError && err.details.status === 500) {
          const status = await c.getConversation(input.conversationId).then(
            (i) => i?.status ?? 'unknown',
            () => undefined,
          );
          if (status !== undefined && status !== 'RUNNING') {
            throw new NestorError(
              ErrorType.NestedUnavailable,
              `${err.message}: the nested conversation is ${status}, not running`,
              false,
              err.details,
            );
          }
        }
        throw err;
      }
      const after = await c.findAfter(input.conversationId, before, isMine);
      return { eventId: after.found?.id, recovered: false, newestEventId: after.newestId };
    },

    /**
     * Ask the nested server to stop the agent loop. A server that is already gone counts as stopped. The answer's
     * body is not read: the real server's still says `RUNNING` (the status from before the stop).
     */
    async stopConversation(input: NestedTarget): Promise<{ stopped: boolean }> {
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
