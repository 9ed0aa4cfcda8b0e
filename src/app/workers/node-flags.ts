// Node/V8 flags for the forked B2BUA worker processes (docs/operations.md "Worker memory").
// A worker holds nothing long-lived at a steady call rate (the calls' state waits in the
// primary's engine; a held call is ≈ 3 KB there), so what its RSS holds under load is V8's young
// generation (two 16 MiB semi-spaces by default) and old-generation headroom. A 2 MiB semi-space
// and a 50 % old-generation growth step keep a worker near its idle size under load, for a few
// % more CPU (BENCHMARKS.md "Idle footprint and worker V8 sizing"). V8's memory reducer is off,
// as in the primary (src/app/heap.ts PRIMARY_NODE_FLAGS): its idle-time GCs leave a worker cold
// for the next load (BENCHMARKS.md "What an idle spell costs").
import { spawnSync } from 'node:child_process';

export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=50', '--no-memory-reducer'];

/**
 * glibc malloc's arena limit for the workers. By default glibc gives each thread that allocates
 * under contention an arena of its own (up to 8 per core), and memory freed in one arena is not
 * reused by another; a worker's native allocations (libuv, OpenSSL, V8's background threads) fit
 * in two (BENCHMARKS.md "Where a node's RSS is"). glibc reads it once at process start, so it is
 * set in the fork's environment; the primary's is the operator's (the systemd unit and the
 * container image set it).
 */
export const WORKER_MALLOC_ARENA_MAX = '2';

/** The environment a worker is forked with: the primary's, plus MALLOC_ARENA_MAX unless the operator set it (any value). */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.MALLOC_ARENA_MAX !== undefined) return env;
  return { ...env, MALLOC_ARENA_MAX: WORKER_MALLOC_ARENA_MAX };
}

/** A node or V8 option as `node` takes it on its command line. */
const NODE_OPTION = /^--[A-Za-z][\w-]*(=\S+)?$/;

/**
 * The workers' flags: PEERGATE_WORKER_NODE_FLAGS (space-separated; it replaces the default, and
 * an empty value means none), else WORKER_NODE_FLAGS. Throws, naming the variable, on a word
 * that is not an option (`--name` or `--name=value`).
 */
export function workerNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.PEERGATE_WORKER_NODE_FLAGS;
  if (v === undefined) return [...WORKER_NODE_FLAGS];
  const flags = v.split(/\s+/).filter(Boolean);
  const bad = flags.find((f) => !NODE_OPTION.test(f));
  if (bad !== undefined) {
    throw new Error(`PEERGATE_WORKER_NODE_FLAGS must be node options separated by spaces (--name or --name=value), got "${bad}"`);
  }
  return flags;
}

/**
 * Checks the workers' flags once at start, when the operator set them: node itself judges them
 * (`node <flags> -e ''`, ≈ 50 ms), so a flag it would refuse stops the start with node's own
 * words rather than every worker failing to start. Throws with that message; returns the flags.
 */
export function checkWorkerNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const flags = workerNodeFlags(env);
  if (env.PEERGATE_WORKER_NODE_FLAGS === undefined || flags.length === 0) return flags;
  const r = spawnSync(process.execPath, [...flags, '-e', ''], { encoding: 'utf8', timeout: 10_000, env: { PATH: env.PATH ?? '' } });
  if (r.status !== 0) {
    const said = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n').filter(Boolean).pop() ?? '';
    throw new Error(`PEERGATE_WORKER_NODE_FLAGS: node refuses "${flags.join(' ')}": ${said}`);
  }
  return flags;
}

/** How long a forked worker has to say it serves before the pool kills it (and forks another). */
export const WORKER_START_TIMEOUT_S = 30;

/** How long a serving worker may go without a word (its load reports come every 0.1–0.3 s) before the pool kills it as hung. */
export const WORKER_HANG_TIMEOUT_S = 20;

/** A number of seconds from the environment, in ms; `fallback` when unset or empty. */
function seconds(env: NodeJS.ProcessEnv, name: string, fallbackS: number, zeroAllowed: boolean): number {
  const v = env[name];
  if (v === undefined || v === '') return fallbackS * 1000;
  const s = Number(v);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(v) || !(zeroAllowed ? s >= 0 : s > 0) || s > 3600) {
    throw new Error(`${name} must be a number of seconds ${zeroAllowed ? 'from 0' : 'above 0'} and at most 3600, got "${v}"`);
  }
  return Math.round(s * 1000);
}

/**
 * PEERGATE_WORKER_START_TIMEOUT_S (seconds, > 0; for machines where a worker starts slowly, a
 * cold disk or a small container), else WORKER_START_TIMEOUT_S. Throws, naming the variable, on
 * anything else.
 */
export function workerStartTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return seconds(env, 'PEERGATE_WORKER_START_TIMEOUT_S', WORKER_START_TIMEOUT_S, false);
}

/**
 * PEERGATE_WORKER_HANG_TIMEOUT_S (seconds; 0: never, e.g. while taking heap snapshots of the
 * workers, which stop their event loop), else WORKER_HANG_TIMEOUT_S. Throws, naming the
 * variable, on anything else.
 */
export function workerHangTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return seconds(env, 'PEERGATE_WORKER_HANG_TIMEOUT_S', WORKER_HANG_TIMEOUT_S, true);
}
