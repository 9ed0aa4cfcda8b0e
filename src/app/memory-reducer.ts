// Giving memory back once a burst of call set-ups is over (policy `memory`, docs/policy.md;
// BENCHMARKS.md "Held calls under 10 KiB settled", "A reduction without the compacting GC").
//
// A burst leaves two kinds of memory behind in the engine's process after its transactions
// have waited out RFC 3261's 32 s and died, neither of which V8 or glibc gives back by itself
// in a quiet node:
//  - glibc's brk heap grows while the node is quiet: every read of the worker channel (the
//    workers' load reports, ≈ 10 a second each) takes a 64 KiB buffer, kept as a small Buffer
//    until a GC, and the small live blocks scattered above the free space stop free() from
//    shrinking the heap; with little JavaScript running, no GC comes for minutes;
//  - V8's old space stays fragmented: the calls' dialogs were promoted among the set-up's
//    transactions, and V8's ordinary full GC compacts only nearly empty pages.
// So once the engine has been quiet for a while after a burst, each process runs glibc's
// malloc_trim(0) and unmaps the node binary's pages it does not use, through the native addon
// (native/memory.cc). V8's memory-reducing GC (LowMemoryNotification: compacting) runs too only
// with `memory.compact_heap`: it gives back ≈ 10–20 MiB more after a burst, but the optimised
// code of the call path does not survive it, so the next burst's first seconds run slow (p99
// 130–400 ms and refusals at 1,000 calls/s where the node without it answered at 28–72 ms), and
// it holds each process 50–230 ms. Without the addon only the compacting part exists (two
// ordinary full GCs). Never under load: quiet means (almost) no transactions alive, i.e. no call
// set up for the last ≈ 32 s. The pause is measured and exported.
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import client from 'prom-client';
import { counter, gauge, registry } from '../ops/metrics.js';
import type { MemoryPolicy } from './memory-schema.js';
import { APPLIED, type Reconfigured, type Subsystem } from './subsystem.js';

interface MemoryAddon { reduce(): void; trim(): boolean; dropExecutable?(): number }

function loadAddon(): MemoryAddon | undefined {
  try {
    return createRequire(import.meta.url)('../../native/build/Release/memory.node') as MemoryAddon;
  } catch {
    return undefined;
  }
}

let addon: MemoryAddon | undefined | null = null;
let plainGc: (() => void) | undefined;

/** How this process reduces: 'native' (compacting GC + malloc_trim) or 'gc' (two ordinary full GCs). */
export function reducerImplementation(): 'native' | 'gc' {
  if (addon === null) addon = loadAddon();
  return addon ? 'native' : 'gc';
}

export interface Reduction { pauseMs: number; rssBefore: number; rssAfter: number; how: 'native' | 'gc'; compacted: boolean }

/**
 * Unmap the node binary's pages from this process (native/memory.cc `dropExecutable`), once it
 * has started and after each reduction: what only the start ran (and what nothing ran but was
 * read in with it) stays out of RSS, and what the process runs maps itself back in. The pages
 * stay in the page cache, shared by every process of the binary: three processes no longer each
 * hold ≈ 39 MiB of them (BENCHMARKS.md "The node binary's pages"). Bytes unmapped; 0 without the
 * addon or with PEERGATE_KEEP_BINARY_PAGES=1.
 */
export function dropBinaryPages(): number {
  if (process.env.PEERGATE_KEEP_BINARY_PAGES === '1') return 0;
  if (reducerImplementation() !== 'native') return 0;
  return addon?.dropExecutable?.() ?? 0;
}

/**
 * Reduce this process's memory now (synchronous: the caller makes sure the node is quiet):
 * malloc_trim and the binary's unused pages, and with `compact` V8's compacting GC first.
 */
export function reduceMemory(opts: { compact: boolean }): Reduction {
  const how = reducerImplementation();
  const rssBefore = process.memoryUsage.rss();
  const t = process.hrtime.bigint();
  if (addon) {
    if (opts.compact) addon.reduce();
    addon.trim();
    dropBinaryPages();
  } else if (opts.compact) {
    if (!plainGc) {
      // gc() of --expose-gc, taken at run time in a context of its own (the flag only adds it
      // to contexts created after it is set).
      setFlagsFromString('--expose-gc');
      plainGc = runInNewContext('gc') as () => void;
    }
    plainGc();
    plainGc();
  }
  const pauseMs = Number(process.hrtime.bigint() - t) / 1e6;
  return { pauseMs, rssBefore, rssAfter: process.memoryUsage.rss(), how, compacted: opts.compact };
}

