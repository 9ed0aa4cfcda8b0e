// The worker-backlog signal of overload control (issue #18.3): how far behind each B2BUA worker
// process's event loop runs, as the primary's gate sees it.
//
// Contract:
//   - LoopDelayReporter runs in a worker: a probe timer every `probeMs` measures its own
//     event-loop delay as timer drift (how late the tick runs); every `reportMs` it hands the
//     mean drift of the ticks since the last report to `send` (one IPC notice, no other
//     allocation per tick), with the period within which its next report comes and its loop's
//     utilisation since the last report (utilisation.ts: how much headroom it has). A saturated
//     worker's loop iterations are long, so its ticks run late; what it has not read yet (the
//     wire socket's backlog) is read in those same long iterations.
//     Calm (a mean under `calmLagMs`, after a calm report): it probes every `reportMs` and reports
//     every `calmReportMs` (300) only. An idle node's workers then wake 10 times a second for it
//     instead of 50, and the primary reads 3 notices a second from each instead of ten (each read
//     of its channel takes a 64 KiB buffer from malloc: the primary's heap grew while calls were
//     held). The first tick that runs `calmLagMs` late goes back to probing every `probeMs` and
//     reports at once.
//   - WorkerBacklog runs in the primary: report(worker, lagMs, nextWithinMs) keeps each worker's
//     last value and announced period; forget(worker) drops a worker that died or was replaced,
//     so its last value never sheds. lagMs() is the worst worker's delay now: its last report, or
//     how long it has been silent beyond its announced period and one short period more (a worker
//     too busy to report is behind by at least that much; the slack keeps a report that is merely
//     late from counting). A calm worker that stalls is therefore seen after ≈ 0.4 s, not 0.2 s
//     (a stall cannot report itself: the first late tick runs only when the stall ends).
//     A worker silent for `staleMs` is not counted at all: it is hung or dying, which the pool
//     handles; shedding the whole node's calls for it would not help the others. stale(worker)
//     says so, and the wire server then passes over it for new calls while another is heard.
//     utilisation() is the busiest worker's last reported loop utilisation, by the same rules.
//   - The worst worker, not the mean: new calls go round-robin, so every worker gets its share
//     of what the gate admits, and the slowest one sets the admitted calls' setup time.
import type { Clock } from '../../clock.js';
import { loopUtilisation } from './utilisation.js';

/** A worker's probe period and report period (ms), busy; its report period when calm, and the
 *  mean delay under which it is calm. The primary's WorkerBacklog assumes the busy report period
 *  for a worker that has announced none. */
export const WORKER_PROBE_MS = 20;
export const WORKER_REPORT_MS = 100;
export const WORKER_CALM_REPORT_MS = 300;
export const WORKER_CALM_LAG_MS = 1;

export class LoopDelayReporter {
  private timer: unknown = undefined;
  private due = 0;
  private sum = 0;
  private n = 0;
  private lastReport: number;
  /** The window's start (a calm window is not reported, but its mean is what the next one says). */
  private windowStart: number;
  private calm = false;
  private closed = false;

  constructor(private readonly clock: Clock, private readonly send: (lagMs: number, nextWithinMs: number, utilisation: number) => void,
    private readonly probeMs = WORKER_PROBE_MS, private readonly reportMs = WORKER_REPORT_MS,
    private readonly calmReportMs = WORKER_CALM_REPORT_MS, private readonly calmLagMs = WORKER_CALM_LAG_MS,
    private readonly utilisation: () => number = loopUtilisation()) {
    if (!(probeMs > 0) || !(reportMs >= probeMs) || !(calmReportMs >= reportMs)) throw new Error('overload: the worker probe needs 0 < probeMs ≤ reportMs ≤ calmReportMs');
    this.lastReport = clock.now();
    this.windowStart = this.lastReport;
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.closed) return;
    const period = this.calm ? this.reportMs : this.probeMs;
    this.due = this.clock.now() + period;
    this.timer = this.clock.setTimeout(this.tick, period);
    // The worker's IPC channel keeps it alive, not this probe.
    (this.timer as { unref?(): void } | undefined)?.unref?.();
  }

  private readonly tick = (): void => {
    const now = this.clock.now();
    const lag = Math.max(0, now - this.due);
    this.sum += lag;
    this.n++;
    if (this.calm && lag >= this.calmLagMs) this.report(now); // busy again: say so at once
    else if (now - this.windowStart >= this.reportMs) {
      if (!this.calm || now - this.lastReport >= this.calmReportMs) this.report(now);
      else { this.sum = 0; this.n = 0; this.windowStart = now; } // a calm window, not reported
    }
    this.arm();
  };

  private report(now: number): void {
    const mean = this.sum / this.n;
    this.sum = 0;
    this.n = 0;
    this.windowStart = now;
    this.lastReport = now;
    this.calm = mean < this.calmLagMs;
    const u = Math.round(this.utilisation() * 1000) / 1000;
    try { this.send(Math.round(mean * 10) / 10, this.calm ? this.calmReportMs : this.reportMs, u); } catch { /* the primary is gone: the worker exits on disconnect */ }
  }
}

