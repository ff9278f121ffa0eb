// How a command reaches the service: a ConversationClient on the configured Temporal, closed after the command.
import { ConversationClient } from '../conversation/client';
import { ConfigError } from '../errors';
import { loadConfig, type NestorConfig } from '../config';
import { connectFailure, temporalConnectionOptions } from '../temporal-connection';
import { shutdownTracing } from '../observability/tracing';
import { EXIT } from './output';

/** Run fn with a connected client and close the connection after, so the command exits. */
export async function withClient<T>(fn: (client: ConversationClient, config: NestorConfig) => Promise<T>): Promise<T> {
  // One read of the configuration per command: the client and whatever else the command needs from it.
  const config = loadConfig();
  const client = await connect(config);
  try {
    return await fn(client, config);
  } finally {
    await client.closeConnection();
    // Spans are exported in batches: send what this command made before it exits.
    await shutdownTracing();
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
    const e = new Error(connectFailure(err, temporalConnectionOptions(c)));
    (e as Error & { exitCode: number }).exitCode = EXIT.unreachable;
    throw e;
  }
}
