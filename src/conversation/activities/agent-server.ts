// The conversation's steps on the current agent server (V1): the same activities as for V0, by another protocol.
// V1 takes everything (LLM, secrets, first message) in one idempotent `POST /api/conversations` with nestor's own
// UUID, so "configure" has nothing left to store on a start; a resume finds the conversation again (200), gives it
// the secrets as they are now and continues a run a crash or a stop interrupted.
import { agentConversationId, isUserMessageV1, type AgentEvent } from '../../nested/agent-server';
import { agentSettingsOf, ignoredByV1 } from '../../nested/agent-server-settings';
import { mcpServersOf } from '../../nested/agent-server-mcp';
import { DEFAULT_NESTED_TIMEOUT_MS } from '../../nested/client';
import { attempt, cancellationSignal, heartbeat, sleep } from '../../shared/activity-context';
import { ErrorType, NestorError } from '../../errors';
import type { CustomSecret, ProviderTokens, UserSettings } from '../../shared/schemas';
import { agentServer, type NestedDeps, type NestedTarget } from './nested-target';
import type { SendEventInput, SentEvent } from './delivery';
import type { CreateConversationInput } from './nested';
import { V1_WORKING_DIR, repositoryDir } from './repository';

/** User messages: the V1 delivery cursor counts them (the server's event IDs are UUIDs, not a sequence). */
const USER_MESSAGES = { kind: 'MessageEvent', source: 'user' } as const;

/**
 * Custom secrets, and git tokens as the secrets OpenHands' app server gives its sandboxes (`<PROVIDER>_TOKEN`), as the
 * agent server's `StaticSecret`s: it keeps them encrypted (OH_SECRET_KEY) and gives them to the agent's commands as
 * environment variables, never in a URL or a command line.
 */
export function secretsOf(customSecrets: CustomSecret[] | undefined, tokens: ProviderTokens | undefined): Secrets {
  const out: Secrets = {};
  for (const [provider, t] of Object.entries(tokens ?? {}))
    if (t?.token) out[`${provider.toUpperCase()}_TOKEN`] = { kind: 'StaticSecret', value: t.token };
  for (const s of customSecrets ?? [])
    out[s.name] = { kind: 'StaticSecret', value: s.value, ...(s.description && { description: s.description }) };
  return out;
}
type Secrets = Record<string, { kind: 'StaticSecret'; value: string; description?: string }>;

/** createConversation's input, whose settings V1 needs (it takes them with the create). */
export type V1CreateInput = CreateConversationInput & { settings: UserSettings };

/** Start-input fields nestor does not carry to the agent server yet: refused rather than silently dropped. */
const NOT_YET_ON_V1 = {
  replayJson: 'the current OpenHands agent server cannot replay a V0 trajectory',
} as const;

export interface V1Created {
  conversationStatus: string | null;
  /** The agent server's ID of the conversation (shown in status). */
  nestedConversationId: string;
  created: boolean;
  warnings: string[];
  /** True when a run the crash or stop interrupted was continued (`/run`). */
  continued?: boolean;
}

/** POST /api/conversations: 201 new, 200 existing (a resume or a retried create: nothing is sent twice). */
export async function createV1(input: V1CreateInput, deps: NestedDeps): Promise<V1Created> {
  for (const [field, why] of Object.entries(NOT_YET_ON_V1)) {
    if (input[field as keyof typeof NOT_YET_ON_V1] === undefined) continue;
    throw new NestorError(
      ErrorType.InvalidInput,
      `${field}: ${why}; start without it, or on the V0 server (NESTOR_RUNTIME=openhands-v0)`,
      false,
      { field },
    );
  }
  // Checked before any call: a malformed one is refused naming its field.
  const mcpServers = input.mcpConfig && mcpServersOf(input.mcpConfig);
  const c = agentServer(input, deps, cancellationSignal());
  const id = agentConversationId(input.conversationId);
  const secrets = secretsOf(input.customSecrets, input.providerTokens);
  const body: Record<string, unknown> = {
    conversation_id: id,
    // The repository's working tree when the start names one (prepareRepository cloned it), else the workspace.
    workspace: {
      kind: 'LocalWorkspace',
      working_dir: input.repository ? repositoryDir(input.repository) : V1_WORKING_DIR,
    },
    ...agentSettingsOf(input.settings, input.conversationInstructions, mcpServers),
    secrets,
    tags: {
      nestorconversation: input.conversationId
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .slice(0, 256),
    },
    // nestor keeps the title (memo); the server's own would cost an LLM call per conversation.
    autotitle: false,
    ...(input.initialMessage !== undefined && {
      initial_message: { role: 'user', content: [{ type: 'text', text: input.initialMessage }], run: true },
    }),
  };
  const { created, conversation } = await c.createConversation(body);
  const report: V1Created = {
    conversationStatus: conversation.execution_status ?? null,
    nestedConversationId: id,
    created,
    warnings: ignoredByV1(input.settings),
  };
  if (created) return report;
  // It existed: a resume (or a retry). Secrets as they are now (refreshed tokens) reach it; a run that a crash
  // (`error`) or a stop (`paused`) interrupted with a message not yet answered goes on.
  if (Object.keys(secrets).length) await c.updateSecrets(id, secrets);
  if (['error', 'paused'].includes(String(conversation.execution_status))) {
    const newest = await c.newestEvent(id, { kind: 'MessageEvent' });
    if (newest?.source === 'user') {
      await c.run(id);
      report.continued = true;
    }
  }
  return report;
}

