// bench/results.svg: the benchmark's figures as bar panels, nestor beside its references.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config';
import { type Stats } from '../stats';
import type { MachineryRow } from './measure';


const OUT_DIR = join(PROJECT_ROOT, 'bench');

// ---------- the chart ----------

export interface Bar {
  label: string;
  value: number;
  kind: 'nestor' | 'reference';
}
export function svgChart(
  panels: Array<{ title: string; unit: string; bars: Bar[] }>,
  caption: string,
  legend = true,
): string {
  const W = 760;
  const LABEL = 230;
  const BAR_H = 18;
  const GAP = 6;
  let y = 62;
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${p.title} (${p.unit})</text>`);
    y += 10;
    const max = Math.max(...p.bars.map((b) => b.value), 1e-9);
    for (const b of p.bars) {
      const w = Math.max(1, ((W - LABEL - 90) * b.value) / max);
      parts.push(
        `<text x="${LABEL - 6}" y="${y + BAR_H - 5}" text-anchor="end">${b.label}</text>`,
        `<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${b.kind === 'nestor' ? '#3b6fd4' : '#a0a6b0'}"/>`,
        `<text x="${(LABEL + w + 6).toFixed(1)}" y="${y + BAR_H - 5}">${b.value}</text>`,
      );
      y += BAR_H + GAP;
    }
    y += 22;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 20}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">nestor benchmark — ${caption}</text>`,
    ...(legend
      ? [
          `<rect x="10" y="30" width="12" height="12" fill="#3b6fd4"/><text x="27" y="40">nestor</text>`,
          `<rect x="90" y="30" width="12" height="12" fill="#a0a6b0"/><text x="107" y="40">reference: the same calls without Temporal, or bare Docker</text>`,
        ]
      : []),
    ...parts,
    '</svg>',
  ].join('\n');
}

/** bench/results.svg from the results (`node dist/scripts/bench.js --chart` redraws it, and reprints the tables). */
export function drawChart(results: Record<string, any>): void {
  const machinery = results.machinery as MachineryRow[];
  const throughput = results.throughput as Array<{ concurrency: number; nestorPerS: number; baselinePerS?: number; dockerPerS?: number }>;
  const machine = results.machine as string;
  const t = results.timeToReady as {
    sequential: { nestor: Stats; baseline: Stats };
    concurrent5: { nestor: Stats; baseline: Stats };
    detectionLagMs: Stats;
  };
  const relay = results.relay as { roundTripMs: Stats; sentToAcceptedMs: Stats };
  writeFileSync(
    join(OUT_DIR, 'results.svg'),
    svgChart(
      [
        {
          title: 'Time to ready',
          unit: 'ms',
          bars: [
            { label: 'sequential p50', value: t.sequential.nestor.p50, kind: 'nestor' },
            { label: 'sequential p50, no Temporal', value: t.sequential.baseline.p50, kind: 'reference' },
            { label: 'sequential p99', value: t.sequential.nestor.p99, kind: 'nestor' },
            { label: 'sequential p99, no Temporal', value: t.sequential.baseline.p99, kind: 'reference' },
            { label: '5 at a time p50', value: t.concurrent5.nestor.p50, kind: 'nestor' },
            { label: '5 at a time p50, no Temporal', value: t.concurrent5.baseline.p50, kind: 'reference' },
            { label: '5 at a time p99', value: t.concurrent5.nestor.p99, kind: 'nestor' },
            { label: '5 at a time p99, no Temporal', value: t.concurrent5.baseline.p99, kind: 'reference' },
          ],
        },
        {
          title: 'Starts per second',
          unit: '/s',
          bars: throughput.flatMap((r) => [
            { label: `nestor, concurrency ${r.concurrency}`, value: r.nestorPerS, kind: 'nestor' as const },
            // Runs before issue 24 compared with bare Docker create → start → remove.
            r.baselinePerS === undefined
              ? { label: `bare Docker, concurrency ${r.concurrency}`, value: r.dockerPerS ?? 0, kind: 'reference' as const }
              : { label: `no Temporal, concurrency ${r.concurrency}`, value: r.baselinePerS, kind: 'reference' as const },
          ]),
        },
        {
          title: 'Machinery alone (no containers)',
          unit: 'starts/s',
          bars: [
            ...machinery.map((m) => ({
              label: `concurrency ${m.concurrency}`,
              value: m.perS,
              kind: 'nestor' as const,
            })),
            ...(results.machineryInMemory as MachineryRow[]).map((m) => ({
              label: `concurrency ${m.concurrency}, no db file`,
              value: m.perS,
              kind: 'nestor' as const,
            })),
          ],
        },
        ...poolPanels(results),
        {
          title: `Message relay (${relay.roundTripMs.n} messages) and readiness-detection lag`,
          unit: 'ms',
          bars: [
            { label: 'relay round trip p50', value: relay.roundTripMs.p50, kind: 'nestor' },
            { label: 'relay round trip p99', value: relay.roundTripMs.p99, kind: 'nestor' },
            { label: 'sent → accepted p50', value: relay.sentToAcceptedMs.p50, kind: 'nestor' },
            { label: 'sent → accepted p99', value: relay.sentToAcceptedMs.p99, kind: 'nestor' },
            { label: 'detection lag p50', value: t.detectionLagMs.p50, kind: 'nestor' },
            { label: 'detection lag p99', value: t.detectionLagMs.p99, kind: 'nestor' },
          ],
        },
      ],
      machine,
    ),
  );
}


/** Warm pools beside cold (p50), and this run beside the previous one the benchmark found in bench/results.json. */
function poolPanels(results: Record<string, any>): Array<{ title: string; unit: string; bars: Bar[] }> {
  const panels: Array<{ title: string; unit: string; bars: Bar[] }> = [];
  const pools = [results.poolEmulator, results.poolOpenhands].filter(Boolean);
  if (pools.length > 0)
    panels.push({
      title: 'Time to ready through nestor, p50: from the warm pool vs cold',
      unit: 'ms',
      bars: pools.flatMap((p: any) => [
        { label: `${p.image}, from the pool`, value: p.pooled.p50, kind: 'nestor' as const },
        { label: `${p.image}, cold`, value: p.cold.p50, kind: 'reference' as const },
      ]),
    });
  const prev = results.previous;
  if (prev) {
    const now = previousFigures(results);
    panels.push({
      title: `This run vs the previous one (${String(prev.date).slice(0, 10)}, grey)`,
      unit: 'ms or /s',
      bars: Object.keys(now).flatMap((k) => [
        { label: `${k}, now`, value: now[k], kind: 'nestor' as const },
        { label: `${k}, before`, value: prev[k], kind: 'reference' as const },
      ]),
    });
  }
  return panels;
}

/** The figures compared run to run (kept in results.previous by the next run). */
export function previousFigures(r: Record<string, any>): Record<string, number> {
  return {
    'overhead p50 (ms)': r.timeToReady.overhead.sequential.p50Ms,
    'time to ready p50 (ms)': r.timeToReady.sequential.nestor.p50,
    'starts/s at 8': r.throughput.find((x: any) => x.concurrency === 8)?.nestorPerS,
    'machinery at 8 (/s)': r.machinery.find((x: any) => x.concurrency === 8)?.perS,
  };
}
