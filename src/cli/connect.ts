// How a command reaches the service: a ConversationClient on the configured Temporal, closed after the command.
import { ConversationClient } from '../conversation/client';
import { ConfigError } from '../errors';
import { loadConfig, temporalAddress, type NestorConfig } from '../config';
import { temporalConnectionOptions } from '../temporal-connection';
import { EXIT } from './output';

/** Run fn with a connected client and close the connection after, so the command exits. */
export async function withClient<T>(fn: (client: ConversationClient) => Promise<T>): Promise<T> {
  const client = await connect(loadConfig());
  try {
    return await fn(client);
  } finally {
    await client.closeConnection();
  }
}

async function connect(c: NestorConfig): Promise<ConversationClient> {
  try {
    return await ConversationClient.connect({
      ...temporalConnectionOptions(c),
      namespace: c.namespace,
      taskQueue: c.taskQueue,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = new Error(
      `cannot reach Temporal at ${temporalAddress(c)} (${(err as Error).message}); run 'npm start' or set TEMPORAL_ADDRESS`,
    );
    (e as Error & { exitCode: number }).exitCode = EXIT.unreachable;
    throw e;
  }
}
