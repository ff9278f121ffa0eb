// The end-to-end set-up the feature tests share: a real dev server, a real worker on Docker and the emulator image,
// and a local OAuth token endpoint (GitHub refreshes succeed, GitLab's fail). Each file starts its own.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ConversationClient } from '../../src/conversation/client';
import { NestedClient } from '../../src/nested/client';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { removeContainers } from './docker';
import { createTestEnv, startWorker, uniqueId, type TemporalEnv } from './temporal';

export interface E2e<Env extends TemporalEnv = TestWorkflowEnvironment> {
  env: Env;
  client: ConversationClient;
  taskQueue: string;
  /** Every token refresh the OAuth endpoint saw: `<path> <refresh token>`. */
  refreshes: string[];
  /** Every conversation ID `input` made: their containers are removed after the file. */
  made: Set<string>;
  stop(): Promise<void>;
}

/** A start input of the e2e user, on the emulator, with one custom secret; the ID is remembered for the clean-up. */
export function e2eInput(made: Set<string>) {
  return (id: string, extra: Partial<StartConversationRequest> = {}): StartConversationRequest => {
    made.add(id);
    return {
      conversationId: id,
      userId: 'e2e-user',
      settings: {
        agent: 'CodeActAgent',
        llmModel: 'anthropic/claude-sonnet-4-5',
        llmApiKey: 'sk-e2e-llm-key',
        sandbox: { env: { CONVERSATION_START_DELAY_MS: '100' } },
      },
      customSecrets: [{ name: 'MY_SECRET', value: 'custom-secret-value' }],
      timeouts: { aliveTimeoutMs: 30_000, readyTimeoutMs: 30_000 },
      ...extra,
    };
  };
}

function oauthServer(refreshes: string[]): Server {
  return createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    refreshes.push(`${req.url} ${new URLSearchParams(body).get('refresh_token')}`);
    if (req.url === '/gitlab') return res.writeHead(500).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ access_token: 'ghp-refreshed', refresh_token: 'r2', expires_in: 28_800 }));
  });
}

/**
 * Start the dev server (or the given Temporal), the OAuth endpoint and a worker; `stop` undoes all of it and removes
 * `made`'s containers.
 */
export async function startE2e(
  made: Set<string>,
  o?: { maxConversationsPerUser?: number; sandboxHosts?: boolean },
): Promise<E2e>;
export async function startE2e<Env extends TemporalEnv>(
  made: Set<string>,
  o: { maxConversationsPerUser?: number; env: () => Promise<Env> },
): Promise<E2e<Env>>;
export async function startE2e(
  made: Set<string>,
  o: { maxConversationsPerUser?: number; sandboxHosts?: boolean; env?: () => Promise<TemporalEnv> } = {},
): Promise<E2e<TemporalEnv>> {
  const env = await (o.env ?? createTestEnv)();
  const refreshes: string[] = [];
  const oauth = oauthServer(refreshes);
  oauth.listen(0, '127.0.0.1');
  await once(oauth, 'listening');
  const oauthBase = `http://127.0.0.1:${(oauth.address() as AddressInfo).port}`;
  const taskQueue = uniqueId('e2e');
  const { client, stop } = await startWorker(env, taskQueue, {
    runtime: new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }),
    oauth: { github: { tokenUrl: `${oauthBase}/github`, clientId: 'id' }, gitlab: { tokenUrl: `${oauthBase}/gitlab` } },
    ...(o.maxConversationsPerUser !== undefined && { maxConversationsPerUser: o.maxConversationsPerUser }),
    // Sandboxes on registered sandbox hosts (their own workers), not on this worker's engine.
    ...(o.sandboxHosts && { sandboxHosts: true }),
  });
  return {
    env,
    client,
    taskQueue,
    refreshes,
    made,
    async stop() {
      await stop();
      await removeContainers(made);
      oauth.close();
      await env.teardown();
    },
  };
}

/** The user messages a conversation's nested server holds, read with its own key. */
export async function userMessages(info: { url?: string; sessionApiKey?: string }, id: string) {
  const nested = NestedClient.forConversation(info);
  return (await nested.allEvents(id)).filter((e) => e.source === 'user' && e.action === 'message');
}
