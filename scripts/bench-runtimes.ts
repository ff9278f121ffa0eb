// Phase 6 of `npm run bench`: the real OpenHands images (the current agent server and the V0 server) beside the
// emulator. For each image, cold starts one after
// another through the start path's own activity code (createRuntime, configureNestedServer, createConversation,
// waitForReady), each segment timed; then the memory of a live conversation's sandbox once its agent has answered a
// message (the OpenHands server, its action server and Jupyter kernel are all up by then). The orchestration overhead
// on top of these calls is phases 1–2's. `node dist/scripts/bench-runtimes.js` runs this phase alone.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { PROJECT_ROOT } from '../src/config';
import { createNestedActivities } from '../src/conversation/activities/nested';
import { createRuntimeActivities } from '../src/conversation/activities/runtime';
import { startLlmStandIn } from '../src/llm-stand-in/server';
import { NestedClient } from '../src/nested/client';
import { AgentServerClient, agentConversationId, messageOf } from '../src/nested/agent-server';
import type { NestedTarget } from '../src/conversation/activities/nested';
import { containerName } from '../src/runtime/container-spec';
import { DockerRuntimeProvider } from '../src/runtime/docker';
import { RUNTIME_IMAGES, type RuntimeName } from '../src/runtime/image-manifest';
import { stats, type Stats } from './stats';

/** Cold starts per image. @default 5 */
const N_STARTS = Number(process.env.BENCH_RUNTIME_STARTS ?? 5);

export interface RuntimeFigures {
  image: string;
  /** Start → ready, and its three segments (ms). */
  total: Stats;
  containerToAlive: Stats;
  nestedSetup: Stats;
  createToReady: Stats;
  /** Memory of one live conversation's sandbox after its agent answered (MiB, page cache excluded). */
  liveSandboxMiB: number;
}

/** The container's memory in use, without page cache (what `docker stats` shows). */
async function memoryMiB(docker: Docker, name: string): Promise<number> {
  const s = (await docker.getContainer(name).stats({ stream: false })) as unknown as {
    memory_stats: { usage?: number; stats?: { inactive_file?: number; total_inactive_file?: number; cache?: number } };
  };
  const m = s.memory_stats;
  const cache = m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? m.stats?.cache ?? 0;
  return Math.round(((m.usage ?? 0) - cache) / 2 ** 20);
}

/** Whether the agent answered a message matching `re` (either protocol). */
async function answered(t: NestedTarget, re: RegExp): Promise<boolean> {
  if (t.protocol === 'v1') {
    const c = new AgentServerClient({ baseUrl: t.url, sessionApiKey: t.sessionApiKey, timeoutMs: 30_000 });
    const page = await c.searchEvents(agentConversationId(t.conversationId), { kind: 'MessageEvent', source: 'agent' });
    return page.items.some((e) => re.test(messageOf(e).text));
  }
  const c = new NestedClient({ baseUrl: t.url, sessionApiKey: t.sessionApiKey, timeoutMs: 30_000 });
  return (await c.allEvents(t.conversationId)).some(
    (e) => e.source === 'agent' && e.action === 'message' && re.test(String(e.args?.content)),
  );
}

