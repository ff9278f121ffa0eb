// The fault suite (`npm run test:faults`): each fault injected repeatedly into a real dev server, a real `nestor worker`
// process, real Docker and the emulator image, with nestor's invariants checked after every run:
//   1. never two containers of one conversation at once (from Docker's own create/destroy events, so none is missed
//      between two looks); a RUNNING conversation has exactly one, running; after a reaper pass no labelled container
//      is left without an open conversation;
//   2. every acknowledged message is in the nested server's events exactly once (besides other writers' identical
//      ones), in the order it was sent, acknowledged with its own event ID;
//   3. every conversation reaches RUNNING or STOPPED within SETTLE_BOUND_MS of the fault clearing: every fault here
//      passes, so ERROR (even an explicit one) is a violation;
//   4. a git refresh token is never used again after its rotation was handed out (scripts/faults/oauth.ts): a
//      rotated token is never lost, whatever was retried;
//   5. after the reaper pass no container or volume is left that no open conversation or running pool accounts for
//      (claim locks included), no closed conversation still holds its user's slot, and no volume was ever mounted by
//      two containers (Docker's mount events: one user's file store never reaches another's sandbox).
// Besides single conversations the faults cover a warm pool (a worker killed right after a member turns ready, a
// Temporal restart under a full pool), a second conversations worker reaching Temporal by another address, and a
// sandbox host's worker killed for 40 s and back.
// Prints a matrix (fault × runs × violations) and exits non-zero on any violation. FAULT_RUNS sets the runs per
// fault (default 5); `npm test` runs every fault once (test/service/faults.test.ts).
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ConversationError } from '../src/conversation/client';
import { START_STEPS } from '../src/shared/constants';
import { NestedClient } from '../src/nested/client';
import type { AgentLoopInfo } from '../src/shared/schemas';
import {
  FaultLab,
  SETTLE_BOUND_MS,
  newId,
  sleep,
  type Conv,
  type FaultRow,
  type FaultRuntime,
  type Sent,
} from './faults/lab';

export { SETTLE_BOUND_MS, type FaultRow };

// The emulator's fault knobs and quick boots are what this script measures against; the real image has its own runs.
process.env.NESTOR_RUNTIME ??= 'emulator';

// ---------- the faults ----------

const STALLS = {
  FAULT_SETTINGS_STALL_MS: '300',
  FAULT_CREATE_CONVERSATION_STALL_MS: '300',
  CONVERSATION_START_DELAY_MS: '800',
};

type Fault = {
  name: string;
  run: (lab: FaultLab) => Promise<Conv[]>;
  /** Undone once the run's conversations were checked (and closed): e.g. a host worker they needed. */
  after?: (lab: FaultLab) => Promise<void>;
};

/**
 * Start a conversation, inject the fault as soon as the worker logs that `step` started for it, then (unless the start
 * ended in an explicit ERROR) send two messages.
 */
const duringStart = (
  name: string,
  step: string,
  inject: (lab: FaultLab, id: string) => Promise<void>,
  env: Record<string, string> = STALLS,
): Fault => ({
  name,
  run: async (lab) => {
    const id = newId('start');
    const conv: Conv = { id, sent: [] };
    const inStep = lab.stepStarted(id, [step]);
    const starting = lab.start(id, { env, tokens: true });
    await inStep;
    await inject(lab, id);
    if (!((await starting) instanceof ConversationError))
      for (const m of ['after the fault 1', 'after the fault 2']) await lab.send(conv, m);
    return [conv];
  },
});

const killAndRestartWorker = async (lab: FaultLab) => {
  await lab.killWorker();
  await lab.startWorker();
};

/**
 * With a warm pool of two on the worker: the fault, then three pooled starts racing for its members (one starts
 * cold), each with a message. The pool is drained after, so the checks see only what the conversations left.
 */
const withPool = (name: string, readyFirst: number, inject: (lab: FaultLab) => Promise<void>): Fault => ({
  name,
  run: async (lab) => {
    lab.workerEnv = { NESTOR_POOL_SIZE: '2' };
    const ready = lab.membersReady(readyFirst);
    await killAndRestartWorker(lab);
    try {
      // The fault as soon as that many members turned ready (the first: while its boot's activity may not be done).
      await ready;
      await inject(lab);
      const convs: Conv[] = [0, 1, 2].map(() => ({ id: newId('pool'), sent: [] }));
      await Promise.all(convs.map((c) => lab.start(c.id, { pooled: true })));
      for (const c of convs) await lab.send(c, 'to a pooled sandbox');
      return convs;
    } finally {
      await lab.drainPool();
      lab.workerEnv = {};
      await killAndRestartWorker(lab);
    }
  },
});

