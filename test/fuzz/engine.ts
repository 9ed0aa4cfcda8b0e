// A bounded, seeded mutation fuzzer for peergate's parsers (issue #17.6).
//
// Why not jazzer.js: @jazzer.js/core 4.0.0's only Linux x64 prebuild needs GLIBC 2.38 (Debian 12
// has 2.36), and 1.x/2.x download their native part from github.com or build it from libFuzzer
// sources there. See docs/fuzzing.md.
//
// Feedback, by mode: with `coverage` (guided, the default of run.ts and the CI smoke run) an input
// joins the corpus when it reaches a V8 block or hit-count bucket never seen (./coverage.ts);
// inputs run in batches between coverage takes, and a batch that reached a new block is halved
// to find which input did. Without it (plain) an input joins when its outcome signature (the
// target's own summary: error text, output shape) is new. Every input is checked against the
// target's invariants. Deterministic: (seed, runs, mode) replays exactly — except that guided
// batch sizes follow measured timings, so a guided run is reproducible in its inputs only with
// a fixed `batch`.
import { rng } from '../helpers/message-fuzz.js';
import type { BlockCoverage, CoverageSummary } from './coverage.js';

export interface FuzzTarget {
  name: string;
  /** Seed inputs (checked-in corpus). */
  seeds: Buffer[];
  /** Its own code, relative to the repository root: where coverage is measured (e.g. `src/sip/`). */
  sources?: string[];
  /** Extra tokens the mutator splices in (a dictionary, as libFuzzer's -dict). */
  dictionary?: string[];
  /**
   * Run one input. Returns a short outcome signature (for feedback); throws InvariantError when
   * an invariant is broken. Any other exception is a finding too (undocumented error type).
   */
  run(input: Buffer): string;
  /**
   * Findings already reported and explained in docs/fuzzing.md (fixed elsewhere): counted in
   * `known`, not in `findings`, so CI stays red only for new ones.
   */
  known?: RegExp[];
}

export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function invariant(cond: unknown, what: string): asserts cond {
  if (!cond) throw new InvariantError(what);
}

export interface Finding { input: Buffer; error: string }

export interface FuzzReport {
  target: string;
  runs: number;
  ms: number;
  corpus: number;
  /** The corpus itself (seeds first), e.g. to save it or to measure its coverage. */
  inputs: Buffer[];
  signatures: number;
  /** Inputs run again, one at a time, to find which of a batch brought new coverage. */
  replays: number;
  findings: Finding[];
  /** Findings matching the target's `known` list, by pattern. */
  known: Record<string, number>;
  coverage?: CoverageSummary;
  /** Blocks the seeds alone execute (with coverage). */
  seedBlocks?: number;
}

/** mulberry32: small, fast, reproducible (the same PRNG as the parser fuzz test's). */
export { rng };

const SIGNIFICANT = Buffer.from('\r\n \t:;,"<>\\%@=?[]/.#|-0123456789*\x00\x7f\xff');
const BOUNDARY = ['0', '-1', '65535', '65536', '2147483647', '2147483648', '4294967296', '99999', '100000', '1e309', 'NaN', '\u00e9', '\ud800'];
/** Mutated inputs are capped so that one case cannot take the run hostage. */
const MAX_INPUT = 96 * 1024;