/**
 * Ready: the server answers for the conversation with a live execution status (an answered create is ready; there is
 * no "starting" state). Exhausting the bound is NotReady. The cursor is the number of user messages so far.
 */
export async function waitReadyV1(
  input: NestedTarget & { readyTimeoutMs: number },
  deps: NestedDeps,
): Promise<{ polls: number; waitedMs: number; status: string; lastEventId: number }> {
  const c = agentServer(input, deps, cancellationSignal());
  const id = agentConversationId(input.conversationId);
  const started = Date.now();
  let delay = 25;
  for (let polls = 1; ; polls++) {
    let last: string;
    try {
      const conv = await c.getConversation(id);
      if (conv && conv.execution_status !== 'deleting') {
        const cursor = await c.countEvents(id, USER_MESSAGES);
        return { polls, waitedMs: Date.now() - started, status: conv.execution_status, lastEventId: cursor };
      }
      last = conv ? `execution status ${conv.execution_status}` : 'the server does not know the conversation';
    } catch (err) {
      if (err instanceof NestorError && !err.retryable) throw err;
      last = (err as Error).message;
    }
    heartbeat({ polls, last });
    const elapsed = Date.now() - started;
    if (elapsed >= input.readyTimeoutMs)
      throw new NestorError(
        ErrorType.NotReady,
        `not ready after ${elapsed} ms and ${polls} polls (last: ${last})`,
        false,
        {
          polls,
          last,
        },
      );
    await sleep(Math.min(delay, input.readyTimeoutMs - elapsed));
    delay = Math.min(500, Math.ceil(delay * 1.5));
  }
}

/** The cursor before a message's first delivery: how many user messages the conversation holds. */
export async function markCursorV1(input: NestedTarget, deps: NestedDeps): Promise<{ newestEventId: number }> {
  const c = agentServer(input, deps, cancellationSignal());
  return { newestEventId: await c.countEvents(agentConversationId(input.conversationId), USER_MESSAGES) };
}

/**
 * One user message, at most once. The server keeps no ID of ours with a message: a delivery that may have posted
 * before looks for it first among the user messages after the cursor (their count before its first delivery); not
 * found, it waits `settleMs` for a slow post to land and looks again. A 429 means saved but not running: `/run`,
 * never a second post; a found earlier post is `/run` too (a no-op when its run is going).
 */
export async function sendV1(input: SendEventInput, deps: NestedDeps): Promise<SentEvent> {
  const c = agentServer(input, deps, cancellationSignal());
  const id = agentConversationId(input.conversationId);
  const isMine = (e: AgentEvent) => isUserMessageV1(e, input.content, input.imageUrls);
  const look = () => c.findAfterSkipping(id, USER_MESSAGES, input.afterEventId, isMine);
  if (input.mayHavePosted || attempt() > 1) {
    const earlier =
      (await look()).found ??
      (await sleep(deps.settleMs ?? deps.requestTimeoutMs ?? DEFAULT_NESTED_TIMEOUT_MS).then(look)).found;
    if (earlier) {
      await c.run(id);
      return { recovered: true, nestedEventId: earlier.id, newestEventId: await c.countEvents(id, USER_MESSAGES) };
    }
  }
  if ((await c.postMessage(id, input.content, input.imageUrls)) === 'saved-not-running') await c.run(id);
  const after = await look();
  return { recovered: false, nestedEventId: after.found?.id, newestEventId: after.seen };
}

/** For the idle timer: the agent's execution status and how long ago its newest event was (sandbox clock: UTC). */
export async function activityV1(
  input: NestedTarget,
  deps: NestedDeps,
): Promise<{ lastEventAgoMs?: number; agentState?: string }> {
  const c = agentServer(input, deps, cancellationSignal());
  const id = agentConversationId(input.conversationId);
  const [conv, newest] = await Promise.all([c.getConversation(id), c.newestEvent(id)]);
  const stamp = newest?.timestamp;
  const at = stamp ? Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(stamp) ? stamp : `${stamp}Z`) : NaN;
  return {
    lastEventAgoMs: Number.isFinite(at) ? Math.max(0, Date.now() - at) : undefined,
    agentState: conv?.execution_status,
  };
}

/** Close: delete the conversation on the server (the agent stops; its sandbox goes next). Gone already is fine. */
export async function deleteV1(input: NestedTarget, deps: NestedDeps): Promise<{ stopped: boolean }> {
  try {
    return {
      stopped: await agentServer(input, deps, cancellationSignal()).deleteConversation(
        agentConversationId(input.conversationId),
      ),
    };
  } catch (err) {
    if (err instanceof NestorError && err.type === ErrorType.NestedUnavailable) return { stopped: false };
    throw err;
  }
}
