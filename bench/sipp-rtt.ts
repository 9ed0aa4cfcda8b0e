// SIPp's setup times (INVITE → 200, its rtd) from the -trace_rtt files a run leaves, and their
// quantiles: one reader for every bench that quotes a p50 or p99.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Rtt { atMs: number; ms: number }

/** (time since SIPp's start when the 200 arrived, setup ms) from -trace_rtt files in `dir`. */
export function rtts(dir: string): Rtt[] {
  const out: Rtt[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('_rtt.csv'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n').slice(1)) {
      const [at, ms] = line.split(';').map(Number);
      if (Number.isFinite(at) && Number.isFinite(ms) && line.trim()) out.push({ atMs: at!, ms: ms! });
    }
  }
  return out;
}

/** The q-quantile of xs, in whole ms (SIPp writes some times as 264.001); NaN for none. */
export function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
}