/**
 * The pause follows the failed message on the workflow's next turn (its slot given back first): wait for it, bounded
 * well past that (a busy machine), and fail naming what was seen instead.
 */
async function pausedForLostHost(lab: FaultLab, id: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await lab.persist(() => lab.client.status(id));
    if (s.status === 'PAUSED' && s.lastError?.type === 'SandboxHostLost') return;
    if (Date.now() > deadline)
      throw new Error(`${id}: ${s.status} (${s.lastError?.type ?? 'no error'}) with its host worker down, not PAUSED`);
    await sleep(250);
  }
}

/**
 * Sandboxes on a host (its `nestor host-worker` on the lab's engine): the host worker killed for 40 s (past the
 * pickup bound, within the registry's lost bound) while a message is sent, which fails and pauses the conversation;
 * then back: the next message resumes the conversation there and is delivered once.
 */
function hostKilled40s(): Fault {
  let host: ChildProcess | undefined;
  const stopHost = async () => {
    if (host && host.exitCode === null && host.signalCode === null) {
      const exited = once(host, 'exit');
      host.kill('SIGKILL');
      await exited;
    }
  };
  return {
    name: 'a host worker killed for 40 s and back: its conversation pauses, then resumes there',
    run: async (lab) => {
      lab.workerEnv = { NESTOR_SANDBOX_HOSTS: 'true' };
      await killAndRestartWorker(lab);
      host = await lab.startHostWorker('faults-h1');
      const conv: Conv = { id: newId('host'), sent: [] };
      await lab.start(conv.id);
      await lab.send(conv, 'before the host worker died');
      await stopHost();
      const down = Date.now();
      await lab.send(conv, 'while the host worker is down'); // not picked up within the bound: fails, pauses
      if (conv.sent.at(-1)!.ack) throw new Error(`${conv.id}: a message was acknowledged with its host worker down`);
      await pausedForLostHost(lab, conv.id);
      await sleep(Math.max(0, 40_000 - (Date.now() - down)));
      host = await lab.startHostWorker('faults-h1');
      await lab.send(conv, 'with the host worker back');
      return [conv];
    },
    after: async (lab) => {
      await stopHost();
      lab.workerEnv = {};
      await killAndRestartWorker(lab);
    },
  };
}

