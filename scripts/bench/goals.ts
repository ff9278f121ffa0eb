// The goals issues 12, 21 and 24 set for starts, checked against one run's figures: reported as met or missed with the figure,
// never asserted (a benchmark on a busy 2-core machine is a measurement, not a test).

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  met: boolean;
}

export function goals(r: Record<string, any>): Goal[] {
  const out: Goal[] = [];
  const add = (
    goal: string,
    target: string,
    value: number | undefined,
    ok: (v: number) => boolean,
    unit: string,
    note?: string,
  ) =>
    value !== undefined &&
    Number.isFinite(value) &&
    out.push({ goal, target, measured: `${value}${unit}${note ? ` (${note})` : ''}`, met: ok(value) });
  add(
    'orchestration overhead, sequential, p50',
    '≤ 100 ms',
    r.timeToReady?.overhead?.sequential?.p50Ms,
    (v) => v <= 100,
    ' ms',
  );
  add('time to ready from the pool, emulator, p50', '≤ 150 ms', r.poolEmulator?.pooled?.p50, (v) => v <= 150, ' ms');
  // Issue 21: the current agent server (V1), the image phase 7b pools and phase 6's first real row.
  add(
    'time to ready from the pool, OpenHands agent server (V1), p50',
    '≤ 1500 ms',
    r.poolOpenhands?.pooled?.p50,
    (v) => v <= 1500,
    ' ms',
  );
  const v1 = Array.isArray(r.runtimes)
    ? r.runtimes.find((x: any) => String(x.image).startsWith('nestor-agent-server'))
    : undefined;
  add('cold start → ready, OpenHands agent server (V1), p50', '≤ 15000 ms', v1?.total?.p50, (v) => v <= 15000, ' ms');
  // Issue 24: against the same calls without Temporal (before: bare Docker create → start → remove, not the same work).
  const at8 = Array.isArray(r.throughput) ? r.throughput.find((x: any) => x.concurrency === 8) : undefined;
  // Where the machine's cores are the bound, the ratio cannot pass the CPU the same calls take over the CPU nestor's take.
  const ceiling =
    at8?.nestorCpuPerStartS > 0
      ? `at most ${Math.round((at8.baselineCpuPerStartS / at8.nestorCpuPerStartS) * 100) / 100}× on these cores: ` +
        `${at8.baselineCpuPerStartS} core-s a start without Temporal, ${at8.nestorCpuPerStartS} with`
      : undefined;
  add(
    'starts/s vs the same calls without Temporal, concurrency 8',
    '≥ 0.9×',
    at8?.baselinePerS === undefined ? undefined : at8.ratio,
    (v) => v >= 0.9,
    '×',
    ceiling,
  );
  const concurrent = (r.machinery ?? []).filter((x: any) => x.concurrency > 1);
  const machinery = concurrent.length ? Math.max(...concurrent.map((x: any) => x.perS)) : undefined;
  add('the machinery alone on the database file, best of 8/32/64', '≥ 25 starts/s', machinery, (v) => v >= 25, ' /s');
  return out;
}
