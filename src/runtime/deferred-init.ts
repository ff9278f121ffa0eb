// The agent server's deferred init, as a claimed V1 pool member needs it (docker-pool.ts): the dormant server takes
// its conversation's keys by POST /api/init, authorized by the member's own init key. Its home is here, apart from the
// pool's locks and names, because every restart of the sandbox needs it again (the server does not keep an init).
import { AgentServerClient } from '../nested/agent-server';
import { ErrorType, NestorError } from '../errors';

/** Poll interval while another attempt's init is under way, and how many polls before giving up (30 s). */
const POLL_MS = 100;
const POLLS = 300;

/**
 * Initialize the server at `url` with the conversation's keys, unless it is already: dormant → POST /api/init;
 * initializing (a racing attempt) → wait; ready → done. A failed init (the server rolls back to dormant with its
 * error) is a retryable RuntimeStartFailed.
 */
export async function initializeServer(
  url: string,
  initKey: string,
  keys: { sessionApiKey: string; secretKey: string },
): Promise<void> {
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