const FAULTS: Fault[] = [
  ...START_STEPS.map((step) => duringStart(`worker SIGKILL during ${step}`, step, killAndRestartWorker)),
  duringStart(
    'worker SIGKILL during createRuntime (container made, activity not done)',
    'createRuntime',
    async (lab, id) => {
      while ((await lab.containers(id)).length === 0) await sleep(10);
      await killAndRestartWorker(lab);
    },
  ),
  duringStart('Temporal server SIGKILL + restart during a start', 'createConversation', (lab) => lab.restartServer(), {
    ...STALLS,
    FAULT_CREATE_CONVERSATION_STALL_MS: '1000',
  }),
  {
    name: 'Temporal server SIGKILL + restart during message delivery',
    run: async (lab) => {
      const id = newId('sk-send');
      const conv: Conv = { id, sent: [] };
      await lab.start(id, { env: { FAULT_POST_EVENTS_STALL_MS: '200' } });
      for (let i = 0; i < 6; i++) {
        const sending = lab.send(conv, `message ${i}`);
        if (i === 2) {
          await sleep(100);
          await lab.restartServer();
        }
        await sending;
      }
      return [conv];
    },
  },
  duringStart('Docker daemon restart during a start', 'createRuntime', (lab) => lab.restartDocker()),
  {
    name: 'Docker daemon restart while conversations idle',
    run: async (lab) => {
      const convs: Conv[] = [0, 1].map(() => ({ id: newId('dk-idle'), sent: [] }));
      for (const c of convs) {
        await lab.start(c.id);
        await lab.send(c, 'before the daemon restart');
      }
      await lab.restartDocker();
      for (const c of convs) await lab.send(c, 'after the daemon restart');
      return convs;
    },
  },
  {
    name: 'nested server: 5xx on 30% of calls',
    run: async (lab) => {
      const conv: Conv = { id: newId('n5xx'), sent: [] };
      if (
        !(
          (await lab.start(conv.id, { env: { FAULT_API_ERROR_RATE: '0.3' }, secrets: true })) instanceof
          ConversationError
        )
      ) {
        for (let i = 0; i < 5; i++) await lab.send(conv, `message ${i}`);
      }
      return [conv];
    },
  },
  {
    name: 'nested server: stalls past the request timeout',
    run: async (lab) => {
      // Every settings call outlasts the request timeout, so this start can never succeed: an explicit ERROR.
      const conv: Conv = { id: newId('nstall'), sent: [], mustFail: true };
      await lab.start(conv.id, { env: { FAULT_SETTINGS_STALL_MS: '4000' } });
      return [conv];
    },
  },
  {
    name: 'nested server: connection resets and lost replies',
    run: async (lab) => {
      const conv: Conv = { id: newId('nreset'), sent: [] };
      if (
        !(
          (await lab.start(conv.id, {
            env: { FAULT_API_RESET_RATE: '0.2', FAULT_POST_EVENTS_DROP_REPLY_RATE: '0.4' },
          })) instanceof ConversationError
        )
      ) {
        for (let i = 0; i < 8; i++) await lab.send(conv, `message ${i}`);
      }
      return [conv];
    },
  },
  {
    name: 'nested server: "already exists" on resume',
    run: async (lab) => {
      const conv: Conv = { id: newId('nexists'), sent: [] };
      await lab.start(conv.id, { secrets: true });
      await lab.send(conv, 'before the pause');
      await lab.persist(() => lab.client.pause(conv.id, 'fault run'));
      // The resume posts the custom secret again; the nested server answers 400 "already exists".
      await lab.send(conv, 'resumes it');
      return [conv];
    },
  },
  {
    name: 'Docker daemon restart during message delivery',
    run: async (lab) => {
      const conv: Conv = { id: newId('dk-send'), sent: [] };
      // The post lands at once but its answer comes 3 s later: the daemon restart in between takes the answer (and
      // the sandbox's address) away, so the delivery ends unknown and the sandbox is recovered before it goes again.
      await lab.start(conv.id, { env: { FAULT_POST_EVENTS_REPLY_STALL_MS: '3000' } });
      const inStep = lab.stepStarted(conv.id, ['sendEvent']);
      const sending = lab.send(conv, 'sent while the daemon restarts');
      await inStep;
      await lab.restartDocker();
      await sending;
      await lab.send(conv, 'after the daemon restart');
      return [conv];
    },
  },
  {
    name: 'nested server: a POST slower than the request timeout',
    run: async (lab) => {
      const conv: Conv = { id: newId('nslow'), sent: [] };
      // The worker's request timeout is 1.5 s: half the posts take 3 s, and land even if their caller gave up.
      await lab.start(conv.id, { env: { FAULT_POST_EVENTS_STALL_MS: '3000', FAULT_POST_EVENTS_STALL_RATE: '0.5' } });
      for (let i = 0; i < 4; i++) await lab.send(conv, `message ${i}`);
      return [conv];
    },
  },
  {
    name: 'another writer posts the identical message',
    run: async (lab) => {
      const conv: Conv = { id: newId('writer'), sent: [], foreign: new Map() };
      await lab.start(conv.id, { env: { FAULT_POST_EVENTS_DROP_REPLY_RATE: '0.3' } });
      const live = await lab.persist(() => lab.client.connection(conv.id));
      const ui = NestedClient.forConversation(live, { retries: 10 });
      // Someone types "yes" in the OpenHands UI just before and just after nestor delivers its own "yes".
      const other = async () => {
        const before = (await ui.getEvents(conv.id, { reverse: true, limit: 1 })).events[0]?.id ?? -1;
        await ui
          .postEvent(conv.id, {
            action: 'message',
            args: { content: 'yes', image_urls: [], file_urls: [], wait_for_response: false },
          })
          .catch(() => undefined);
        for (const e of await ui.eventsAfter(conv.id, before))
          if (e.source === 'user' && e.args?.content === 'yes') conv.foreign!.set(e.id, 'yes');
      };
      await other();
      await lab.send(conv, 'yes');
      await other();
      await lab.send(conv, 'no');
      return [conv];
    },
  },
  {
    name: 'a chatty agent (thousands of events between user messages)',
    run: async (lab) => {
      const conv: Conv = { id: newId('chatty'), sent: [] };
      // Lost replies make deliveries look for their earlier post across everything the agent said since.
      await lab.start(conv.id, { env: { AGENT_CHATTER_EVENTS: '2000', FAULT_POST_EVENTS_DROP_REPLY_RATE: '0.5' } });
      for (let i = 0; i < 4; i++) await lab.send(conv, `message ${i}`);
      return [conv];
    },
  },
  {
    name: '100 concurrent starts of one conversation',
    run: async (lab) => {
      const conv: Conv = { id: newId('c100'), sent: [] };
      const infos = await Promise.all(Array.from({ length: 100 }, () => lab.start(conv.id)));
      const failed = infos.filter((i) => i instanceof ConversationError);
      if (failed.length) throw new Error(`${failed.length} of 100 starts failed (first: ${failed[0].message})`);
      const runtimes = new Set(infos.map((i) => (i as AgentLoopInfo).runtimeId));
      if (runtimes.size !== 1) throw new Error(`100 starts answered with ${runtimes.size} different runtimes`);
      return [conv];
    },
  },
  {
    name: '100 concurrent sends of one message ID',
    run: async (lab) => {
      const conv: Conv = { id: newId('s100'), sent: [] };
      await lab.start(conv.id);
      const s: Sent = { content: 'once only', messageId: `${conv.id}-once` };
      conv.sent.push(s);
      const acks = await Promise.all(
        Array.from({ length: 100 }, () =>
          lab.persist(() => lab.client.sendMessage(conv.id, { content: s.content, messageId: s.messageId })),
        ),
      );
      if (new Set(acks.map((a) => a.eventId)).size !== 1)
        throw new Error('100 sends of one message ID got different acknowledgements');
      s.ack = acks[0];
      return [conv];
    },
  },
  {
    name: 'worker SIGKILL during close',
    run: async (lab) => {
      const conv: Conv = { id: newId('wk-close'), sent: [] };
      await lab.start(conv.id, { env: { FAULT_STOP_STALL_MS: '500' } });
      await lab.send(conv, 'before the close');
      const inStep = lab.stepStarted(conv.id, ['stopConversation', 'removeRuntime']);
      const closing = lab.persist(() => lab.client.close(conv.id, 'closing under a kill'));
      await inStep;
      await lab.killWorker();
      await lab.startWorker();
      const info = await closing;
      if (info.status !== 'STOPPED') throw new Error(`close ended ${info.status}`);
      if ((await lab.containers(conv.id)).length !== 0) throw new Error('the container outlived the close');
      return [];
    },
  },
  withPool('pool: worker SIGKILL right after a member turns ready', 1, killAndRestartWorker),
  withPool('pool: Temporal server SIGKILL + restart under a full pool', 2, (lab) => lab.restartServer()),
  hostKilled40s(),
  {
    name: 'a second conversations worker (another spelling of the address) resumes the sandbox the first made',
    run: async (lab) => {
      const conv: Conv = { id: newId('two'), sent: [] };
      await lab.start(conv.id);
      await lab.send(conv, 'to the first worker');
      await lab.persist(() => lab.client.pause(conv.id, 'handing over'));
      const second = await lab.startSecondWorker();
      try {
        await lab.killWorker();
        await lab.send(conv, 'to the second worker');
      } finally {
        second.kill('SIGKILL');
        await lab.startWorker();
      }
      return [conv];
    },
  },
];

