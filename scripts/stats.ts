// Percentiles for the benchmark's phases (scripts/bench.ts, scripts/bench-runtimes.ts).

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}
/** Nearest-rank percentiles. */
export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    n: s.length,
    p50: r(at(50)),
    p95: r(at(95)),
    p99: r(at(99)),
    mean: r(s.reduce((a, b) => a + b, 0) / s.length),
    min: r(s[0]),
    max: r(s[s.length - 1]),
  };
}
