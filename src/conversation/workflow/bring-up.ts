// Bring-up: OpenHands' start steps as one plan (slot, sandbox, git tokens, nested set-up, conversation, ready), run in
// order with each step's compensation pushed as what it undoes may come to exist, and compensate() to undo them on a
// failure or a close. A start and a resume run the same plan; how they differ is data (MODES), not branches.
import { CancellationScope, isCancellation, log, patched, upsertMemo } from '@temporalio/workflow';
import type { Conversation } from './state';
import { describeCause } from './failures';
import { resumeEnded, startEnded, type Outcome, type StepName } from './ended';
import {
  LEAN_START_PATCH,
  REFRESH_AS_ACTIVITY_PATCH,
  RELEASE_UNFINISHED_ACQUIRE_PATCH,
  SANDBOX_HOSTS_PATCH,
} from './patches';
import { runtimeSpec, type Run } from './run';
import type { ReadyReport } from '../activities/nested';
import { slotAndClaim } from './slot-and-claim';
import { confirmHost, confirmHostFirst, placeAndCreate, undoRuntime } from './placement';
import { touch } from './slot';
import { createStep, repositoryStep } from './nested-steps';
import { NEVER_RETRY_INPUT } from './steps';

export type Mode = 'start' | 'resume';
export type { StepName };
export type { Outcome };

interface Compensation {
  name: string;
  run: () => Promise<unknown>;
}

/** How a start and a resume differ. */
export interface ModePlan {
  runtimeStep: 'createRuntime' | 'resumeRuntime';
  runtimeDetails: string;
  /** A failed start removes the sandbox; a failed resume only stops it again: its data stays, for a later resume. */
  undoRuntime: 'removeRuntime' | 'pauseRuntime';
  createDetails: string;
  /** The first message and replay go with the first creation only: a resume reopens the conversation without them. */
  sendsInitialMessage: boolean;
}

const MODES: Record<Mode, ModePlan> = {
  start: {
    runtimeStep: 'createRuntime',
    runtimeDetails: 'waiting for the container to answer /alive',
    undoRuntime: 'removeRuntime',
    createDetails: 'creating the nested conversation',
    sendsInitialMessage: true,
  },
  resume: {
    runtimeStep: 'resumeRuntime',
    runtimeDetails: 'starting the paused container',
    undoRuntime: 'pauseRuntime',
    createDetails: 'reopening the nested conversation',
    sendsInitialMessage: false,
  },
};

export interface PlanStep {
  name: StepName;
  details: string;
  /** Run only when this holds (e.g. there are git tokens to refresh). */
  when?: () => boolean;
  /** What undoes this step, pushed before it runs: a step that fails half-way may still have made it. */
  undo?: Compensation;
  /** Whether `undo` is pushed before the step (default) or only once it succeeded. */
  undoFirst?: () => boolean;
  run: () => Promise<void>;
}

/** The user's slot (a start's pooled sandbox claimed beside it: slot-and-claim.ts; a resume's sandbox is its own). */
function acquireStep(r: Run, mode: Mode, undoClaim: () => void): PlanStep {
  const { conversationId, userId } = r.conv;
  const acquire = async () =>
    void (await r.acts.acquireSession({
      conversationId,
      userId,
      settings: r.input.settings,
      // A resume is checked for its own sandbox's server (a V0 one stays V0 after the worker's image changed; a
      // sandbox recorded before protocols were is V0).
      ...(mode === 'resume' && { protocol: r.conv.runtime?.protocol ?? 'v0' }),
    }));
  return {
    name: 'acquireSession',
    details: 'validating settings',
    // A request interrupted by a close may still be granted by the user's registry (runs before the patch: after).
    undo: { name: 'releaseSession', run: () => r.acts.releaseSession({ conversationId, userId }) },
    undoFirst: () => patched(RELEASE_UNFINISHED_ACQUIRE_PATCH),
    run: async () => {
      if (mode === 'resume') return acquire();
      r.claimed = await slotAndClaim(r, acquire, undoClaim);
    },
  };
}