export function mutate(src: Buffer, corpus: readonly Buffer[], dict: readonly Buffer[], r: () => number): Buffer {
  let b = src;
  const n = 1 + Math.floor(r() * 5);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(r() * (b.length + 1));
    switch (Math.floor(r() * 10)) {
      case 0: { // overwrite a byte
        if (b.length === 0) break;
        b = Buffer.from(b);
        b[Math.min(pos, b.length - 1)] = Math.floor(r() * 256);
        break;
      }
      case 1: { // flip a bit
        if (b.length === 0) break;
        b = Buffer.from(b);
        b[Math.min(pos, b.length - 1)]! ^= 1 << Math.floor(r() * 8);
        break;
      }
      case 2: // insert a syntax-significant byte
        b = Buffer.concat([b.subarray(0, pos), SIGNIFICANT.subarray(Math.floor(r() * SIGNIFICANT.length)).subarray(0, 1), b.subarray(pos)]);
        break;
      case 3: // delete a range
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + 1 + Math.floor(r() * 24))]);
        break;
      case 4: { // duplicate a range
        const len = Math.floor(r() * 80);
        b = Buffer.concat([b.subarray(0, pos + len), b.subarray(pos, pos + len), b.subarray(pos + len)]);
        break;
      }
      case 5: // truncate
        b = b.subarray(0, pos);
        break;
      case 6: { // splice from another corpus entry
        const o = corpus[Math.floor(r() * corpus.length)]!;
        const at = Math.floor(r() * (o.length + 1));
        b = Buffer.concat([b.subarray(0, pos), o.subarray(at, at + 1 + Math.floor(r() * 200)), b.subarray(pos)]);
        break;
      }
      case 7: { // dictionary token or boundary number
        const words = dict.length > 0 && r() < 0.6 ? dict : BOUNDARY.map((w) => Buffer.from(w));
        const w = words[Math.floor(r() * words.length)]!;
        const replace = r() < 0.5 ? Math.floor(r() * 8) : 0;
        b = Buffer.concat([b.subarray(0, pos), w, b.subarray(pos + replace)]);
        break;
      }
      case 8: { // swap two lines
        const lines = b.toString('latin1').split('\n');
        const i = Math.floor(r() * lines.length), j = Math.floor(r() * lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        b = Buffer.from(lines.join('\n'), 'latin1');
        break;
      }
      default: // long run of one byte (quadratic-behaviour probe)
        b = Buffer.concat([b.subarray(0, pos), Buffer.alloc(Math.floor(r() * 4000), SIGNIFICANT[Math.floor(r() * SIGNIFICANT.length)]!), b.subarray(pos)]);
    }
  }
  return b.length > MAX_INPUT ? b.subarray(0, MAX_INPUT) : b;
}

export interface FuzzOptions {
  runs: number;
  /** Stop early after this long (ms); the CI smoke run bounds wall time with it. */
  maxMs?: number;
  seed?: number;
  /** Stop at the first N findings. */
  maxFindings?: number;
  /** A single input slower than this (ms) is a finding (hang / super-linear behaviour). */
  slowMs?: number;
  /** V8 block coverage of the target's sources, started before they were loaded (./load.ts). */
  coverage?: BlockCoverage;
  /** With `coverage`: keep inputs that reach new blocks / hit-count buckets (default), or
   *  false to only observe coverage while the corpus grows on new outcome signatures. */
  guided?: boolean;
  /** Inputs between coverage takes; adaptive when not given. */
  batch?: number;
  /** Repository root, cut from file names in the coverage summary. */
  root?: string;
}

const MAX_CORPUS = 4000;
/** Guided mode: half the picks go to the newest corpus entries (they opened new code). */
const RECENT = 64;

