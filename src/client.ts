// ConversationClient: what backend services use to start, drive and inspect conversations.
import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  ConversationIdKey,
  ConversationStatusKey,
  DEFAULT_TASK_QUEUE,
  UserIdKey,
  conversationWorkflowId,
} from './shared/constants';
import {
  CloseInputSchema,
  ConversationIdSchema,
  SendMessageInputSchema,
  StartConversationInputSchema,
  parseInput,
  type AgentLoopInfo,
  type MessageAck,
  type SendMessageInput,
  type StartConversationRequest,
} from './shared/schemas';
import { closeUpdate, sendMessageUpdate, statusQuery, waitReadyUpdate } from './workflows/definitions';
import type { StartConversation } from './workflows/start-conversation';

export interface ConversationClientOptions {
  client: Client;
  /** @default 'conversations' */
  taskQueue?: string;
}

/** A failure the workflow reported, unwrapped to its stable type name and message. */
export class ConversationError extends Error {
  constructor(readonly type: string, message: string, readonly details?: unknown) {
    super(message);
    this.name = type;
  }
}

/** Unwrap update/workflow failures to the ApplicationFailure underneath, so callers see `type` and `message`. */
function unwrap(err: unknown): never {
  let e: unknown = err;
  if (e instanceof WorkflowUpdateFailedError || e instanceof WorkflowFailedError) e = e.cause;
  if (e instanceof ApplicationFailure) throw new ConversationError(e.type ?? 'Error', e.message, e.details?.[0]);
  throw err;
}

export class ConversationClient {
  readonly client: Client;
  readonly taskQueue: string;

  constructor(opts: ConversationClientOptions) {
    this.client = opts.client;
    this.taskQueue = opts.taskQueue ?? DEFAULT_TASK_QUEUE;
  }

  /** Connect to a Temporal server (default 127.0.0.1:7233). */
  static async connect(o: { address?: string; namespace?: string; taskQueue?: string } = {}): Promise<ConversationClient> {
    const connection = await Connection.connect({ address: o.address ?? '127.0.0.1:7233' });
    return new ConversationClient({ client: new Client({ connection, namespace: o.namespace ?? 'default' }), taskQueue: o.taskQueue });
  }

  /**
   * Start the conversation, or attach to the one already starting or running under the same ID, and wait until it is
   * RUNNING. Concurrent callers converge on one run and all get the same answer. Invalid input starts nothing.
   */
  async start(request: StartConversationRequest): Promise<AgentLoopInfo> {
    const input = parseInput(StartConversationInputSchema, request, 'start input');
    const startOp = new WithStartWorkflowOperation<typeof StartConversation>('StartConversation', {
      workflowId: conversationWorkflowId(input.conversationId),
      taskQueue: this.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: ConversationIdKey, value: input.conversationId },
        { key: UserIdKey, value: input.userId },
        { key: ConversationStatusKey, value: 'STARTING' },
      ],
      // Never secrets: title, repository, agent, model.
      memo: {
        title: input.title ?? null,
        repository: input.repository ?? null,
        agent: input.settings.agent,
        model: input.settings.llmModel,
      },
      staticSummary: `conversation ${input.conversationId} for ${input.userId}`,
      staticDetails: [
        `agent: ${input.settings.agent}`,
        `model: ${input.settings.llmModel}`,
        input.repository ? `repository: ${input.repository}${input.branch ? `@${input.branch}` : ''}` : undefined,
      ]
        .filter(Boolean)
        .join('\n'),
    });
    try {
      return await this.client.workflow.executeUpdateWithStart(waitReadyUpdate, { startWorkflowOperation: startOp });
    } catch (err) {
      unwrap(err);
    }
  }

  /** Send one message; resolves once the nested server accepted it. The message ID (a UUID when omitted) deduplicates. */
  async sendMessage(conversationId: string, message: string | SendMessageInput): Promise<MessageAck> {
    const msg = parseInput(SendMessageInputSchema, typeof message === 'string' ? { content: message } : message, 'message');
    const messageId = msg.messageId ?? randomUUID();
    try {
      return await this.handle(conversationId).executeUpdate(sendMessageUpdate, { args: [{ ...msg, messageId }], updateId: messageId });
    } catch (err) {
      unwrap(err);
    }
  }

  /** Close: stop the nested conversation, remove the runtime. Resolves with the final status. */
  async close(conversationId: string, reason?: string): Promise<AgentLoopInfo> {
    const input = parseInput(CloseInputSchema, { reason }, 'close input');
    try {
      return await this.handle(conversationId).executeUpdate(closeUpdate, { args: [input] });
    } catch (err) {
      unwrap(err);
    }
  }

  /** Current status; never holds the session API key. */
  async status(conversationId: string): Promise<AgentLoopInfo> {
    const info = await this.handle(conversationId).query(statusQuery);
    return { ...info, sessionApiKey: undefined };
  }

  /** Close the connection this client was made with. */
  async closeConnection(): Promise<void> {
    await this.client.connection.close();
  }

  /** The workflow handle for a conversation (latest run). */
  handle(conversationId: string): WorkflowHandle<typeof StartConversation> {
    parseInput(ConversationIdSchema, conversationId, 'conversation ID');
    return this.client.workflow.getHandle(conversationWorkflowId(conversationId));
  }
}