async function measure(runtime: RuntimeName, llmBaseUrl: string, log: (m: string) => void): Promise<RuntimeFigures> {
  const image = RUNTIME_IMAGES[runtime];
  const provider = new DockerRuntimeProvider({ image, owner: 'bench-runtimes' });
  const rt = createRuntimeActivities({ runtime: provider });
  const nested = createNestedActivities({ requestTimeoutMs: 30_000 });
  const settings = { agent: 'CodeActAgent', llmModel: 'openai/stand-in', llmApiKey: 'sk-bench', llmBaseUrl };
  const seg = { total: [] as number[], alive: [] as number[], setup: [] as number[], ready: [] as number[] };
  let liveSandboxMiB = 0;
  for (let i = 0; i < N_STARTS; i++) {
    const conversationId = `bench-rt-${runtime}-${randomBytes(4).toString('hex')}`;
    try {
      const t0 = performance.now();
      const created = await rt.createRuntime({ conversationId, userId: 'bench', fromPool: false });
      const t1 = performance.now();
      const target: NestedTarget = {
        url: created.url,
        sessionApiKey: created.sessionApiKey,
        conversationId,
        ...(created.protocol === 'v1' && { protocol: 'v1' as const }),
      };
      await nested.configureNestedServer({ ...target, settings });
      const t2 = performance.now();
      await nested.createConversation({ ...target, settings });
      await nested.waitForReady({ ...target, readyTimeoutMs: 300_000 });
      const t3 = performance.now();
      seg.total.push(t3 - t0);
      seg.alive.push(t1 - t0);
      seg.setup.push(t2 - t1);
      seg.ready.push(t3 - t2);
      log(`  ${runtime} start ${i + 1}/${N_STARTS}: ${Math.round(t3 - t0)} ms`);
      if (i === 0) {
        // A live conversation: one message, answered by the agent (the emulator's echo, or OpenHands with the stand-in).
        await nested.sendEvent({ ...target, content: 'measure me', afterEventId: -1 });
        const deadline = Date.now() + 120_000;
        while (!(await answered(target, /measure me/))) {
          if (Date.now() > deadline) throw new Error(`${runtime}: the agent never answered`);
          await new Promise((r) => setTimeout(r, 500));
        }
        await new Promise((r) => setTimeout(r, 3000)); // let it settle
        liveSandboxMiB = await memoryMiB(provider.docker, containerName(conversationId));
      }
    } finally {
      await provider.remove(conversationId);
    }
  }
  return {
    image,
    total: stats(seg.total),
    containerToAlive: stats(seg.alive),
    nestedSetup: stats(seg.setup),
    createToReady: stats(seg.ready),
    liveSandboxMiB,
  };
}

/** Both images, the emulator first; the LLM stand-in is the model of both. */
export async function runtimeFigures(
  log: (m: string) => void = (m) => process.stderr.write(`${m}\n`),
): Promise<RuntimeFigures[]> {
  const gateway = await new DockerRuntimeProvider({ image: RUNTIME_IMAGES.emulator }).sandboxGateway();
  const llm = await startLlmStandIn({ host: gateway });
  try {
    const out: RuntimeFigures[] = [];
    for (const runtime of ['emulator', 'openhands', 'openhands-v0'] as const)
      out.push(await measure(runtime, llm.baseUrl, log));
    return out;
  } finally {
    await llm.close();
  }
}

/** The phase's table, in the format of docs/performance.md. */
export function runtimeTable(rows: RuntimeFigures[]): string {
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const pair = (s: Stats) => `${Math.round(s.p50)} / ${Math.round(s.p95)}`;
  return [
    row([
      'image',
      `cold start → ready, p50 / p95 (ms, n=${rows[0]?.total.n ?? 0})`,
      'container start → /alive',
      'nested set-up',
      'create → ready',
      'live sandbox memory (MiB)',
    ]),
    row(['---', '---', '---', '---', '---', '---']),
    ...rows.map((r) =>
      row([
        r.image,
        pair(r.total),
        pair(r.containerToAlive),
        pair(r.nestedSetup),
        pair(r.createToReady),
        r.liveSandboxMiB,
      ]),
    ),
  ].join('\n');
}

if (require.main === module) {
  runtimeFigures().then(
    (rows) => {
      // Kept beside the other phases' figures in bench/results.json.
      const file = join(PROJECT_ROOT, 'bench/results.json');
      const results = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
      writeFileSync(
        file,
        `${JSON.stringify({ ...results, runtimes: rows, runtimesDate: new Date().toISOString() }, null, 2)}\n`,
      );
      process.stdout.write(`${runtimeTable(rows)}\nWritten: bench/results.json (runtimes)\n`);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
