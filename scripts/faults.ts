// The fault suite (`npm run test:faults`): each fault injected repeatedly into a real dev server, a real `nestor worker`
// process, real Docker and the emulator image, with nestor's invariants checked after every run:
//   1. never two containers of one conversation at once (from Docker's own create/destroy events, so none is missed
//      between two looks); a RUNNING conversation has exactly one, running; after a reaper pass no labelled container
//      is left without an open conversation;
//   2. every acknowledged message is in the nested server's events exactly once (besides other writers' identical
//      ones), in the order it was sent, acknowledged with its own event ID;
//   3. every conversation reaches RUNNING or STOPPED within SETTLE_BOUND_MS of the fault clearing: every fault here
//      passes, so ERROR (even an explicit one) is a violation.
// Prints a matrix (fault × runs × violations) and exits non-zero on any violation. FAULT_RUNS sets the runs per
// fault (default 5); `npm test` runs every fault once (test/faults.test.ts).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { ConversationClient, ConversationError } from '../src/conversation/client';
import { generateKeySpec, parseEncryptionKeys } from '../src/codec/encryption';
import { nestorDataConverter } from '../src/codec/keys';
import { PROJECT_ROOT, loadConfig, type NestorConfig } from '../src/config';
import { startDevServer, type DevServer } from '../src/dev/server';
import { NestedClient } from '../src/nested/client';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { LABELS, WORKFLOW_TYPES, conversationWorkflowId } from '../src/shared/constants';
import type { AgentLoopInfo, MessageAck, StartConversationRequest } from '../src/shared/schemas';
import { waitReadyUpdate } from '../src/conversation/messages';
import type { ReapResult } from '../src/reaper/workflow';
import { runtimeOwner } from '../src/worker';
import { freePort } from '../test/helpers/net';

// The emulator's fault knobs and quick boots are what this script measures against; the real image has its own runs.
process.env.NESTOR_RUNTIME ??= 'emulator';

const CLI = join(PROJECT_ROOT, 'dist/src/cli.js');
/** Invariant 3's bound: from the fault clearing to RUNNING, STOPPED or ERROR. */
export const SETTLE_BOUND_MS = 120_000;
const TASK_QUEUE = 'faults';

export interface FaultRow {
  fault: string;
  runs: number;
  violations: string[];
  seconds: number;
}

interface Sent {
  content: string;
  messageId: string;
  ack?: MessageAck;
}
interface Conv {
  id: string;
  sent: Sent[];
  /** Events another writer posted to the nested server directly, by ID: identical content is not ours. */
  foreign?: Map<number, string>;
  /**
   * The fault never clears for this conversation (e.g. every settings call outlasts the timeout): it must end in an
   * explicit ERROR with lastError, within the bound. Every other conversation must come through (RUNNING or STOPPED).
   */
  mustFail?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;

type LogRecord = Record<string, unknown>;

/** One dev server (file database), one `nestor worker` child process, a client, a local OAuth endpoint. */
class Lab {
  server!: DevServer;
  client!: ConversationClient;
  worker?: ChildProcess;
  private readonly watchers = new Set<(r: LogRecord) => void>();
  private oauth!: Server;
  private oauthUrl = '';
  readonly docker = new Docker();
  readonly keySpec = generateKeySpec('faults');
  readonly owner: string;
  /** Live containers per conversation, from Docker's event stream, and the most seen at once. */
  private readonly live = new Map<string, { now: number; most: number }>();
  private events?: NodeJS.ReadableStream;

  private constructor(readonly c: NestorConfig) {
    this.owner = runtimeOwner(c);
  }

