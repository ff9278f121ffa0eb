// Fake activities for workflow tests: every call recorded in order, failures injected where told.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { castKnownErrors } from '../../src/errors/cast-known-errors';
import { KNOWN_ERRORS } from '../../src/activities';
import type { Activities } from '../../src/activities';
import type { ConversationActivities } from '../../src/conversation/workflow/steps';
import { createHostActivities } from '../../src/sandbox-hosts/activities';
import type { SendEventInput, SentEvent } from '../../src/conversation/activities/nested';
import type { AcquireSessionInput } from '../../src/user-sessions/session';
import type { StartStep } from '../../src/shared/constants';
import type { StartConversationRequest } from '../../src/shared/schemas';
import { ConversationClient } from '../../src/conversation/client';
import { testWorkerDataConverter, uniqueId, workflowBundle } from './temporal';

export interface FakeOptions {
  failAt?: StartStep | 'claimRuntime';
  /** removeRuntime fails (non-retryably). */
  removeFails?: boolean;
  /** pauseRuntime fails (non-retryably). */
  pauseFails?: boolean;
  /** This step fails the second time it runs only (the first resume after a successful start). */
  failResumeAt?: StartStep;
  /** waitForReady takes this long (cancellable). */
  readyDelayMs?: number;
  /** releaseSession fails (non-retryably). */
  releaseFails?: boolean;
  /** The idle check finds the agent at work ('running') this many times before it finds it waiting. @default 0 */
  agentBusyChecks?: number;
  /** A pool here with this many ready members (claimRuntime takes one while any is left). @default no pool */
  poolReady?: number;
  /** Replaces sendEvent's answer: the nth call (1-based) with its input; throw to fail it. */
  sendEvent?: (input: SendEventInput, n: number) => SentEvent;
}

/** What a fake worker runs: every activity StartConversation calls, and others where a test needs them. */
export type FakeActivities = ConversationActivities & Partial<Activities>;

