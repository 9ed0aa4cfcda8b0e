// V8 heap growth for the primary, the process that holds the engine's waiting transactions.
// At a steady call rate the primary keeps ≈ 32 s of transactions (RFC 3261 Timer J, RFC 6026
// Timer L/M) alive; V8's default growth lets the old generation reach 2–4× that live data before
// a major GC, and RSS follows. A 50 % growth step keeps it nearer the live data for a few % more
// GC work (BENCHMARKS.md "The primary's heap growth"). V8 reads the flag each time it sizes the
// heap, so setting it at start, before the engine allocates, takes effect.
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_HEAP_GROWING_PERCENT = 50;

/**
 * Node options the primary is started with (the systemd unit's ExecStart, the container's
 * ENTRYPOINT, `make start`): V8 sizes its young generation only from node's command line, not at
 * run time, so they cannot be set here. Under
 * load V8 grows it to two 16 MiB semi-spaces, while only 3–12 MiB of it is live at 500 calls/s
 * (the transactions waiting out their timers are old); 8 MiB semi-spaces took the primary's RSS
 * down 17–28 MiB with no measurable CPU (BENCHMARKS.md "The primary's young generation").
 * `--no-memory-reducer`: V8's memory reducer runs memory-reducing full GCs a few seconds into an
 * idle spell, and the first seconds of load after one cost a node like a cold start (p99 setup
 * 180–440 ms at 600 calls/s after 40 s idle, against 36–88 without it; BENCHMARKS.md "What an
 * idle spell costs"). V8 creates the reducer with the heap, so it too is a command-line option.
 */
export const PRIMARY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--no-memory-reducer'];

/** Those of PRIMARY_NODE_FLAGS whose option this process was started without (on its command
 *  line or in NODE_OPTIONS), e.g. when run as `node bin/peergate.js`. An option given either
 *  way counts as given (`--memory-reducer` for `--no-memory-reducer`): the operator chose. */
export function missingPrimaryNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const option = (f: string) => f.split('=')[0]!.replaceAll('_', '-').replace(/^--no-/, '--');
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map(option);
  return PRIMARY_NODE_FLAGS.filter((f) => !given.includes(option(f)));
}

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
