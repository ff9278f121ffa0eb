// ConversationClient: what backend services use to start, drive and inspect conversations.
import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WithStartWorkflowOperation,
  type TLSConfig,
  type WorkflowHandle,
} from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { nestorDataConverter, resolveEncryptionKeys } from '../codec/keys';
import { loadConfig } from '../config';
import {
  ConversationIdKey,
  ConversationStatusKey,
  DEFAULT_TASK_QUEUE,
  UserIdKey,
  WORKFLOW_TYPES,
  conversationWorkflowId,
  CONVERSATION_STATUSES,
  type ConversationStatus,
} from '../shared/constants';
import { ConversationError, ErrorType, NestorError } from '../errors';
import { messagesSaid, type SaidMessage } from '../nested/said';
import { processTracing } from '../observability/tracing';
import { temporalConnectionOptions } from '../temporal-connection';
import { CONTINUE_AS_NEW_RETRIES, retryableUpdateFailure, unwrap, unwrapped } from './client-failures';
import {
  createResumeSchedule,
  deleteResumeSchedule,
  listResumeSchedules,
  type ResumeScheduleEntry,
  type ScheduleResumeOptions,
} from '../resume-schedules/schedules';
import {
  CloseInputSchema,
  ConversationIdSchema,
  PauseInputSchema,
  SendMessageInputSchema,
  StartConversationInputSchema,
  parseInput,
  type AgentLoopInfo,
  type MessageAck,
  type SendMessageInput,
  type StartConversationRequest,
} from '../shared/schemas';
import { closeUpdate, pauseUpdate, resumeUpdate, sendMessageUpdate, statusQuery, waitReadyUpdate } from './messages';
import type { StartConversation } from './workflow';

export { ConversationError };

export { ScheduleResumeSchema, type ScheduleResumeOptions } from '../resume-schedules/schedules';

/** One scheduled resume, as listed. */
export type ScheduledResume = ResumeScheduleEntry;

/** One conversation, as listed from visibility. */
export interface ConversationSummary {
  conversationId: string;
  userId: string;
  status: ConversationStatus | 'UNKNOWN';
  workflowStatus: string;
  startTime: Date;
  runId: string;
}

export interface ConversationClientOptions {
  client: Client;
  /** @default 'conversations' */
  taskQueue?: string;
}

export class ConversationClient {
  readonly client: Client;
  readonly taskQueue: string;

  constructor(opts: ConversationClientOptions) {
    this.client = opts.client;
    this.taskQueue = opts.taskQueue ?? DEFAULT_TASK_QUEUE;
  }

  /**
   * Connect to Temporal. What `o` leaves out comes from the environment, as for the worker and the CLI: the address,
   * TLS and API key (TEMPORAL_ADDRESS, default 127.0.0.1:7233; TEMPORAL_TLS_*, TEMPORAL_API_KEY), TEMPORAL_NAMESPACE and
   * NESTOR_TASK_QUEUE. Payloads are encrypted with the given data converter, else with the keys the environment
   * configures (NESTOR_ENCRYPTION_KEYS, or the development key): the worker must share them.
   */
  static async connect(
    o: {
      address?: string;
      namespace?: string;
      taskQueue?: string;
      dataConverter?: DataConverter;
      /** TLS and API key (temporal-connection.ts builds both from TEMPORAL_TLS_* and TEMPORAL_API_KEY). */
      tls?: TLSConfig;
      apiKey?: string;
    } = {},
  ): Promise<ConversationClient> {
    const config = loadConfig();
    // An address given in code brings its own TLS and key (or none); the environment's go with its address.
    const reach = o.address
      ? { address: o.address, tls: o.tls, apiKey: o.apiKey }
      : { ...temporalConnectionOptions(config), ...pick(o) };
    const dataConverter = o.dataConverter ?? nestorDataConverter(resolveEncryptionKeys(config).keys);
    const connection = await Connection.connect({
      address: reach.address,
      ...(reach.tls && { tls: reach.tls }),
      ...(reach.apiKey && { apiKey: reach.apiKey }),
    });
    // With OTEL_EXPORTER_OTLP_* set, each call starts a span the workflow's spans join (observability/tracing.ts).
    const tracing = processTracing('nestor-client');
    return new ConversationClient({
      client: new Client({
        connection,
        namespace: o.namespace ?? config.namespace,
        dataConverter,
        ...(tracing && { plugins: [tracing.plugin] }),
      }),
      taskQueue: o.taskQueue ?? config.taskQueue,
    });
  }