export class WorkerBacklog {
  /** Per worker (its index): last reported delay, when it arrived and the period the worker
   *  announced for its next report (updated in place). */
  private readonly workers = new Map<number, { lagMs: number; at: number; nextWithinMs: number; utilisation: number | undefined }>();

  constructor(private readonly clock: Pick<Clock, 'now'>, private readonly reportMs = WORKER_REPORT_MS, private readonly staleMs = 2000) {
    if (!(reportMs > 0) || !(staleMs > reportMs)) throw new Error('overload: worker backlog needs 0 < reportMs < staleMs');
  }

  /** A worker's report (ms of event-loop delay; its next report within `nextWithinMs`, by
   *  default one busy period). A delay that is no finite number ≥ 0 is ignored; a period that is
   *  none, or outside [reportMs, staleMs), counts as one busy period; a utilisation that is no
   *  number in 0–1 as none. */
  report(worker: number, lagMs: number, nextWithinMs: unknown = this.reportMs, utilisation?: unknown): void {
    if (!(typeof lagMs === 'number' && lagMs >= 0 && Number.isFinite(lagMs))) return;
    const next = typeof nextWithinMs === 'number' && nextWithinMs >= this.reportMs && nextWithinMs < this.staleMs ? nextWithinMs : this.reportMs;
    const u = typeof utilisation === 'number' && utilisation >= 0 && utilisation <= 1 ? utilisation : undefined;
    const w = this.workers.get(worker);
    if (w) { w.lagMs = lagMs; w.at = this.clock.now(); w.nextWithinMs = next; w.utilisation = u; } else this.workers.set(worker, { lagMs, at: this.clock.now(), nextWithinMs: next, utilisation: u });
  }

  /** The busiest worker's loop utilisation at its last report (0–1); undefined when no worker
   *  that is not stale reported one. A worker overdue as lagMs() counts it is fully busy. */
  utilisation(ownLagMs = 0): number | undefined {
    const now = this.clock.now();
    let busiest: number | undefined;
    for (const w of this.workers.values()) {
      const overdue = this.overdueMs(w, now, ownLagMs);
      if (overdue === undefined || w.utilisation === undefined) continue;
      const u = overdue > 0 ? 1 : w.utilisation;
      if (busiest === undefined || u > busiest) busiest = u;
    }
    return busiest;
  }

  /** Whether a worker that reported has been silent for the stale time (hung or dying). One that
   *  never reported, or was forgotten, is not: a new worker is judged once it speaks. */
  stale(worker: number): boolean {
    const silent = this.silentMs(worker);
    return silent !== undefined && silent >= this.staleMs;
  }

  /** How long since a worker's last report (ms); undefined when it has none (never reported, or forgotten). */
  silentMs(worker: number): number | undefined {
    const w = this.workers.get(worker);
    return w === undefined ? undefined : this.clock.now() - w.at;
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
      const overdue = this.overdueMs(w, now, ownLagMs);
      if (overdue === undefined) continue;
      const v = Math.max(w.lagMs, overdue);
      if (v > worst) worst = v;
    }
    return worst;
  }

  /** How long a worker has been silent beyond its announced period, one short period more and the
   *  primary's own lag (ms; ≤ 0: not overdue); undefined when it is stale. */
  private overdueMs(w: { at: number; nextWithinMs: number }, now: number, ownLagMs: number): number | undefined {
    const silent = now - w.at;
    return silent >= this.staleMs ? undefined : silent - w.nextWithinMs - this.reportMs - ownLagMs;
  }
}