/** The steps of a start or resume, in order; `undo` pushes a compensation a step needs before its own runs. */
function plan(r: Run, mode: Mode, undo: (c: Compensation) => void): PlanStep[] {
  // `r.acts`, not a copy: the placement (runtimeStep) points the sandbox's steps at its host.
  const { conv, input } = r;
  const m = MODES[mode];
  const target = () => conv.nestedTarget();
  // Asked once, at the first nested step, whichever it is (a replay asks at the same point).
  let lean: boolean | undefined;
  const nested = () => {
    lean ??= patched(LEAN_START_PATCH);
    return lean ? r.acts.local : r.acts;
  };
  const removeRuntime: Compensation = { name: m.undoRuntime, run: () => undoRuntime(r, m.undoRuntime) };
  return [
    acquireStep(r, mode, () => undo(removeRuntime)),
    {
      name: m.runtimeStep,
      details: m.runtimeDetails,
      undo: removeRuntime,
      run: () => runtimeStep(r, mode),
    },
    {
      name: 'refreshTokens',
      details: 'refreshing git provider tokens',
      when: () => !!conv.tokens && Object.keys(conv.tokens).length > 0,
      run: async () => {
        // Its answer (a rotated refresh token) must be in history before anything else can fail: never local.
        const via = nested() === r.acts.local && !patched(REFRESH_AS_ACTIVITY_PATCH) ? r.acts.local : r.acts;
        const refreshed = await via.refreshTokens({ tokens: conv.tokens! });
        conv.tokens = refreshed.tokens;
        for (const w of refreshed.warnings) conv.warn(w);
        for (const w of refreshed.warnings) log.warn('token refresh', { step: 'refreshTokens', warning: w });
      },
    },
    repositoryStep(r, mode),
    {
      name: 'configureNestedServer',
      details: 'storing settings, git providers and secrets',
      run: async () => {
        const configured = await nested().configureNestedServer({
          ...target(),
          settings: input.settings,
          providerTokens: conv.tokens,
          customSecrets: input.customSecrets,
          repository: input.repository,
          gitProvider: input.gitProvider,
        });
        // Histories recorded before the report had warnings hold none: `?? []`.
        for (const w of configured?.warnings ?? []) {
          conv.warn(w);
          log.warn('nested set-up', { step: 'configureNestedServer', warning: w });
        }
      },
    },
    {
      name: 'createConversation',
      details: m.createDetails,
      run: () => createStep(r, m, nested()),
    },
    {
      name: 'waitForReady',
      details: `waiting up to ${r.readyTimeoutMs} ms for the conversation to run`,
      run: async () => {
        const ready =
          (r.here && (await readyNow(r))) ||
          (await r.acts.waitForReady({ ...target(), readyTimeoutMs: r.readyTimeoutMs }));
        conv.cursor = Math.max(conv.cursor, ready.lastEventId);
      },
    },
  ];
}

/** Create (start) or start again (resume) the sandbox, and record where it answers. */
async function runtimeStep(r: Run, mode: Mode): Promise<void> {
  const { conv, incarnation, aliveTimeoutMs } = r;
  const { conversationId } = conv;
  const create = () => r.acts.createRuntime(runtimeSpec(r));
  const resume = async () => {
    if (!r.hostConfirmed && patched(SANDBOX_HOSTS_PATCH)) await confirmHost(r);
    return r.acts.resumeRuntime({ conversationId, incarnation, aliveTimeoutMs });
  };
  // On this worker's engine (r.here) there is no placement to ask for.
  const runtime =
    mode === 'start'
      ? (r.claimed ?? (!r.here && patched(SANDBOX_HOSTS_PATCH) ? await placeAndCreate(r, create) : await create()))
      : await resume();
  conv.runtime = runtime;
  conv.info.runtimeId = runtime.runtimeId;
  conv.info.timings = { runtimeReadyMs: runtime.readyMs };
  if (runtime.startPath) conv.info.startPath = runtime.startPath;
  if (runtime.coldReason) conv.info.coldReason = runtime.coldReason;
  conv.info.url = `${runtime.url}/api/conversations/${conv.info.nestedConversationId ?? conversationId}`;
  if (runtime.protocol) conv.info.protocol = runtime.protocol;
  upsertMemo({
    runtimeId: runtime.runtimeId,
    runtimeAdopted: runtime.adopted,
    ...(conv.info.sandboxHost && { sandboxHost: conv.info.sandboxHost }),
  });
}

