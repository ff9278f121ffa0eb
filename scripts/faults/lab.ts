// The fault suite's lab: the shared lab (a dev server, a `nestor worker` process, a client) plus a local OAuth
// endpoint, Docker's own container events, restarts of the server and of Docker, and the invariants' checks.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { Lab, type LabOptions, type LogRecord } from '../lab/lab';
import { ConversationError } from '../../src/conversation/client';
import { PROJECT_ROOT } from '../../src/config';
import { NestedClient } from '../../src/nested/client';
import { AgentServerClient, messageOf } from '../../src/nested/agent-server';
import { DockerRuntimeProvider } from '../../src/runtime/docker';
import { RUNTIME_IMAGES } from '../../src/runtime/image-manifest';
import { LABELS, WORKFLOW_TYPES, conversationWorkflowId, poolWorkflowId } from '../../src/shared/constants';
import type { AgentLoopInfo, MessageAck, StartConversationRequest } from '../../src/shared/schemas';
import { waitReadyUpdate } from '../../src/conversation/messages';
import type { ReapResult } from '../../src/reaper/workflow';
import { startLlmStandIn, type LlmStandIn } from '../../src/llm-stand-in/server';
import { FaultProxy, PROXY_ENV } from './proxy';
import { LOCK_LABEL } from '../../src/runtime/pool-locks';
import { slotsQuery, userSessionsWorkflowId } from '../../src/user-sessions/messages';
import { containerName, poolNameFor } from '../../src/runtime/container-spec';
import { drainPool } from '../../src/sandbox-pools/pools';
import { RotatingTokenEndpoint } from './oauth';

/**
 * What the worker's sandboxes run: the emulator speaking V0 (its fault knobs in the sandbox's environment) or V1, or
 * the real current agent server (`openhands`), its faults injected by the fault proxy and its agent's LLM the stand-in.
 */
export type FaultRuntime = 'emulator' | 'emulator-v1' | 'openhands';

/** Invariant 3's bound: from the fault clearing to RUNNING, STOPPED or ERROR. */
export const SETTLE_BOUND_MS = 120_000;

export interface FaultRow {
  fault: string;
  runs: number;
  violations: string[];
  seconds: number;
}

export interface Sent {
  content: string;
  messageId: string;
  ack?: MessageAck;
}
export interface Conv {
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;
export const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;

/** The shared lab (scripts/lab), plus what faults need: a local OAuth endpoint, Docker's events, restarts, invariants. */
/**
 * The user messages of a conversation, oldest first, from its server in its protocol. The server may still fail reads
 * now and then (a 5xx fault): read as patiently as nestor does.
 */
async function userMessagesOf(
  live: AgentLoopInfo,
  id: string,
): Promise<Array<{ id: number | string; content: string }>> {
  if (live.protocol === 'v1') {
    const c = AgentServerClient.forConversation(live, { retries: 10 });
    return (await c.allEvents(live.nestedConversationId!, { kind: 'MessageEvent', source: 'user' })).map((e) => ({
      id: e.id,
      content: messageOf(e).text,
    }));
  }
  return (await NestedClient.forConversation(live, { retries: 10 }).allEvents(id))
    .filter((e) => e.source === 'user' && e.action === 'message')
    .map((e) => ({ id: e.id, content: String(e.args?.content) }));
}

export class FaultLab extends Lab {
  /** The git provider: refresh tokens rotate, and one used again after its rotation is a violation. */
  private oauth!: RotatingTokenEndpoint;
  readonly docker = new Docker();
  /** Live containers per conversation, from Docker's event stream, and the most seen at once. */
  private readonly live = new Map<string, { now: number; most: number }>();
  /** The containers this lab's worker made, and the containers that ever mounted each volume. */
  private readonly ours = new Set<string>();
  private readonly mounts = new Map<string, Set<string>>();
  private readonly sharedReported = new Set<string>();
  private readonly readyWaiters = new Set<() => void>();
  /** Added to the worker's environment, for faults that need it (a warm pool). */
  workerEnv: Record<string, string> = {};
  private events?: NodeJS.ReadableStream;
  runtime: FaultRuntime = 'emulator';
  /** The real server's faults (runtime `openhands`), and the LLM its agent answers with. */
  private proxy?: FaultProxy;
  private llm?: LlmStandIn;
  /** Where the fault proxy's counts of each run go (runFaultSuite's log). */
  injectedLog?: (s: string) => void;