/**
 * When a reduction is due, from the engine's live transaction count sampled now and then: a
 * burst (at least `burst_transactions` alive at once since the last reduction), then at most
 * `quiet_transactions` alive for `quiet_s` in a row. Once due, the burst is forgotten: the next
 * reduction waits for the next burst.
 */
export class QuietWatch {
  private peak = 0;
  private quietSince: number | undefined;

  constructor(private settings: MemoryPolicy) {}

  configure(settings: MemoryPolicy): void { this.settings = settings; }

  /** The settings in force (a reload's, once configured). */
  get current(): MemoryPolicy { return this.settings; }

  /** One sample; true when a reduction should run now. */
  observe(nowMs: number, transactions: number): boolean {
    const s = this.settings;
    if (transactions > this.peak) this.peak = transactions;
    if (transactions > s.quiet_transactions) {
      this.quietSince = undefined;
      return false;
    }
    this.quietSince ??= nowMs;
    if (!s.reduce_when_quiet || this.peak < s.burst_transactions || nowMs - this.quietSince < s.quiet_s * 1000) return false;
    this.peak = transactions;
    this.quietSince = undefined;
    return true;
  }
}

const reductionsTotal = counter('peergate_memory_reductions_total', 'Memory reductions run once a burst of call set-ups was over (policy memory.reduce_when_quiet); each runs in every process');
// With workers, /metrics sums the processes' gauges unless told otherwise: the longest pause.
const reductionPause = (registry.getSingleMetric('peergate_memory_reduction_pause_seconds') as client.Gauge | undefined)
  ?? new client.Gauge({ name: 'peergate_memory_reduction_pause_seconds', help: 'How long the last memory reduction held a process (with workers: the longest of the processes)', aggregator: 'max' });
const reductionReleased = gauge('peergate_memory_reduction_released_bytes', 'RSS the last memory reduction gave back (with workers: summed over the processes)');

/** Reduce this process now and export what it took and gave (the primary and each worker). */
export function reduceAndRecord(opts: { compact: boolean }): Reduction {
  const r = reduceMemory(opts);
  reductionPause.set(r.pauseMs / 1000);
  reductionReleased.set(Math.max(0, r.rssBefore - r.rssAfter));
  return r;
}

/** How often the engine's transaction count is sampled. */
export const SAMPLE_MS = 2000;

export interface MemorySubsystemOptions {
  policy: Policy;
  log: Logger;
  /** Transactions alive in the engine; undefined with an external drachtio-server (nothing to watch). */
  transactions: () => number | undefined;
  /** Tell the other processes (the B2BUA workers) to reduce too, compacting V8's heap or not. */
  others?: (opts: { compact: boolean }) => void;
  now?: () => number;
}

export class MemorySubsystem implements Subsystem {
  readonly name = 'memory';
  private readonly watch: QuietWatch;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: MemorySubsystemOptions) {
    this.watch = new QuietWatch(opts.policy.memory);
    this.now = opts.now ?? Date.now;
  }

  start(): Promise<void> {
    this.timer = setInterval(() => this.check(), SAMPLE_MS);
    this.timer.unref();
    return Promise.resolve();
  }

  /** One sample of the engine; reduces when due. Public for tests. */
  check(): Reduction | undefined {
    const n = this.opts.transactions();
    if (n === undefined || !this.watch.observe(this.now(), n)) return undefined;
    const how = { compact: this.watch.current.compact_heap };
    const r = reduceAndRecord(how);
    this.opts.others?.(how);
    reductionsTotal.inc();
    const mib = (b: number) => Math.round(b / 1048576);
    this.opts.log.info({ pause_ms: Math.round(r.pauseMs), rss_before_mib: mib(r.rssBefore), rss_after_mib: mib(r.rssAfter), how: r.how, compacted: r.compacted }, 'burst over: memory reduced');
    return r;
  }

  reconfigure(next: Policy): Reconfigured {
    this.watch.configure(next.memory);
    return APPLIED;
  }

  ready(): true { return true; }

  close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }
}