/** Fake activities that record every call in order and fail where told. */
export function fakeActivities(o: FakeOptions = {}) {
  const calls: string[] = [];
  const sent: string[] = [];
  /** Conversations whose resume schedules the close path deleted. */
  const schedulesDeleted: string[] = [];
  /** Every input sendEvent and acquireSession got, in order. */
  const sendInputs: SendEventInput[] = [];
  const acquireInputs: AcquireSessionInput[] = [];
  const runs = new Map<string, number>();
  let readyAt: number | undefined;
  const fail = (step: string) => {
    runs.set(step, (runs.get(step) ?? 0) + 1);
    if (o.failAt === step) throw ApplicationFailure.nonRetryable(`injected failure in ${step}`, 'NestedBadRequest');
    if (o.failResumeAt === step && runs.get(step) === 2)
      throw ApplicationFailure.nonRetryable(`injected resume failure in ${step}`, 'NestedBadRequest');
  };
  const acts: FakeActivities = {
    async acquireSession(input) {
      calls.push('acquireSession');
      acquireInputs.push(input);
      fail('acquireSession');
      return {
        conversationId: input.conversationId,
        userId: input.userId,
        agent: 'CodeActAgent',
        llmModel: 'm',
        capabilities: {},
        evicted: [],
      };
    },
    async releaseSession() {
      calls.push('releaseSession');
      if (o.releaseFails) throw ApplicationFailure.nonRetryable('the slot registry does not answer', 'Error');
    },
    async createRuntime() {
      calls.push('createRuntime');
      fail('createRuntime');
      return {
        runtimeId: 'rt-1',
        url: 'http://127.0.0.1:1',
        sessionApiKey: 'secret-session-key',
        adopted: false,
        readyMs: 1,
      };
    },
    // A look, not a step: not in `calls` (a test of the claim beside the slot sees claimRuntime).
    async whereSandbox() {
      return { here: true, canClaim: o.poolReady !== undefined };
    },
    async claimRuntime() {
      calls.push('claimRuntime');
      fail('claimRuntime');
      if (!o.poolReady) return null;
      o.poolReady--;
      return {
        runtimeId: 'rt-pooled',
        url: 'http://127.0.0.1:1',
        sessionApiKey: 'secret-session-key',
        adopted: false,
        readyMs: 1,
        startPath: 'pool' as const,
      };
    },
    async pauseRuntime() {
      calls.push('pauseRuntime');
      if (o.pauseFails) throw ApplicationFailure.nonRetryable('docker stop failed', 'RuntimeStartFailed');
    },
    async resumeRuntime() {
      calls.push('resumeRuntime');
      return {
        runtimeId: 'rt-1',
        url: 'http://127.0.0.1:2',
        sessionApiKey: 'secret-session-key',
        adopted: true,
        readyMs: 1,
      };
    },
    async removeRuntime() {
      calls.push('removeRuntime');
      if (o.removeFails) throw ApplicationFailure.nonRetryable('docker is gone', 'RuntimeStartFailed');
      return { removed: true };
    },
    async refreshTokens(input) {
      calls.push('refreshTokens');
      fail('refreshTokens');
      return { tokens: input.tokens, refreshed: [], warnings: [] };
    },
    async configureNestedServer() {
      calls.push('configureNestedServer');
      fail('configureNestedServer');
      return { secretsCreated: 0, secretsReplaced: 0, warnings: [] };
    },
    async createConversation() {
      calls.push('createConversation');
      fail('createConversation');
      return { conversationStatus: 'STARTING' };
    },
    // The fakes' sandbox speaks V0, which never asks for it; recorded, so a test would see a call.
    async prepareRepository() {
      calls.push('prepareRepository');
      return { path: '/workspace/project', preCommitHook: 'none' as const, setupScript: 'none' };
    },
    async waitForReady(input) {
      calls.push('waitForReady');
      if (o.readyDelayMs) {
        // Ready readyDelayMs after the first look; a look with a shorter bound (the start's local first look) gives up.
        const ctx = Context.current();
        readyAt ??= Date.now() + o.readyDelayMs;
        const end = Math.min(readyAt, Date.now() + input.readyTimeoutMs);
        while (Date.now() < end) {
          if (!ctx.info.isLocal) ctx.heartbeat();
          await ctx.sleep(50);
        }
        if (Date.now() < readyAt) throw ApplicationFailure.nonRetryable('not ready yet', 'NotReady');
      }
      fail('waitForReady');
      return { polls: 1, waitedMs: 1, status: 'RUNNING', lastEventId: -1 };
    },
    async sendEvent(input) {
      calls.push('sendEvent');
      sendInputs.push(input);
      if (o.sendEvent) return o.sendEvent(input, sendInputs.length);
      sent.push(input.content);
      return { eventId: sent.length, recovered: false };
    },
    async stopConversation() {
      calls.push('stopConversation');
      return { stopped: true };
    },
    async conversationActivity() {
      calls.push('conversationActivity');
      const busy = (runs.get('busy') ?? 0) < (o.agentBusyChecks ?? 0);
      runs.set('busy', (runs.get('busy') ?? 0) + 1);
      return busy
        ? { agentState: 'running', lastEventAgoMs: 0 }
        : { agentState: 'awaiting_user_input', lastEventAgoMs: 3_600_000 };
    },
    async markDeliveryCursor() {
      return { newestEventId: sent.length };
    },
    async deleteResumeSchedules(input) {
      schedulesDeleted.push(input.conversationId);
      return { deleted: [] };
    },
    // No sandbox hosts: the real placement, which answers "here" at once.
    ...createHostActivities({}),
  };
  return { acts, calls, sent, schedulesDeleted, sendInputs, acquireInputs };
}

export function input(id: string): StartConversationRequest {
  return {
    conversationId: id,
    userId: 'alice',
    settings: { agent: 'CodeActAgent', llmModel: 'anthropic/claude-sonnet-4-5', llmApiKey: 'sk-test' },
    gitProviderTokens: { github: { token: 'ghp_x' } },
  };
}

/** Run `fn` with a worker of fake activities on its own task queue of `env`. */
export async function withFakeWorker<T>(
  env: TestWorkflowEnvironment,
  acts: FakeActivities,
  fn: (client: ConversationClient, taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueId('wf');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    dataConverter: testWorkerDataConverter,
    activities: acts,
    interceptors: { activity: [castKnownErrors(KNOWN_ERRORS)] },
  });
  return worker.runUntil(fn(new ConversationClient({ client: env.client, taskQueue }), taskQueue));
}