/** Bound of the local first readiness look: a sandbox that is not ready by then is waited for by the activity. */
const READY_NOW_MS = 1000;

/** A first readiness look in this workflow task (CLAIM_BESIDE_SLOT_PATCH); undefined when not ready yet (or it failed). */
async function readyNow(r: Run): Promise<ReadyReport | undefined> {
  const readyTimeoutMs = Math.min(r.readyTimeoutMs, READY_NOW_MS);
  try {
    return await r.acts.here.readyNow({ ...r.conv.nestedTarget(), readyTimeoutMs });
  } catch (err) {
    if (isCancellation(err)) throw err;
    return undefined;
  }
}

/** Undo, newest first, what the bring-up made; a compensation that fails is noted and the others still run. */
async function compensate(conv: Conversation, compensations: Compensation[]): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    conv.setStep('compensating', `undoing ${compensations.map((c) => c.name).join(', ') || 'nothing'}`);
    for (const c of compensations) {
      try {
        await c.run();
      } catch (cerr) {
        conv.warn(`compensation ${c.name} failed: ${describeCause(cerr).message}`);
      }
    }
  });
}

/**
 * Start (mode 'start') or resume (mode 'resume') the conversation. Returns 'running'; 'closed' when a close
 * interrupted it; 'paused' when a resume failed (the sandbox is stopped again, kept with its data, and can be resumed
 * later). A failed start throws the typed start failure.
 */
export async function bringUp(r: Run, mode: Mode): Promise<Outcome> {
  const { conv } = r;
  conv.setStatus('STARTING');
  const compensations: Compensation[] = [];
  const at: { step: StepName } = { step: 'acquireSession' };
  conv.bringUpScope = new CancellationScope();
  r.hostConfirmed = false;
  r.claimed = undefined;
  r.here = undefined;
  // Each undo once, newest first (a start's sandbox removal may be pushed by its claim and again by createRuntime).
  const undo = (c: Compensation) => {
    if (!compensations.some((x) => x.name === c.name)) compensations.unshift(c);
  };
  try {
    await conv.bringUpScope.run(async () => {
      if (mode === 'resume') {
        at.step = 'resumeRuntime';
        r.hostConfirmed = await confirmHostFirst(r);
      }
      for (const s of plan(r, mode, undo)) {
        if (s.when && !s.when()) continue;
        const undoFirst = s.undo && (s.undoFirst?.() ?? true);
        if (s.undo && undoFirst) undo(s.undo);
        at.step = s.name;
        conv.setStep(s.name, s.details);
        await s.run();
        if (s.undo && !undoFirst) undo(s.undo);
      }
    });
  } catch (err) {
    const cancelledByClose = conv.closeRequested && isCancellation(err);
    const cause = describeCause(err);
    // Refused settings are refused before any slot is asked for: there is no slot to give back (a sandbox claimed
    // beside it is still removed).
    if (at.step === 'acquireSession' && (NEVER_RETRY_INPUT as string[]).includes(cause.type)) {
      const slot = compensations.findIndex((c) => c.name === 'releaseSession');
      if (slot >= 0) compensations.splice(slot, 1);
    }
    await compensate(conv, compensations);
    if (mode === 'start') conv.runtime = undefined;
    return mode === 'start'
      ? startEnded(r, at.step, cause, cancelledByClose)
      : resumeEnded(r, at.step, cause, cancelledByClose);
  } finally {
    conv.bringUpScope = undefined;
  }
  conv.info.readyAt = new Date().toISOString();
  if (mode === 'start') {
    conv.info.timings = {
      ...conv.info.timings,
      startToRunningMs: Date.parse(conv.info.readyAt) - Date.parse(conv.info.startedAt),
    };
    r.metrics.timeToReady.record(conv.info.timings.startToRunningMs!);
  }
  conv.becameRunning();
  await touch(r, true);
  return 'running';
}
