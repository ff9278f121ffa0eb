// The agent server's deferred init, as a claimed V1 pool member needs it (docker-pool.ts): the dormant server takes
// its conversation's keys by POST /api/init, authorized by the member's own init key. Its home is here, apart from the
// pool's locks and names, because every restart of the sandbox needs it again (the server does not keep an init).
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { AgentServerClient } from '../nested/agent-server';
import { ErrorType, NestorError } from '../errors';
import { envOf } from './docker-parts';
import { SECRET_KEY_ENV, SESSION_KEY_ENV } from './container-spec';

/** A conversation's keys on a V1 server: the session key its callers present, the key its stored secrets are under. */
export interface ConversationKeys {
  sessionApiKey: string;
  secretKey: string;
}

/** Fresh keys for a claim, made when it is taken. */
export function newConversationKeys(): ConversationKeys {
  return { sessionApiKey: randomBytes(32).toString('base64url'), secretKey: randomBytes(32).toString('base64url') };
}

/** The keys as the environment of the claim's lock container, their durable home (docker-pool.ts). */
export const keysAsEnv = (k: ConversationKeys) => [
  `${SESSION_KEY_ENV.v1}=${k.sessionApiKey}`,
  `${SECRET_KEY_ENV}=${k.secretKey}`,
];

/** The keys kept in a lock's environment, if both are there. */
export function keysOfLock(lock: Docker.ContainerInspectInfo | undefined): ConversationKeys | undefined {
  const sessionApiKey = lock && envOf(lock, SESSION_KEY_ENV.v1);
  const secretKey = lock && envOf(lock, SECRET_KEY_ENV);
  return sessionApiKey && secretKey ? { sessionApiKey, secretKey } : undefined;
}

/** Poll interval while another attempt's init is under way, and how many polls before giving up (30 s). */
const POLL_MS = 100;
const POLLS = 300;

/**
 * Initialize the server at `url` with the conversation's keys, unless it is already: dormant → POST /api/init;
 * initializing (a racing attempt) → wait; ready → done. A failed init (the server rolls back to dormant with its
 * error) is a retryable RuntimeStartFailed.
 */
export async function initializeServer(url: string, initKey: string, keys: ConversationKeys): Promise<void> {
  const client = new AgentServerClient({ baseUrl: url, sessionApiKey: keys.sessionApiKey });
  for (let poll = 0; poll < POLLS; poll++) {
    const { state, error } = await client.initState();
    if (state === 'ready') return;
    if (state === 'dormant' && poll > 0 && error)
      throw new NestorError(ErrorType.RuntimeStartFailed, `the agent server's init failed: ${error}`, true);
    if (state === 'dormant' && (await client.initialize(initKey, keys)) === 'done') return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new NestorError(
    ErrorType.RuntimeStartFailed,
    `the agent server stayed initializing for ${(POLL_MS * POLLS) / 1000} s`,
    true,
  );
}
