// The conversation's message handlers: each validates what it is given (the worker trusts no client), asks the
// Conversation for something, and waits for the state that answers it. None of them runs a step itself.
import {
  ApplicationFailure,
  condition,
  currentUpdateInfo,
  log,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import { keyMismatch, undecryptable } from '../../codec/undecryptable';
import { ErrorType } from '../../errors';
import { conversationWorkflowId } from '../../shared/constants';
import type { StartConversationInput } from '../../shared/schemas';
import { workflowSchemas } from '../../shared/workflow-preload';
import {
  closeSignal,
  closeUpdate,
  pauseSignal,
  pauseUpdate,
  resumeUpdate,
  sendMessageUpdate,
  statusQuery,
  waitReadyUpdate,
  type WaitReadyInput,
} from '../messages';
import { deliveryFailure, invalidInput } from './failures';
import type { Conversation } from './state';

/** Validate a message input with its schema in an update's validator: a bad one is rejected before it is accepted. */
function checked<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const sealed = keyMismatch(what, value);
  if (sealed) throw sealed;
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw invalidInput(what, r.error);
  return r.data;
}

/**
 * The start input as the worker trusts it: parsed with the published schema (defaults applied, limits checked),
 * whatever client sent it, and addressed to this workflow's own ID.
 */
export function checkStartInput(request: StartConversationInput): {
  input: StartConversationInput;
  invalid?: ApplicationFailure;
} {
  const sealed = keyMismatch('start', request);
  if (sealed) return { input: {} as StartConversationInput, invalid: sealed };
  const r = workflowSchemas().StartConversationInputSchema.safeParse(request);
  if (!r.success)
    return { input: request ?? ({} as StartConversationInput), invalid: invalidInput('start input', r.error) };
  const expected = conversationWorkflowId(r.data.conversationId);
  if (workflowInfo().workflowId !== expected) {
    const message = `invalid start input: conversationId: '${r.data.conversationId}' is not this workflow's conversation (workflow ID '${workflowInfo().workflowId}', expected '${expected}')`;
    return {
      input: r.data,
      invalid: ApplicationFailure.create({ message, type: ErrorType.InvalidInput, nonRetryable: true }),
    };
  }
  return { input: r.data };
}

/** Wait until RUNNING; fail if the conversation ends or a resume fails meanwhile. */
async function untilRunning(conv: Conversation): Promise<void> {
  const mark = conv.resumeFailures.mark();
  await condition(() => conv.info.status === 'RUNNING' || conv.terminal() || !!conv.resumeFailures.since(mark));
  if (conv.info.status !== 'RUNNING')
    throw conv.resumeFailures.since(mark) ?? conv.startFailure ?? conv.closedFailure();
}

/** Another user's start (the same conversation ID) must not join this conversation and get its session key. */
function checkWaiter(conv: Conversation, w: WaitReadyInput | undefined): void {
  const sealed = keyMismatch('waitReady', w);
  if (sealed) throw sealed;
  // Required of every caller: an update without it (a backend that implements the contract literally with `{}`)
  // would otherwise get whichever conversation holds the ID.
  const { userId } = checked(workflowSchemas().WaitReadyInputSchema, w ?? {}, 'waitReady input');
  if (userId !== conv.userId) {
    throw ApplicationFailure.create({
      message: `conversationId: conversation ${conv.conversationId} belongs to another user; choose another conversation ID`,
      type: ErrorType.WrongUser,
      nonRetryable: true,
    });
  }
}

/** Every handler, installed before the first await: update-with-start delivers its update before the main code. */
export function installHandlers(conv: Conversation): void {
  setHandler(statusQuery, () => conv.publicInfo());
  setHandler(
    waitReadyUpdate,
    async () => {
      if (conv.info.status === 'PAUSED') conv.resumeRequested = true;
      await untilRunning(conv);
      return { ...conv.info, sessionApiKey: conv.runtime?.sessionApiKey };
    },
    { validator: (w) => checkWaiter(conv, w) },
  );
  installMessageHandler(conv);
  installCloseHandlers(conv);
  installPauseResumeHandlers(conv);
}

function installMessageHandler(conv: Conversation): void {
  setHandler(
    sendMessageUpdate,
    async (msg) => {
      const id = msg.messageId ?? currentUpdateInfo()?.id ?? uuid4();
      // The same message ID again (a retry, or the client after a continue-as-new) gets the first answer.
      const delivered = conv.acks.get(id);
      if (delivered) return delivered;
      // A delivery that failed may still have posted it: the same ID never goes again, it gets the same failure.
      const failure = conv.failed.get(id);
      if (failure) throw deliveryFailure(failure);
      const mine = conv.enqueue(id, msg);
      await condition(() => mine.done);
      if (mine.error) throw mine.error;
      return mine.ack!;
    },
    {
      validator: (msg) => {
        checked(workflowSchemas().SendMessageInputSchema, msg, 'message');
        conv.rejectIfClosed();
        if (conv.switching) {
          throw ApplicationFailure.create({
            message: 'continuing as new: send again',
            type: ErrorType.ContinuingAsNew,
            nonRetryable: false,
          });
        }
      },
    },
  );
}

function installCloseHandlers(conv: Conversation): void {
  setHandler(
    closeUpdate,
    async (c) => {
      conv.requestClose(c?.reason);
      await condition(() => conv.terminal());
      return conv.publicInfo();
    },
    { validator: (c) => void checked(workflowSchemas().CloseInputSchema, c, 'close input') },
  );
  // A signal cannot be refused: a close is a close, but a reason that breaks the schema is not kept.
  // A signal nobody here can read (another key) is no instruction: only holders of a shared key drive a conversation.
  setHandler(closeSignal, (c) => {
    if (undecryptable(c))
      return void log.warn('close signal sealed with an unknown key ignored', { keyId: undecryptable(c)!.keyId });
    conv.requestClose(workflowSchemas().CloseInputSchema.safeParse(c ?? {}).data?.reason);
  });
}

function installPauseResumeHandlers(conv: Conversation): void {
  setHandler(
    pauseUpdate,
    async (p) => {
      const mark = conv.pauseFailures.mark();
      conv.requestPause(p?.reason ?? 'paused on request');
      await condition(() => conv.info.status === 'PAUSED' || conv.terminal() || !!conv.pauseFailures.since(mark));
      const failure = conv.pauseFailures.since(mark);
      if (conv.info.status !== 'PAUSED' && failure) throw failure;
      return conv.publicInfo();
    },
    {
      validator: (p) => {
        checked(workflowSchemas().PauseInputSchema, p, 'pause input');
        conv.rejectIfClosed();
      },
    },
  );
  setHandler(pauseSignal, (p) => {
    if (undecryptable(p))
      return void log.warn('pause signal sealed with an unknown key ignored', { keyId: undecryptable(p)!.keyId });
    conv.requestPause(workflowSchemas().PauseInputSchema.safeParse(p ?? {}).data?.reason ?? 'paused on request');
  });
  setHandler(
    resumeUpdate,
    async () => {
      if (conv.info.status === 'PAUSED') conv.resumeRequested = true;
      await untilRunning(conv);
      return conv.publicInfo();
    },
    { validator: () => conv.rejectIfClosed() },
  );
}