  /**
   * Start the conversation, or attach to the one already starting or running under the same ID, and wait until it is
   * RUNNING. Concurrent callers converge on one run and all get the same answer. Invalid input starts nothing.
   */
  async start(request: StartConversationRequest): Promise<AgentLoopInfo> {
    const input = parseInput(StartConversationInputSchema, request, 'start input');
    const startOp = new WithStartWorkflowOperation<typeof StartConversation>(WORKFLOW_TYPES.startConversation, {
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
    return unwrapped(
      this.client.workflow.executeUpdateWithStart(waitReadyUpdate, {
        args: [{ userId: input.userId }],
        startWorkflowOperation: startOp,
      }),
    );
  }

  /**
   * The running conversation's address and session key (what `start` returns), without a start input: waits until it
   * is RUNNING. For reading its nested server directly (e.g. `nestor events`); the key never appears in `status`.
   * `user` is who waits: a backend passes its user (another user's conversation is refused); omitted, the
   * conversation's own owner is read from its status, which is an operator's tool's privilege.
   */
  async connection(conversationId: string, user?: string): Promise<AgentLoopInfo> {
    // An operator's read: the owner comes from the conversation itself (waitReady requires the user who waits).
    const userId = user ?? (await this.status(conversationId)).userId;
    return unwrapped(this.handle(conversationId).executeUpdate(waitReadyUpdate, { args: [{ userId }] }));
  }

  /**
   * What the user and the agent said so far, oldest first, read from the conversation's sandbox (on the current agent
   * server or the V0 server alike). A paused conversation is resumed to read it, as `connection` does.
   */
  async messages(conversationId: string, user?: string): Promise<SaidMessage[]> {
    return messagesSaid(await this.connection(conversationId, user));
  }

  /** Send one message; resolves once the nested server accepted it. The message ID (a UUID when omitted) deduplicates. */
  async sendMessage(conversationId: string, message: string | SendMessageInput): Promise<MessageAck> {
    const msg = parseInput(
      SendMessageInputSchema,
      typeof message === 'string' ? { content: message } : message,
      'message',
    );
    const messageId = msg.messageId ?? randomUUID();
    // While the workflow hands over to a new run it turns messages away, and a server with too many updates in flight
    // admits none: the same message ID goes again (it deduplicates), to the new run or once others completed.
    for (let attempt = 1, delay = 20; ; attempt++, delay = Math.min(500, delay * 1.5)) {
      try {
        return await this.handle(conversationId).executeUpdate(sendMessageUpdate, {
          args: [{ ...msg, messageId }],
          updateId: messageId,
        });
      } catch (err) {
        if (!retryableUpdateFailure(err) || attempt >= CONTINUE_AS_NEW_RETRIES) unwrap(err);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Close: stop the nested conversation, remove the runtime. Resolves with the final status. */
  async close(conversationId: string, reason?: string): Promise<AgentLoopInfo> {
    const input = parseInput(CloseInputSchema, { reason }, 'close input');
    return unwrapped(this.handle(conversationId).executeUpdate(closeUpdate, { args: [input] }));
  }

  /** Pause: stop the runtime, keep it and its file store. Resolves once PAUSED. */
  async pause(conversationId: string, reason?: string): Promise<AgentLoopInfo> {
    const input = parseInput(PauseInputSchema, { reason }, 'pause input');
    return unwrapped(this.handle(conversationId).executeUpdate(pauseUpdate, { args: [input] }));
  }

  /** Resume a paused conversation. Resolves once RUNNING. */
  async resume(conversationId: string): Promise<AgentLoopInfo> {
    return unwrapped(this.handle(conversationId).executeUpdate(resumeUpdate));
  }

  /** Conversations by user and/or status, from the search attributes (eventually consistent). */
  async list(filter: { userId?: string; status?: ConversationStatus } = {}): Promise<ConversationSummary[]> {
    const clauses = [`WorkflowType = '${WORKFLOW_TYPES.startConversation}'`, `ExecutionStatus != 'ContinuedAsNew'`];
    if (filter.userId !== undefined) clauses.push(`UserId = ${quote(filter.userId)}`);
    if (filter.status !== undefined) {
      if (!CONVERSATION_STATUSES.includes(filter.status)) {
        throw new NestorError(
          ErrorType.InvalidInput,
          `status: expected one of ${CONVERSATION_STATUSES.join(', ')}`,
          false,
        );
      }
      clauses.push(`ConversationStatus = '${filter.status}'`);
    }
    const out: ConversationSummary[] = [];
    for await (const wf of this.client.workflow.list({ query: clauses.join(' AND ') })) {
      out.push({
        conversationId: wf.typedSearchAttributes.get(ConversationIdKey) ?? wf.workflowId.replace(/^conversation-/, ''),
        userId: wf.typedSearchAttributes.get(UserIdKey) ?? '',
        status: (wf.typedSearchAttributes.get(ConversationStatusKey) as ConversationStatus | undefined) ?? 'UNKNOWN',
        workflowStatus: wf.status.name,
        startTime: wf.startTime,
        runId: wf.runId,
      });
    }
    return out;
  }

  /** Schedule a resume (with an optional message) at a time, on a cron expression, or at an interval. Overlaps are skipped. */
  async scheduleResume(conversationId: string, when: ScheduleResumeOptions): Promise<string> {
    return createResumeSchedule(this.client, this.taskQueue, conversationId, when);
  }

  /** Scheduled resumes, of one conversation or all. */
  async listScheduledResumes(conversationId?: string): Promise<ScheduledResume[]> {
    return listResumeSchedules(this.client, conversationId);
  }

  /** Delete a scheduled resume. Unknown IDs are an InvalidInput error. */
  async cancelScheduledResume(scheduleId: string): Promise<void> {
    return deleteResumeSchedule(this.client, scheduleId);
  }

  /** Current status; never holds the session API key. */
  async status(conversationId: string): Promise<AgentLoopInfo> {
    const info = await unwrapped(this.handle(conversationId).query(statusQuery));
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

/** A visibility-query string literal. */
function quote(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The TLS and API key given in code, without the keys left undefined (which would hide the environment's). */
function pick(o: { tls?: TLSConfig; apiKey?: string }): { tls?: TLSConfig; apiKey?: string } {
  return { ...(o.tls && { tls: o.tls }), ...(o.apiKey && { apiKey: o.apiKey }) };
}