export const FAULT_NAMES = FAULTS.map((f) => f.name);

/**
 * The faults that apply to the current agent server's protocol (V1 has no settings, git-provider or secret routes to
 * fault): starts and deliveries under worker and server kills, 5xx, resets, lost replies and slow posts. Run on the
 * emulator's V1 image with `FAULT_RUNTIME=emulator-v1 npm run test:faults`.
 */
export const V1_FAULTS =
  /^(worker SIGKILL during .*|Temporal server SIGKILL \+ restart during message delivery|nested server: (5xx on 30% of calls|connection resets and lost replies|a POST slower than the request timeout))$/;
export const V1_FAULT_NAMES = FAULT_NAMES.filter((n) => V1_FAULTS.test(n));

/**
 * The delivery faults on the real current agent server (stall, lost answer, 5xx, reset), injected by the fault proxy
 * between the worker and the server: `FAULT_RUNTIME=openhands npm run test:faults`.
 */
export const REAL_V1_FAULTS =
  /^nested server: (5xx on 30% of calls|connection resets and lost replies|a POST slower than the request timeout)$/;
export const REAL_V1_FAULT_NAMES = FAULT_NAMES.filter((n) => REAL_V1_FAULTS.test(n));

const DEFAULT_FAULTS: Record<FaultRuntime, RegExp | undefined> = {
  emulator: undefined,
  'emulator-v1': V1_FAULTS,
  openhands: REAL_V1_FAULTS,
};

