// V8 heap growth for the primary, the process that holds the engine's waiting transactions.
// At a steady call rate the primary keeps ≈ 32 s of transactions (RFC 3261 Timer J, RFC 6026
// Timer L/M) alive; V8's default growth lets the old generation reach 2–4× that live data before
// a major GC, and RSS follows. A 50 % growth step keeps it nearer the live data for a few % more
// GC work (BENCHMARKS.md "The primary's heap growth"). V8 reads the flag each time it sizes the
// heap, so setting it at start, before the engine allocates, takes effect.
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_HEAP_GROWING_PERCENT = 50;

/**
 * The growth step from PEERGATE_HEAP_GROWING_PERCENT (an integer 1–1000; 0 leaves V8's own
 * sizing), else the default. Throws with the variable's name on anything else.
 */
export function heapGrowingPercent(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PEERGATE_HEAP_GROWING_PERCENT;
  if (raw === undefined || raw.trim() === '') return DEFAULT_HEAP_GROWING_PERCENT;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || n > 1000) {
    throw new Error(`PEERGATE_HEAP_GROWING_PERCENT must be an integer from 0 (V8's own sizing) to 1000, got "${raw}"`);
  }
  return n;
}

/** Apply the growth step to this process; returns it (0: nothing set). */
export function applyHeapGrowth(env: NodeJS.ProcessEnv = process.env): number {
  const pct = heapGrowingPercent(env);
  if (pct > 0) setFlagsFromString(`--heap-growing-percent=${pct}`);
  return pct;
}
