// V8 block coverage as fuzzing feedback (issue #17.6), without jazzer.js (docs/fuzzing.md says
// why it cannot run here). The fuzzing process asks its own V8, through node:inspector, for
// precise block coverage with call counts; each take returns the counts since the previous one.
//
// Contract:
// - startCoverage() must run BEFORE the code under test is loaded: V8 instruments a function for
//   block counts only when it compiles it, so modules loaded earlier report whole functions only.
//   Use loadTargets() in ./load.ts, which starts coverage and then imports the targets. Counts
//   are per process: one BlockCoverage (one target) at a time.
// - Only scripts whose URL contains one of the `sources` paths count (the target's own code).
// - A *block* is a source range V8 reports (function body, branch, loop body...), keyed by
//   script URL and offsets. V8 leaves out a block whose count equals its parent's, so a block's
//   count in a take is that of the innermost reported range containing it; blocks are learnt as
//   they are first reported and kept for the whole run. (So a block that has only ever run
//   exactly as often as its parent is counted as part of it until V8 first reports it apart.)
// - A *feature* is a block in an AFL-style hit-count bucket (1, 2, 3, 4–7, 8–15, 16–31,
//   32–127, 128+) for one input. Counts of a batch are sums, so a batch only tells whether it
//   reached a block never reached before; the fuzzer then replays its inputs one at a time (one
//   take each) to find which, and samples one input per batch alone for new buckets.
// - session.post is synchronous for an in-thread inspector Session: the callback runs before
//   post() returns, so take() is a plain function call.
import { Session } from 'node:inspector';

interface Range { startOffset: number; endOffset: number; count: number }
interface FunctionCoverage { functionName: string; ranges: Range[]; isBlockCoverage: boolean }
interface ScriptCoverage { scriptId: string; url: string; functions: FunctionCoverage[] }

/** Hit-count bucket, 0 = not executed (AFL's classes). */
export function bucket(c: number): number {
  if (c <= 0) return 0;
  if (c <= 3) return c;
  if (c < 8) return 4;
  if (c < 16) return 5;
  if (c < 32) return 6;
  if (c < 128) return 7;
  return 8;
}

/** Known blocks of one function, in V8's order (start ascending, outer first). */
interface FunctionBlocks { starts: number[]; ends: number[]; ids: number[] }

export interface CoverageSummary {
  /** Distinct blocks of the sources ever executed. */
  blocks: number;
  /** Distinct blocks of the sources ever reported (executed or not) — the known denominator. */
  known: number;
  /** Distinct (block, bucket) features seen. */
  features: number;
  takes: number;
  takeMs: number;
  /** Per source file (path after the repository root): blocks executed / known. */
  files: Record<string, { covered: number; known: number }>;
}

let session: Session | undefined;

/** Start precise block coverage with counts in this process (idempotent). */
export function startCoverage(): void {
  if (session) return;
  const s = new Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  session = s;
}

export function coverageStarted(): boolean {
  return session !== undefined;
}

export class BlockCoverage {
  private readonly fns = new Map<string, FunctionBlocks>();
  private readonly blockFile: string[] = [];
  /** seen[id] = bitmask of buckets seen for block id (bit 0 unused). */
  private readonly seen: number[] = [];
  private covered = 0;
  private features = 0;
  /** Takes so far and the milliseconds they cost (V8's report and this bookkeeping). */
  takes = 0;
  takeMs = 0;
  private readonly counts: number[] = [];
  private readonly touched: number[] = [];

  /** @param sources path fragments (e.g. `/repo/src/engine/message/`) of the scripts that count. */
  constructor(private readonly sources: readonly string[]) {
    if (!session) throw new Error('startCoverage() first, before the code under test is loaded');
  }

  /**
   * Take the counts since the last take. `record`: add its features to the seen set and return
   * how many were new (for one input); otherwise (a batch: counts are sums) only say (1/0)
   * whether it executed a block never executed before.
   */
  take(record = true): number {
    const s = session!;
    const t0 = performance.now();
    this.takes++;
    let result: ScriptCoverage[] = [];
    s.post('Profiler.takePreciseCoverage', (err, r) => {
      if (err) throw err;
      result = (r as { result: ScriptCoverage[] }).result;
    });
    this.touched.length = 0;
    for (const sc of result) {
      if (!this.sources.some((p) => sc.url.includes(p))) continue;
      for (const f of sc.functions) this.countFunction(sc.url, f);
    }
    let fresh = 0;
    for (const id of this.touched) {
      const c = this.counts[id]!;
      this.counts[id] = 0;
      const b = bucket(c);
      const mask = this.seen[id] ?? 0;
      if (record) {
        if ((mask & (1 << b)) !== 0) continue;
        if (mask === 0) this.covered++;
        this.seen[id] = mask | (1 << b);
        this.features++;
        fresh++;
      } else if (mask === 0) {
        fresh = 1;
      }
    }
    this.takeMs += performance.now() - t0;
    return fresh;
  }

  private countFunction(url: string, f: FunctionCoverage): void {
    const r = f.ranges;
    if (!f.isBlockCoverage || r.length === 0 || (r.length === 1 && r[0]!.count === 0)) return;
    const key = `${url}#${r[0]!.startOffset}`;
    let fb = this.fns.get(key);
    if (!fb) { fb = { starts: [], ends: [], ids: [] }; this.fns.set(key, fb); }
    for (const x of r) this.learn(fb, url, x);
    // Innermost reported range containing each known block: ranges come outer-first, sorted by
    // start, so the last containing one wins.
    for (let i = 0; i < fb.ids.length; i++) {
      const bs = fb.starts[i]!, be = fb.ends[i]!;
      let c = 0;
      for (const x of r) {
        if (x.startOffset > bs) break;
        if (x.endOffset >= be) c = x.count;
      }
      if (c > 0) {
        const id = fb.ids[i]!;
        if (this.counts[id] === undefined || this.counts[id] === 0) this.touched.push(id);
        this.counts[id] = (this.counts[id] ?? 0) + c;
      }
    }
  }

  private learn(fb: FunctionBlocks, url: string, x: Range): void {
    // Binary search for the insertion point (start asc, end desc = outer first).
    let lo = 0, hi = fb.starts.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      const s = fb.starts[m]!, e = fb.ends[m]!;
      if (s < x.startOffset || (s === x.startOffset && e > x.endOffset)) lo = m + 1; else hi = m;
    }
    if (fb.starts[lo] === x.startOffset && fb.ends[lo] === x.endOffset) return;
    const id = this.blockFile.length;
    this.blockFile.push(url);
    fb.starts.splice(lo, 0, x.startOffset);
    fb.ends.splice(lo, 0, x.endOffset);
    fb.ids.splice(lo, 0, id);
  }

  summary(root = ''): CoverageSummary {
    const files: CoverageSummary['files'] = {};
    this.blockFile.forEach((url, id) => {
      const name = decodeURIComponent(url.replace(/^file:\/\//, '')).replace(root, '').replace(/^\//, '');
      const f = (files[name] ??= { covered: 0, known: 0 });
      f.known++;
      if ((this.seen[id] ?? 0) !== 0) f.covered++;
    });
    return { blocks: this.covered, known: this.blockFile.length, features: this.features, takes: this.takes, takeMs: this.takeMs, files };
  }
}
