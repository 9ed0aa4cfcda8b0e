// The worker-backlog signal of overload control (issue #18.3): how far behind each B2BUA worker
// process's event loop runs, as the primary's gate sees it.
//
// Contract:
//   - LoopDelayReporter runs in a worker: a probe timer every `probeMs` measures its own
//     event-loop delay as timer drift (how late the tick runs); every `reportMs` it hands the
//     mean drift of the ticks since the last report to `send` (one IPC notice, no other
//     allocation per tick). A saturated worker's loop iterations are long, so its ticks run late;
//     what it has not read yet (the wire socket's backlog) is read in those same long iterations.
//   - WorkerBacklog runs in the primary: report(worker, lagMs) keeps each worker's last value;
//     forget(worker) drops a worker that died or was replaced, so its last value never sheds.
//     lagMs() is the worst worker's delay now: its last report, or how long it has been silent
//     beyond two report periods (a worker too busy to report is behind by at least that much;
//     the slack of a second period keeps a report that is merely late from counting).
//     A worker silent for `staleMs` is not counted at all: it is hung or dying, which the pool
//     handles; shedding the whole node's calls for it would not help the others.
//   - The worst worker, not the mean: new calls go round-robin, so every worker gets its share
//     of what the gate admits, and the slowest one sets the admitted calls' setup time.
import type { Clock } from '../../clock.js';

/** A worker's probe period and report period (ms): the primary's WorkerBacklog assumes these. */
export const WORKER_PROBE_MS = 20;
export const WORKER_REPORT_MS = 100;

export class LoopDelayReporter {
  private timer: unknown = undefined;
  private due = 0;
  private sum = 0;
  private n = 0;
  private lastReport: number;
  private closed = false;

  constructor(private readonly clock: Clock, private readonly send: (lagMs: number) => void,
    private readonly probeMs = WORKER_PROBE_MS, private readonly reportMs = WORKER_REPORT_MS) {
    if (!(probeMs > 0) || !(reportMs >= probeMs)) throw new Error('overload: the worker probe needs 0 < probeMs ≤ reportMs');
    this.lastReport = clock.now();
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.closed) return;
    this.due = this.clock.now() + this.probeMs;
    this.timer = this.clock.setTimeout(this.tick, this.probeMs);
    // The worker's IPC channel keeps it alive, not this probe.
    (this.timer as { unref?(): void } | undefined)?.unref?.();
  }

  private readonly tick = (): void => {
    const now = this.clock.now();
    this.sum += Math.max(0, now - this.due);
    this.n++;
    if (now - this.lastReport >= this.reportMs) {
      const mean = this.sum / this.n;
      this.sum = 0;
      this.n = 0;
      this.lastReport = now;
      try { this.send(Math.round(mean * 10) / 10); } catch { /* the primary is gone: the worker exits on disconnect */ }
    }
    this.arm();
  };
}

export class WorkerBacklog {
  /** Per worker (its index): last reported delay and when it arrived (updated in place). */
  private readonly workers = new Map<number, { lagMs: number; at: number }>();

  constructor(private readonly clock: Pick<Clock, 'now'>, private readonly reportMs = WORKER_REPORT_MS, private readonly staleMs = 2000) {
    if (!(reportMs > 0) || !(staleMs > reportMs)) throw new Error('overload: worker backlog needs 0 < reportMs < staleMs');
  }

  /** A worker's report (ms of event-loop delay); a value that is no finite number ≥ 0 is ignored. */
  report(worker: number, lagMs: number): void {
    if (!(typeof lagMs === 'number' && lagMs >= 0 && Number.isFinite(lagMs))) return;
    const w = this.workers.get(worker);
    if (w) { w.lagMs = lagMs; w.at = this.clock.now(); } else this.workers.set(worker, { lagMs, at: this.clock.now() });
  }

  /** The worker died or was replaced: its last value no longer counts. */
  forget(worker: number): void {
    this.workers.delete(worker);
  }

  /** Workers with a value (for tests and metrics). */
  get size(): number { return this.workers.size; }

  /**
   * The worst worker's delay now (ms); 0 when no worker reports. `ownLagMs`: how late the
   * primary's own probe runs now: reports wait unread while the primary is busy, and that silence
   * is the primary's lag (its own signal), not the workers'.
   */
  lagMs(ownLagMs = 0): number {
    const now = this.clock.now();
    let worst = 0;
    for (const w of this.workers.values()) {
      const silent = now - w.at;
      if (silent >= this.staleMs) continue;
      const v = Math.max(w.lagMs, silent - 2 * this.reportMs - ownLagMs);
      if (v > worst) worst = v;
    }
    return worst;
  }
}