  static override async create(o: Partial<LabOptions> & { runtime?: FaultRuntime } = {}): Promise<FaultLab> {
    const lab = new FaultLab(await Lab.config('faults'), { name: 'faults', logLevel: 'INFO' });
    lab.runtime = o.runtime ?? 'emulator';
    if (lab.runtime === 'openhands') {
      lab.proxy = await FaultProxy.start();
      lab.llm = await startLlmStandIn({
        host: await new DockerRuntimeProvider({ image: RUNTIME_IMAGES.openhands }).sandboxGateway(),
      });
    }
    lab.oauth = await RotatingTokenEndpoint.start();
    await lab.watchContainers();
    await lab.startServer();
    await lab.startWorker();
    return lab;
  }

  /**
   * Count each conversation's containers from Docker's create and destroy events. The stream ends with the daemon
   * (restartDocker), and is opened again with `since`, so no event in between is lost.
   */
  async watchContainers(since?: number): Promise<void> {
    // Volume events carry no labels of ours: every container and mount event, ours picked out below.
    const stream = (await this.docker.getEvents({
      since,
      filters: { type: ['container', 'volume'], event: ['create', 'destroy', 'rename', 'mount'] },
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
      const e = JSON.parse(line) as {
        Type: string;
        Action: string;
        time: number;
        Actor: { ID: string; Attributes: Record<string, string> };
      };
      last = e.time;
      const a = e.Actor.Attributes;
      if (e.Type === 'volume') {
        // Which of our containers mounted which volume: one volume, one container, ever.
        if (this.ours.has(a.container))
          this.mounts.set(e.Actor.ID, (this.mounts.get(e.Actor.ID) ?? new Set()).add(a.container));
        return;
      }
      if (a[LABELS.owner] !== this.owner) return;
      if (e.Action === 'create') this.ours.add(e.Actor.ID);
      if (e.Action === 'rename') {
        // A pool member made claimable (booting → ready): what the pool faults wait for.
        if (/--ready-/.test(a.name ?? '')) for (const w of [...this.readyWaiters]) w();
        return;
      }
      // A pool member (no conversation yet) or a claim's lock (never started) is no sandbox of a conversation.
      const id = a[LABELS.conversationId];
      if (!id || a[LOCK_LABEL]) return;
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

  /**
   * The worker as every fault needs it: short nested timeouts, the lab's OAuth endpoint, step log lines; with the real
   * server, its sandbox calls through the fault proxy.
   */
  override startWorker(extra: Record<string, string> = {}): Promise<ChildProcess> {
    return super.startWorker(this.workerEnvWith(extra));
  }

  /** A sandbox host's worker on the lab's engine (the lab's worker then runs with NESTOR_SANDBOX_HOSTS). */
  startHostWorker(hostId: string): Promise<ChildProcess> {
    return super.startWorker(this.workerEnvWith({ NESTOR_HOST_ID: hostId }), 'host-worker');
  }

  private workerEnvWith(extra: Record<string, string>): Record<string, string> {
    return {
      NESTOR_RUNTIME: this.runtime,
      NESTOR_NESTED_TIMEOUT_MS: '1500',
      NESTOR_GITHUB_TOKEN_URL: this.oauth.url,
      NESTOR_GITHUB_CLIENT_ID: 'faults',
      ...this.workerEnv,
      ...extra,
      ...(this.proxy && {
        [PROXY_ENV]: this.proxy.origin,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${join(__dirname, 'via-proxy.js')}`.trim(),
      }),
    };
  }

  killWorker(): Promise<void> {
    return this.stopWorker('SIGKILL');
  }

  stepStarted(id: string, steps: string[], timeoutMs = 60_000): Promise<LogRecord> {
    return this.waitLog(
      (r) => r.msg === 'step started' && r.conversationId === id && steps.includes(String(r.step)),
      timeoutMs,
    );
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
    o: { env?: Record<string, string>; tokens?: boolean; secrets?: boolean; pooled?: boolean } = {},
  ): StartConversationRequest {
    // The real server takes its faults from the proxy, and answers with the stand-in; the emulator from its env.
    const llm = this.llm && { llmModel: 'openai/stand-in', llmBaseUrl: this.llm.baseUrl };
    return {
      conversationId: id,
      userId: `user-${id}`,
      settings: {
        agent: 'CodeActAgent',
        llmModel: 'anthropic/claude-sonnet-4-5',
        llmApiKey: 'sk-faults',
        ...llm,
        // A pooled start asks for nothing a pooled sandbox lacks (extra env makes it cold).
        ...(!this.proxy && !o.pooled && { sandbox: { env: { CONVERSATION_START_DELAY_MS: '200', ...o.env } } }),
      },
      ...(o.tokens && {
        gitProviderTokens: {
          // Its own refresh token (it carries the conversation's ID), so a reuse is told apart per conversation.
          github: {
            token: 'ghp-old',
            refreshToken: `r1-${id}`,
            expiresAt: new Date(Date.now() + 60_000).toISOString(),
          },
        },
      }),
      ...(o.secrets && { customSecrets: [{ name: 'FAULT_SECRET', value: 'v' }] }),
      // The real server boots in seconds, more on a busy machine; the emulator at once.
      timeouts: this.llm
        ? { aliveTimeoutMs: 120_000, readyTimeoutMs: 120_000 }
        : { aliveTimeoutMs: 60_000, readyTimeoutMs: 60_000 },
    };
  }

  async start(id: string, o: Parameters<FaultLab['input']>[1] = {}): Promise<AgentLoopInfo | ConversationError> {
    this.proxy?.set(o.env ?? {});
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

  /** The conversation's sandboxes: labelled with it, or a claimed pool member (named after it); never a claim's lock. */
  async containers(id: string) {
    const all = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.owner}=${this.owner}`] },
    });
    return all.filter(
      (c) =>
        !c.Labels[LOCK_LABEL] && (c.Labels[LABELS.conversationId] === id || c.Names.includes(`/${containerName(id)}`)),
    );
  }

  reap(): Promise<ReapResult> {
    return this.persist(() =>
      this.client.client.workflow.execute<(i: { graceMs: number }) => Promise<ReapResult>>(
        WORKFLOW_TYPES.reapOrphanRuntimes,
        {
          taskQueue: this.taskQueue,
          workflowId: newId('reap'),
          args: [{ graceMs: 0 }],
        },
      ),
    );
  }

  /** Invariants 1–3 for these conversations, then close them, reap, and check nothing is left. */
  async check(convs: Conv[]): Promise<string[]> {
    if (this.proxy) {
      // The fault clears (the emulator's knobs stay with their sandbox, which closes below); say what it did.
      const n = Object.entries(this.proxy.injected).filter(([, c]) => c > 0);
      this.injectedLog?.(`fault proxy: ${n.map(([k, c]) => `${k} ${c}`).join(', ') || 'nothing seen'}`);
      this.proxy.set({});
    }
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
      // 4. credentials: a refresh token is used once; using it again means its rotation was lost
      for (const t of this.oauth.reusedBy(id))
        v.push(`${id}: refresh token ${t} used again after its rotation was handed out (the rotated token was lost)`);
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
            .executeUpdate(waitReadyUpdate, { args: [{ userId: this.input(id).userId }] }),
        );
        const users = (await userMessagesOf(live, id)).filter(
          (e) => !(typeof e.id === 'number' && conv.foreign?.has(e.id)),
        );
        const acked = conv.sent.filter((s) => s.ack);
        for (const s of acked) {
          const found = users.filter((e) => e.content === s.content);
          if (found.length !== 1) v.push(`${id}: message ${s.messageId} is in the events ${found.length} times`);
          const ackedAs = s.ack!.eventId ?? s.ack!.nestedEventId;
          if (ackedAs !== undefined && found[0] && found[0].id !== ackedAs)
            v.push(`${id}: message ${s.messageId} acknowledged as event ${ackedAs} but is event ${found[0].id}`);
        }
        const order = users.map((e) => e.content).filter((c) => acked.some((s) => s.content === c));
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
      // A conversation's (by label, or a claimed member by name), else a pool member (its pool's).
      const name = (c.Names[0] ?? '').replace(/^\//, '');
      const prefix = containerName('');
      const id = c.Labels[LABELS.conversationId] ?? (name.startsWith(prefix) ? name.slice(prefix.length) : undefined);
      const owner = id ? conversationWorkflowId(id) : c.Labels[LABELS.pool] && poolWorkflowId(c.Labels[LABELS.pool]);
      if (!owner || !(await this.runs(owner)))
        v.push(`container ${name} left after a reaper pass (${owner || 'no owner'} not running)`);
    }
    v.push(...(await this.leftVolumes()), ...this.sharedVolumes(), ...(await this.heldSlots(convs)));
    return v;
  }

  /** Whether a workflow runs now (a conversation's or a pool's). */
  private async runs(workflowId: string): Promise<boolean> {
    const d = await this.persist(() => this.client.client.workflow.getHandle(workflowId).describe()).catch(
      () => undefined,
    );
    return d?.status.name === 'RUNNING';
  }

  /** Volumes of this lab's service that no open conversation or running pool accounts for. */
  private async leftVolumes(): Promise<string[]> {
    const { Volumes } = await this.docker.listVolumes({ filters: { label: [`${LABELS.owner}=${this.owner}`] } });
    const v: string[] = [];
    for (const vol of Volumes ?? []) {
      const l = vol.Labels ?? {};
      const owner = l[LABELS.conversationId]
        ? conversationWorkflowId(l[LABELS.conversationId])
        : l[LABELS.pool] && poolWorkflowId(l[LABELS.pool]);
      if (!owner || !(await this.runs(owner)))
        v.push(`volume ${vol.Name} left (${owner || 'no owner label'} not running)`);
    }
    return v;
  }

  /** Any volume two containers ever mounted (one conversation's file store reaching another's sandbox). */
  private sharedVolumes(): string[] {
    const v: string[] = [];
    for (const [volume, containers] of this.mounts)
      if (containers.size > 1 && !this.sharedReported.has(volume)) {
        this.sharedReported.add(volume);
        v.push(`volume ${volume} was mounted by ${containers.size} containers`);
      }
    return v;
  }

  /** Slots still held for these conversations once they closed (their user's registry). */
  private async heldSlots(convs: Conv[]): Promise<string[]> {
    const v: string[] = [];
    for (const { id } of convs) {
      const registry = this.client.client.workflow.getHandle(userSessionsWorkflowId(this.input(id).userId));
      if (!(await this.runs(registry.workflowId))) continue;
      const slots = await this.persist(() => registry.query(slotsQuery));
      if (slots.some((s) => s.conversationId === id)) v.push(`${id}: its slot is still held after it closed`);
    }
    return v;
  }

  /** Resolves once `n` pool members have turned ready from now on (Docker's rename events). */
  membersReady(n: number, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      let seen = 0;
      const timer = setTimeout(() => {
        this.readyWaiters.delete(waiter);
        reject(new Error(`${n} pool members did not turn ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = () => {
        if (++seen < n) return;
        clearTimeout(timer);
        this.readyWaiters.delete(waiter);
        resolve();
      };
      this.readyWaiters.add(waiter);
    });
  }

  /** Drain the worker's warm pool (its unclaimed members removed, its workflow ended), if one runs. */
  async drainPool(): Promise<void> {
    const pool = poolNameFor(this.c.runtimeImage);
    if (await this.runs(poolWorkflowId(pool))) await this.persist(() => drainPool(this.client.client, pool));
  }

  /**
   * A second conversations worker on the lab's queue that reaches Temporal by another spelling of its address
   * (`localhost:<port>`), as a second machine of one deployment may: it must own the same sandboxes.
   */
  async startSecondWorker(): Promise<ChildProcess> {
    const first = this.worker;
    const second = await this.startWorker({ TEMPORAL_ADDRESS: this.server.address.replace('127.0.0.1', 'localhost') });
    this.worker = first;
    return second;
  }

  /** Stop everything; sandboxes a broken run left behind (its conversation still open) go with the lab. */
  override async close(): Promise<void> {
    const events = this.events;
    this.events = undefined;
    (events as { destroy?: () => void } | undefined)?.destroy?.();
    await this.killWorker();
    const provider = new DockerRuntimeProvider({ image: this.c.runtimeImage, owner: this.owner });
    for (const r of await provider.list()) await provider.remove(r.conversationId);
    this.oauth.close();
    await this.proxy?.close();
    await this.llm?.close();
    await super.close();
  }
}