export function fuzz(t: FuzzTarget, o: FuzzOptions): FuzzReport {
  const r = rng(o.seed ?? 1);
  const dict = (t.dictionary ?? []).map((w) => Buffer.from(w, 'latin1'));
  const corpus: Buffer[] = [...t.seeds];
  const cov = o.coverage;
  const guided = cov !== undefined && o.guided !== false;
  const seen = new Set<string>();
  const findings: Finding[] = [];
  const known: Record<string, number> = {};
  const report = (f: Finding): void => {
    const k = t.known?.find((re) => re.test(f.error));
    if (k) known[k.source] = (known[k.source] ?? 0) + 1; else findings.push(f);
  };
  const maxFindings = o.maxFindings ?? 10;
  const slowMs = o.slowMs ?? 1000;
  let runs = 0;
  let replays = 0;
  const one = (input: Buffer): void => {
    runs++;
    const t0 = performance.now();
    try {
      const sig = t.run(input);
      if (!seen.has(sig)) {
        seen.add(sig);
        if (!guided && corpus.length < MAX_CORPUS) corpus.push(input);
      }
    } catch (e) {
      report({ input, error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) });
    }
    const dt = performance.now() - t0;
    if (dt > slowMs) {
      // The machine is shared: re-time once to tell super-linear work from being descheduled.
      const t1 = performance.now();
      try { t.run(input); } catch { /* reported above */ }
      const again = performance.now() - t1;
      if (again > slowMs) report({ input, error: `slow input: ${dt.toFixed(0)} ms, then ${again.toFixed(0)} ms` });
    }
  };
  const rerun = (input: Buffer): void => {
    replays++;
    try { t.run(input); } catch { /* reported on its first run */ }
  };

  const start = performance.now();
  // The seeds' coverage is the baseline every later input is measured against (one take for all:
  // their hit-count buckets are those of the sums, which only makes a few buckets look seen).
  if (cov) cov.take(false);
  for (const s of t.seeds) one(s);
  if (cov) cov.take(true);
  const seedBlocks = cov?.summary().blocks;

  // Batches of `batch` inputs between coverage takes (a take costs milliseconds, an input
  // microseconds to milliseconds).
  let batch = o.batch ?? (guided ? 16 : 1024); // observing needs only the union: sums are exact
  const adapt = o.batch === undefined;
  const pending: Buffer[] = [];
  let runMs = 0, inputMs = 0.05;
  const flush = (): void => {
    if (!cov || pending.length === 0) return;
    if (!guided) {
      cov.take(true); // observe only: which blocks the plain fuzzer reaches
    } else if (cov.take(false) > 0) {
      // A block never reached before: find which inputs by halving (about 2·log2(batch) takes
      // per such input instead of one take per input of the batch).
      attribute(pending);
    } else {
      // Hit-count buckets need one input's own counts: sample one input of the batch alone.
      const input = pending[Math.floor(r() * pending.length)]!;
      rerun(input);
      if (cov.take(true) > 0 && corpus.length < MAX_CORPUS) corpus.push(input);
    }
    const n = pending.length;
    pending.length = 0;
    if (adapt && guided) {
      // Two takes per batch (the check and the bucket sample) should cost about a fifth of
      // running the batch: size it from the measured cost of a take and of an input.
      inputMs = 0.8 * inputMs + 0.2 * (runMs / n);
      const takeAvg = cov.takeMs / Math.max(1, cov.takes);
      batch = Math.min(1024, Math.max(1, Math.round((10 * takeAvg) / Math.max(inputMs, 1e-3))));
    }
    runMs = 0;
  };
  const late = (): boolean => o.maxMs !== undefined && performance.now() - start > o.maxMs;
  const attribute = (inputs: Buffer[]): void => {
    if (late()) return; // bounded runs stay bounded; the batch's new blocks stay unclaimed
    if (inputs.length === 1) {
      rerun(inputs[0]!);
      if (cov!.take(true) > 0 && corpus.length < MAX_CORPUS) corpus.push(inputs[0]!);
      return;
    }
    const half = inputs.length >> 1;
    for (const part of [inputs.slice(0, half), inputs.slice(half)]) {
      for (const input of part) rerun(input);
      if (cov!.take(false) > 0) attribute(part);
    }
  };
  const pick = (): Buffer => {
    if (guided && corpus.length > t.seeds.length && r() < 0.5) {
      const from = Math.max(t.seeds.length, corpus.length - RECENT);
      return corpus[from + Math.floor(r() * (corpus.length - from))]!;
    }
    return corpus[Math.floor(r() * corpus.length)]!;
  };
  while (runs < o.runs && findings.length < maxFindings) {
    if ((runs & 63) === 0 && late()) break;
    const input = mutate(pick(), corpus, dict, r);
    const t0 = performance.now();
    one(input);
    if (cov) {
      runMs += performance.now() - t0;
      pending.push(input);
      if (pending.length >= batch) flush();
    }
  }
  flush();
  return {
    target: t.name, runs, replays, ms: performance.now() - start, corpus: corpus.length, inputs: corpus, signatures: seen.size, findings, known,
    ...(cov ? { coverage: cov.summary(o.root), seedBlocks } : {}),
  };
}