  static async create(): Promise<Lab> {
    const dataDir = mkdtempSync(join(tmpdir(), 'nestor-faults-'));
    // Its own dev server, whatever TEMPORAL_ADDRESS says: the worker it starts labels sandboxes with this address.
    const lab = new Lab({
      ...loadConfig(),
      temporalAddress: undefined,
      dataDir,
      temporalPort: await freePort(),
      uiPort: await freePort(),
    });
    lab.oauth = createHttpServer(async (req, res) => {
      for await (const _ of req);
      await sleep(300); // a slow token endpoint keeps refreshTokens in flight long enough to kill the worker in it
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ access_token: 'ghp-refreshed', refresh_token: 'r2', expires_in: 28_800 }));
    });
    lab.oauth.listen(0, '127.0.0.1');
    await once(lab.oauth, 'listening');
    lab.oauthUrl = `http://127.0.0.1:${(lab.oauth.address() as { port: number }).port}/token`;
    await lab.watchContainers();
    lab.server = await startDevServer(lab.c);
    lab.client = await ConversationClient.connect({
      address: lab.server.address,
      taskQueue: TASK_QUEUE,
      dataConverter: nestorDataConverter(parseEncryptionKeys(lab.keySpec)),
    });
    await lab.startWorker();
    return lab;
  }

  /**
   * Count each conversation's containers from Docker's create and destroy events. The stream ends with the daemon
   * (restartDocker), and is opened again with `since`, so no event in between is lost.
   */
  async watchContainers(since?: number): Promise<void> {
    const stream = (await this.docker.getEvents({
      since,
      filters: { type: ['container'], event: ['create', 'destroy'], label: [`${LABELS.owner}=${this.owner}`] },
    })) as NodeJS.ReadableStream;
    this.events = stream;
    let last = since ?? Math.floor(Date.now() / 1000);
    const lines = createInterface({ input: stream as never });
    const ended = () => {
      if (this.events !== stream) return;
      this.events = undefined;
      this.reopenEvents = () => this.watchContainers(last);
    };
    // The daemon going away (restartDocker) ends the stream, with or without an error.
    stream.on('error', ended);
    lines.on('error', ended);
    lines.on('line', (line) => {
      const e = JSON.parse(line) as { Action: string; time: number; Actor: { Attributes: Record<string, string> } };
      last = e.time;
      const id = e.Actor.Attributes[LABELS.conversationId];
      const c = this.live.get(id) ?? { now: 0, most: 0 };
      c.now += e.Action === 'create' ? 1 : -1;
      c.most = Math.max(c.most, c.now);
      this.live.set(id, c);
    });
    stream.on('end', ended);
    stream.on('close', ended);
  }
  private reopenEvents?: () => Promise<void>;

  /** The most containers this conversation had at once, as Docker reported them. */
  mostContainers(id: string): number {
    return this.live.get(id)?.most ?? 0;
  }

  async startWorker(): Promise<void> {
    const child = spawn('node', [CLI, 'worker'], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: this.server.address,
        NESTOR_TASK_QUEUE: TASK_QUEUE,
        NESTOR_ENCRYPTION_KEYS: this.keySpec,
        NESTOR_METRICS_PORT: '0',
        NESTOR_REAPER_INTERVAL_MS: '0',
        NESTOR_MAX_CONVERSATIONS_PER_USER: '1000',
        NESTOR_NESTED_TIMEOUT_MS: '1500',
        NESTOR_GITHUB_TOKEN_URL: this.oauthUrl,
        NESTOR_GITHUB_CLIENT_ID: 'faults',
        NESTOR_LOG_LEVEL: 'INFO',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.worker = child;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      let rec: LogRecord;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        return;
      }
      for (const w of this.watchers) w(rec);
    });
    await this.waitLog((r) => String(r.msg).startsWith('nestor worker on'), 60_000);
  }

  async killWorker(): Promise<void> {
    const w = this.worker;
    if (!w || w.exitCode !== null) return;
    const exited = once(w, 'exit');
    w.kill('SIGKILL');
    await exited;
  }

  /** The first worker log line from now on that matches. */
  waitLog(pred: (r: LogRecord) => boolean, timeoutMs: number): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watch);
        reject(new Error(`no matching worker log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const watch = (r: LogRecord) => {
        if (!pred(r)) return;
        clearTimeout(timer);
        this.watchers.delete(watch);
        resolve(r);
      };
      this.watchers.add(watch);
    });
  }

  stepStarted(id: string, steps: string[], timeoutMs = 60_000): Promise<LogRecord> {
    return this.waitLog(
      (r) => r.msg === 'step started' && r.conversationId === id && steps.includes(String(r.step)),
      timeoutMs,
    );
  }

  async restartServer(): Promise<void> {
    const p = this.server.process;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
    this.server = await startDevServer(this.c);
  }

  /** Restart the Docker daemon nestor's set-up started (scripts/ensure-docker.sh); never one it did not start. */
  async restartDocker(): Promise<void> {
    // This checkout's set-up, or another nestor checkout's on this machine (scripts/lib.sh: NESTOR_DOCKERD_PID).
    const pidFiles = [
      join(PROJECT_ROOT, '.nestor/dockerd.pid'),
      process.env.NESTOR_DOCKERD_PID ?? '/run/nestor-dockerd.pid',
    ];
    const running = execFileSync('pidof', ['dockerd'], { encoding: 'utf8' }).trim().split(/\s+/);
    const pid = pidFiles
      .map((f) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : ''))
      .find((p) => p && running.includes(p));
    if (!pid)
      throw new Error(
        'the Docker daemon was not started by scripts/ensure-docker.sh: the suite does not restart a daemon it does not own',
      );
    process.kill(Number(pid), 'SIGTERM');
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(Number(pid), 0);
        await sleep(100);
      } catch {
        break;
      }
    }
    execFileSync('bash', [join(PROJECT_ROOT, 'scripts/ensure-docker.sh')], { stdio: 'ignore' });
    for (let i = 0; i < 50 && this.events; i++) await sleep(100);
    const reopen = this.reopenEvents;
    this.reopenEvents = undefined;
    if (reopen) await reopen();
  }

  /** Retry a client call through transport failures (a restarting server); typed failures are answers, not faults. */
  async persist<T>(fn: () => Promise<T>, boundMs = SETTLE_BOUND_MS): Promise<T> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof ConversationError || Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  input(
    id: string,
    o: { env?: Record<string, string>; tokens?: boolean; secrets?: boolean } = {},
  ): StartConversationRequest {
    return {
      conversationId: id,
      userId: `user-${id}`,
      settings: {
        agent: 'CodeActAgent',
        llmModel: 'anthropic/claude-sonnet-4-5',
        llmApiKey: 'sk-faults',
        sandbox: { env: { CONVERSATION_START_DELAY_MS: '200', ...o.env } },
      },
      ...(o.tokens && {
        gitProviderTokens: {
          github: { token: 'ghp-old', refreshToken: 'r1', expiresAt: new Date(Date.now() + 60_000).toISOString() },
        },
      }),
      ...(o.secrets && { customSecrets: [{ name: 'FAULT_SECRET', value: 'v' }] }),
      timeouts: { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000 },
    };
  }

  async start(id: string, o: Parameters<Lab['input']>[1] = {}): Promise<AgentLoopInfo | ConversationError> {
    return this.persist(() => this.client.start(this.input(id, o))).catch((err) => {
      if (err instanceof ConversationError) return err; // an explicit failure: invariant 3 allows it
      throw err;
    });
  }

  /** Send one message, retrying through server restarts with the same message ID; a typed failure leaves it unacknowledged. */
  async send(conv: Conv, content: string): Promise<void> {
    const s: Sent = { content, messageId: `${conv.id}-${conv.sent.length}` };
    conv.sent.push(s);
    try {
      s.ack = await this.persist(() => this.client.sendMessage(conv.id, { content, messageId: s.messageId }));
    } catch (err) {
      if (!(err instanceof ConversationError)) throw err;
    }
  }

  containers(id: string) {
    return this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.conversationId}=${id}`, `${LABELS.owner}=${this.owner}`] },
    });
  }

  reap(): Promise<ReapResult> {
    return this.persist(() =>
      this.client.client.workflow.execute<(i: { graceMs: number }) => Promise<ReapResult>>(
        WORKFLOW_TYPES.reapOrphanRuntimes,
        {
          taskQueue: TASK_QUEUE,
          workflowId: newId('reap'),
          args: [{ graceMs: 0 }],
        },
      ),
    );
  }

  /** Invariants 1–3 for these conversations, then close them, reap, and check nothing is left. */
  async check(convs: Conv[]): Promise<string[]> {
    const v: string[] = [];
    for (const conv of convs) {
      const { id } = conv;
      // 3. settles within the bound
      const deadline = Date.now() + SETTLE_BOUND_MS;
      let info = await this.persist(() => this.client.status(id));
      while (!['RUNNING', 'STOPPED', 'ERROR'].includes(info.status) && Date.now() < deadline) {
        await sleep(250);
        info = await this.persist(() => this.client.status(id));
      }
      if (!['RUNNING', 'STOPPED', 'ERROR'].includes(info.status))
        v.push(`${id}: still ${info.status} (${info.step}) ${SETTLE_BOUND_MS} ms after the fault cleared`);
      if (conv.mustFail && (info.status !== 'ERROR' || !info.lastError))
        v.push(
          `${id}: ${info.status} (lastError ${info.lastError ? 'set' : 'missing'}) under a fault that never clears: expected an explicit ERROR`,
        );
      if (!conv.mustFail && info.status === 'ERROR')
        v.push(
          `${id}: ERROR after a transient fault (${info.lastError?.type ?? 'no lastError'} at ${info.lastError?.step}: ${info.lastError?.message})`,
        );
      // 1. containers
      const cs = await this.containers(id);
      if (cs.length > 1) v.push(`${id}: ${cs.length} containers`);
      if (this.mostContainers(id) > 1)
        v.push(`${id}: Docker reported ${this.mostContainers(id)} of its containers at once`);
      if (info.status === 'RUNNING' && (cs.length !== 1 || cs[0].State !== 'running'))
        v.push(`${id}: RUNNING with ${cs.length} containers (${cs.map((c) => c.State).join(', ')})`);
      // 2. messages
      if (info.status === 'RUNNING') {
        const live = await this.persist(() =>
          this.client.client.workflow
            .getHandle(conversationWorkflowId(id))
            .executeUpdate(waitReadyUpdate, { args: [{}] }),
        );
        // The nested server may still fail reads now and then (a 5xx fault): read as patiently as nestor does.
        const nested = NestedClient.forConversation(live, { retries: 10 });
        const users = (await nested.allEvents(id)).filter(
          (e) => e.source === 'user' && e.action === 'message' && !conv.foreign?.has(e.id),
        );
        const acked = conv.sent.filter((s) => s.ack);
        for (const s of acked) {
          const found = users.filter((e) => e.args?.content === s.content);
          if (found.length !== 1) v.push(`${id}: message ${s.messageId} is in the events ${found.length} times`);
          if (s.ack!.eventId !== undefined && found[0] && found[0].id !== s.ack!.eventId)
            v.push(`${id}: message ${s.messageId} acknowledged as event ${s.ack!.eventId} but is event ${found[0].id}`);
        }
        const order = users.map((e) => e.args?.content).filter((c) => acked.some((s) => s.content === c));
        const expected = acked.map((s) => s.content);
        if (JSON.stringify([...new Set(order)]) !== JSON.stringify(expected))
          v.push(`${id}: messages out of order: ${JSON.stringify(order)} vs sent ${JSON.stringify(expected)}`);
      }
      if (info.status !== 'STOPPED' && info.status !== 'ERROR') {
        await this.persist(() => this.client.close(id, 'fault run over')).catch((err) =>
          v.push(`${id}: close failed: ${(err as Error).message}`),
        );
      }
    }
    await this.reap();
    for (const c of await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.owner}=${this.owner}`] },
    })) {
      const id = c.Labels[LABELS.conversationId];
      const status = await this.persist(() =>
        this.client.client.workflow.getHandle(conversationWorkflowId(id)).describe(),
      ).then(
        (d) => d.status.name,
        () => 'NOT_FOUND',
      );
      if (status !== 'RUNNING') v.push(`${id}: container ${c.Names[0]} left after a reaper pass (workflow ${status})`);
    }
    return v;
  }

  /** Stop everything; sandboxes a broken run left behind (its conversation still open) go with the lab. */
  async close(): Promise<void> {
    const events = this.events;
    this.events = undefined;
    (events as { destroy?: () => void } | undefined)?.destroy?.();
    await this.killWorker();
    const provider = new DockerRuntimeProvider({ image: this.c.runtimeImage, owner: this.owner });
    for (const r of await provider.list()) await provider.remove(r.conversationId);
    await this.client.closeConnection();
    await this.server.stop();
    this.oauth.close();
    rmSync(this.c.dataDir, { recursive: true, force: true });
  }
}

// ---------- the faults ----------

const STALLS = {
  FAULT_SETTINGS_STALL_MS: '300',
  FAULT_CREATE_CONVERSATION_STALL_MS: '300',
  CONVERSATION_START_DELAY_MS: '800',
};

type Fault = { name: string; run: (lab: Lab) => Promise<Conv[]> };

/**
 * Start a conversation, inject the fault as soon as the worker logs that `step` started for it, then (unless the start
 * ended in an explicit ERROR) send two messages.
 */
const duringStart = (
  name: string,
  step: string,
  inject: (lab: Lab, id: string) => Promise<void>,
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

const killAndRestartWorker = async (lab: Lab) => {
  await lab.killWorker();
  await lab.startWorker();
};

const FAULTS: Fault[] = [
  ...[
    'acquireSession',
    'createRuntime',
    'refreshTokens',
    'configureNestedServer',
    'createConversation',
    'waitForReady',
  ].map((step) => duringStart(`worker SIGKILL during ${step}`, step, killAndRestartWorker)),
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
];

export const FAULT_NAMES = FAULTS.map((f) => f.name);

export async function runFaultSuite(o: {
  runs: number;
  only?: RegExp;
  log?: (s: string) => void;
}): Promise<FaultRow[]> {
  const log = o.log ?? ((s: string) => process.stderr.write(`[faults] ${s}\n`));
  const lab = await Lab.create();
  const rows: FaultRow[] = [];
  try {
    for (const fault of FAULTS.filter((f) => !o.only || o.only.test(f.name))) {
      const row: FaultRow = { fault: fault.name, runs: 0, violations: [], seconds: 0 };
      const t0 = Date.now();
      for (let i = 0; i < o.runs; i++) {
        log(`${fault.name}: run ${i + 1}/${o.runs}`);
        try {
          row.violations.push(...(await lab.check(await fault.run(lab))));
        } catch (err) {
          row.violations.push(`run ${i + 1}: ${(err as Error).message}`);
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

if (require.main === module) {
  const runs = Number(process.env.FAULT_RUNS ?? 5);
  const only = process.env.FAULT_ONLY ? new RegExp(process.env.FAULT_ONLY, 'i') : undefined;
  const t0 = Date.now();
  runFaultSuite({ runs, only }).then(
    (rows) => {
      process.stdout.write(
        `${formatMatrix(rows)}\n\ntotal ${Math.round((Date.now() - t0) / 1000)} s, ${runs} runs per fault, settle bound ${SETTLE_BOUND_MS} ms\n`,
      );
      process.exit(rows.some((r) => r.violations.length) ? 1 : 0);
    },
    (err) => {
      console.error(err);
      process.exit(2);
    },
  );
}
