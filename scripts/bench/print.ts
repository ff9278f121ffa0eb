// The benchmark's figures as the tables docs/performance.md shows.
import { runtimeTable } from '../bench-runtimes';

export function printTable(r: Record<string, any>) {
  const t = r.timeToReady;
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const lines = [
    `Machine: ${r.machine}; image ${r.image}; ${r.date}`,
    '',
    row(['measure', 'p50', 'p95', 'p99']),
    row(['---', '---', '---', '---']),
    row(['time to ready, sequential (ms)', t.sequential.nestor.p50, t.sequential.nestor.p95, t.sequential.nestor.p99]),
    row([
      '  same calls without Temporal (ms)',
      t.sequential.baseline.p50,
      t.sequential.baseline.p95,
      t.sequential.baseline.p99,
    ]),
    row([
      'time to ready, 5 at a time (ms)',
      t.concurrent5.nestor.p50,
      t.concurrent5.nestor.p95,
      t.concurrent5.nestor.p99,
    ]),
    row([
      '  same calls without Temporal (ms)',
      t.concurrent5.baseline.p50,
      t.concurrent5.baseline.p95,
      t.concurrent5.baseline.p99,
    ]),
    row(['readiness-detection lag (ms)', t.detectionLagMs.p50, t.detectionLagMs.p95, t.detectionLagMs.p99]),
    row(['relay round trip (ms)', r.relay.roundTripMs.p50, r.relay.roundTripMs.p95, r.relay.roundTripMs.p99]),
    row([
      'relay sent → accepted by nested server (ms)',
      r.relay.sentToAcceptedMs.p50,
      r.relay.sentToAcceptedMs.p95,
      r.relay.sentToAcceptedMs.p99,
    ]),
    '',
    `Orchestration overhead, sequential: p50 ${t.overhead.sequential.p50Ms} ms (×${t.overhead.sequential.ratioP50}), p99 ${t.overhead.sequential.p99Ms} ms; ` +
      `5 at a time: p50 ${t.overhead.concurrent5.p50Ms} ms (×${t.overhead.concurrent5.ratioP50}), p99 ${t.overhead.concurrent5.p99Ms} ms`,
    '',
    row([
      'concurrency',
      'nestor starts/s',
      'the same calls without Temporal /s',
      'ratio',
      'machine CPU per start, nestor / without (core-s)',
    ]),
    row(['---', '---', '---', '---', '---']),
    ...r.throughput.map((x: any) =>
      row([
        x.concurrency,
        x.nestorPerS,
        x.baselinePerS ?? `${x.dockerPerS} (bare Docker)`,
        x.ratio,
        x.nestorCpuPerStartS === undefined ? '' : `${x.nestorCpuPerStartS} / ${x.baselineCpuPerStartS}`,
      ]),
    ),
    '',
    row(['machinery alone, concurrency', 'starts', 'starts/s', 'CPU cores busy: Temporal server', 'bench + worker']),
    row(['---', '---', '---', '---', '---']),
    ...r.machinery.map((x: any) =>
      row([concurrencyCell(x), x.starts, x.perS, x.cpu.temporalServer.cores, x.cpu.benchAndWorker.cores]),
    ),
    ...r.machineryInMemory.map((x: any) =>
      row([
        `${concurrencyCell(x)} (server without a database file)`,
        x.starts,
        x.perS,
        x.cpu.temporalServer.cores,
        x.cpu.benchAndWorker.cores,
      ]),
    ),
    '',
    `Worker RSS: ${r.memory.workerRssBeforeMb} MB idle, ${r.memory.workerRssWithIdleMb} MB with ${r.memory.conversations} running conversations (${r.memory.perConversationKb} KB each)`,
    '',
    `Where a sequential start's time goes (medians over ${r.profileSequential.runs} runs, from the histories): workflow start → RUNNING ${r.profileSequential.workflowStartToRunningMs} ms; ` +
      `activity execution ${JSON.stringify(r.profileSequential.activityExecutionMs)}; activity queue wait ${r.profileSequential.activityQueueWaitMs} ms; workflow tasks ${r.profileSequential.workflowTaskMs} ms`,
    '',
    `CPU during the sequential starts: Temporal server ${r.cpuSequentialStarts.temporalServer.cores} cores, worker ${r.cpuSequentialStarts.worker.cores}, bench client ${r.cpuSequentialStarts.bench.cores} (over ${r.cpuSequentialStarts.wallS} s)`,
    `Where a message's time goes (medians, from the history): ${JSON.stringify(r.relay.profile)}`,
    '',
    ...(r.runtimes ? ['Runtime images (phase 6):', '', runtimeTable(r.runtimes), ''] : []),
    ...poolLines(r),
    `Written: bench/results.json, bench/results.svg`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}


/** Phase 7: warm pools beside cold, the burst, and the goals. */
function poolLines(r: Record<string, any>): string[] {
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const pools = [r.poolEmulator, r.poolOpenhands].filter(Boolean);
  if (pools.length === 0) return [];
  const lines = [
    'Warm pools (phase 7): time to ready through nestor, cold and claimed from the pool',
    '',
    row(['image', 'pool size', 'fill (ms)', 'cold p50 / p95 (ms)', 'from the pool p50 / p95 (ms)', 'pooled']),
    row(['---', '---', '---', '---', '---', '---']),
    ...pools.map((p: any) =>
      row([p.image, p.size, p.fillMs, `${p.cold.p50} / ${p.cold.p95}`, `${p.pooled.p50} / ${p.pooled.p95}`, p.pooledShare]),
    ),
    '',
  ];
  for (const p of pools.filter((x: any) => x.pooledParts)) {
    lines.push(`Where a start from the pool spends its time (${p.image}; medians of each part, from the histories):`, '');
    lines.push(row(['part', 'p50 (ms)']), row(['---', '---']));
    for (const x of p.pooledParts) lines.push(row([x.part, x.p50Ms]));
    lines.push('');
  }
  for (const p of pools.filter((x: any) => x.burst)) {
    const b = p.burst;
    lines.push(
      `Burst of ${b.starts} at once against a full pool of ${p.size} (${p.image}): ${b.fromPool} from the pool (p50 ${b.pooledMs.p50} ms), ` +
        `${b.starts - b.fromPool} cold (p50 ${b.coldMs.p50} ms); the pool was full again ${b.refillMs} ms after the last answer`,
      '',
    );
  }
  if (r.goals?.length) {
    lines.push(row(['goal', 'target', 'measured', '']), row(['---', '---', '---', '---']));
    for (const g of r.goals) lines.push(row([g.goal, g.target, g.measured, g.met ? 'met' : 'missed']));
    lines.push('');
  }
  return lines;
}

/** A machinery row's concurrency; the sequential row (1) with its p50 time to RUNNING. */
function concurrencyCell(x: { concurrency: number; p50Ms?: number }): string {
  return x.p50Ms === undefined ? String(x.concurrency) : `${x.concurrency} (p50 ${Math.round(x.p50Ms)} ms)`;
}