export async function runFaultSuite(o: {
  runs: number;
  only?: RegExp;
  log?: (s: string) => void;
  /**
   * @default 'emulator' (V0, every fault); 'emulator-v1' runs V1_FAULTS and 'openhands' (the real agent server)
   * REAL_V1_FAULTS; `only` narrows that set (a fault a runtime cannot have is never run on it)
   */
  runtime?: FaultRuntime;
}): Promise<FaultRow[]> {
  const log = o.log ?? ((s: string) => process.stderr.write(`[faults] ${s}\n`));
  const lab = await FaultLab.create({ runtime: o.runtime });
  lab.injectedLog = log;
  const fits = DEFAULT_FAULTS[o.runtime ?? 'emulator'];
  const selected = FAULTS.filter((f) => (!fits || fits.test(f.name)) && (!o.only || o.only.test(f.name)));
  const rows: FaultRow[] = [];
  try {
    for (const fault of selected) {
      const row: FaultRow = { fault: fault.name, runs: 0, violations: [], seconds: 0 };
      const t0 = Date.now();
      for (let i = 0; i < o.runs; i++) {
        log(`${fault.name}: run ${i + 1}/${o.runs}`);
        try {
          row.violations.push(...(await lab.check(await fault.run(lab))));
        } catch (err) {
          row.violations.push(`run ${i + 1}: ${(err as Error).message}`);
        } finally {
          await fault.after?.(lab).catch((err: Error) => row.violations.push(`run ${i + 1}: after: ${err.message}`));
          // A broken run may leave the worker down: bring it back for the next one.
          if (!lab.worker || lab.worker.exitCode !== null) await lab.startWorker();
        }
        row.runs++;
      }
      row.seconds = Math.round((Date.now() - t0) / 100) / 10;
      rows.push(row);
      log(`${fault.name}: ${row.runs} runs, ${row.violations.length} violations, ${row.seconds} s`);
    }
  } finally {
    await lab.close();
  }
  return rows;
}

export function formatMatrix(rows: FaultRow[]): string {
  const w = Math.max(...rows.map((r) => r.fault.length), 5);
  const lines = [
    `${'fault'.padEnd(w)} | runs | violations | seconds`,
    `${'-'.repeat(w)}-|------|------------|--------`,
  ];
  for (const r of rows)
    lines.push(
      `${r.fault.padEnd(w)} | ${String(r.runs).padStart(4)} | ${String(r.violations.length).padStart(10)} | ${String(r.seconds).padStart(7)}`,
    );
  for (const r of rows) for (const v of r.violations) lines.push(`  ${r.fault}: ${v}`);
  return lines.join('\n');
}

const RUNTIMES: FaultRuntime[] = ['emulator', 'emulator-v1', 'openhands'];

/** FAULT_RUNTIME picks one runtime; unset, every fault on the emulator, then the delivery faults on the real V1 server. */
async function main(): Promise<number> {
  const runs = Number(process.env.FAULT_RUNS ?? 5);
  const only = process.env.FAULT_ONLY ? new RegExp(process.env.FAULT_ONLY, 'i') : undefined;
  const chosen = process.env.FAULT_RUNTIME as FaultRuntime | undefined;
  if (chosen && !RUNTIMES.includes(chosen)) {
    console.error(`FAULT_RUNTIME: expected ${RUNTIMES.join(', ')} (got '${chosen}')`);
    return 2;
  }
  const runtimes: FaultRuntime[] = chosen ? [chosen] : ['emulator', 'openhands'];
  const t0 = Date.now();
  const rows: FaultRow[] = [];
  for (const runtime of runtimes) {
    const mine = await runFaultSuite({ runs, only, runtime });
    rows.push(...mine.map((r) => ({ ...r, fault: `${runtime}: ${r.fault}` })));
  }
  process.stdout.write(
    `${formatMatrix(rows)}\n\ntotal ${Math.round((Date.now() - t0) / 1000)} s, ${runs} runs per fault, settle bound ${SETTLE_BOUND_MS} ms\n`,
  );
  return rows.some((r) => r.violations.length) ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(2);
    },
  );
}
