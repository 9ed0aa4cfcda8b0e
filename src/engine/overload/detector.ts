// Overload detection and the shedding fraction (the control law behind RFC 7339's "loss" value).
//
// Contract: the gate feeds one Sample per probe tick (event-loop lag of that tick, the worst B2BUA
// worker's event-loop delay, INVITEs the app has not answered yet, live transactions, dialogs,
// how full the UDP listeners' kernel receive queues are and the datagrams the kernel dropped
// since the last sample). Every `intervalMs` the detector decides:
//   overloaded  some signal is above its high mark   -> loss += stepPercent (capped at maxLossPercent),
//               but from loss 0 only after `onsetIntervals` overloaded intervals in a row
//   calm        every signal is below its low mark   -> loss -= calmStepPercent (calmStepPercent 0:
//                                                       loss halves; below 5 it drops to 0)
//   otherwise   hold (hysteresis: the band between low and high marks changes nothing)
// Lag is averaged over the interval so one GC pause does not shed calls; the counts are the
// last sample. The onset run keeps a lone long stall (a cold start's first calls compiling, a
// major GC: 200 ms on an idle machine at 100 calls/s) from refusing calls a healthy node can
// carry; a real overload keeps every interval over the mark and is caught one run later.
// The onset applies to the two delays (the primary's lag, the workers'): a filling receive queue or a kernel drop is backlog already
// (datagrams waiting unseen, ACKs and BYEs lost with INVITEs) and counts at once. A queue above
// its mark counts only while it is not shrinking (the loss already drains it). Halving on the way down is what lets it recover within a few intervals.
// Worker delay is averaged over the interval like lag and, like the queue, counts only while it
// is not falling. The reason is the first signal over its
// high mark (priority: receive queue, pending, transactions, dialogs, worker backlog, lag).

export const SHED_REASONS = ['event_loop_lag', 'receive_queue', 'pending_setups', 'transactions', 'dialogs', 'worker_backlog'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

export interface OverloadThresholds {
  /** Mean event-loop lag (ms) over an interval that counts as overload, and the calm mark. */
  lagHighMs: number;
  lagLowMs: number;
  /** Mean event-loop delay (ms) of the worst B2BUA worker over an interval that counts as
   *  overload, and the calm mark; 0: not a signal. A worker's delay is how long what reaches it
   *  waits before it is handled (src/engine/overload/worker-backlog.ts). */
  workerLagHighMs: number;
  workerLagLowMs: number;
  /** INVITEs handed to an app without a response from it yet (the app's backlog). */
  pendingHigh: number;
  pendingLow: number;
  /** Bytes waiting in the fullest UDP listener's kernel receive queue that mean overload, and the
   *  calm mark; any datagram the kernel drops in an interval is overload too. 0: not a signal.
   *  Bytes, not a share of the buffer: what the mark bounds is how long an INVITE waits unread,
   *  and a 4 MiB buffer's quarter held ≈ 0.5 s of this box's work (p99 setup ≈ 0.9 s at 3×). */
  queueHighBytes: number;
  queueLowBytes: number;
  /** Live transactions / dialogs; 0 disables the signal. Calm below 90 % of the mark. */
  maxTransactions: number;
  maxDialogs: number;
  /** Control period (ms), shedding increase per overloaded period, and its ceiling. */
  intervalMs: number;
  /** Overloaded intervals in a row before shedding starts from loss 0. */
  onsetIntervals: number;
  stepPercent: number;
  /** Decrease of the loss per calm period; 0: halve it. */
  calmStepPercent: number;
  maxLossPercent: number;
}

export const DEFAULT_THRESHOLDS: Readonly<OverloadThresholds> = Object.freeze({
  lagHighMs: 50, lagLowMs: 15,
  workerLagHighMs: 100, workerLagLowMs: 30,
  queueHighBytes: 192 * 1024, queueLowBytes: 48 * 1024,
  pendingHigh: 2000, pendingLow: 1000,
  maxTransactions: 300_000, maxDialogs: 0,
  intervalMs: 100, onsetIntervals: 3, stepPercent: 20, calmStepPercent: 0, maxLossPercent: 100,
});

export interface Sample {
  lagMs: number; pending: number; transactions: number; dialogs: number;
  /** The worst worker's event-loop delay (ms); absent or 0 without workers. */
  workerLagMs?: number;
  /** Bytes in the fullest receive queue and kernel drops since the previous sample; 0 when unknown. */
  queueBytes: number; drops: number;
}

export class OverloadDetector {
  private readonly t: OverloadThresholds;
  private lossPct = 0;
  private why: ShedReason | undefined = undefined;
  private lagSum = 0;
  private workerLagSum = 0;
  private lagN = 0;
  private dropSum = 0;
  /** Receive-queue bytes at the end of the previous interval (its trend). */
  private prevQueue = 0;
  /** The workers' mean delay over the previous interval (its trend). */
  private prevWorkerLag = 0;
  private last: Sample = { lagMs: 0, pending: 0, transactions: 0, dialogs: 0, queueBytes: 0, drops: 0 };
  private periodStart: number | undefined = undefined;
  /** Overloaded intervals in a row so far. */
  private overRun = 0;

  constructor(t: OverloadThresholds) {
    if (!(t.lagLowMs <= t.lagHighMs) || !(t.workerLagLowMs <= t.workerLagHighMs) || !(t.pendingLow <= t.pendingHigh) || !(t.queueLowBytes <= t.queueHighBytes)) throw new Error('overload: each low mark must not exceed its high mark');
    if (!(Number.isInteger(t.onsetIntervals) && t.onsetIntervals >= 1)) throw new Error('overload: onsetIntervals must be a whole number ≥ 1');
    if (!(t.calmStepPercent >= 0 && t.calmStepPercent <= 100)) throw new Error('overload: calmStepPercent must be 0–100');
    if (!(t.intervalMs > 0) || !(t.stepPercent > 0) || !(t.maxLossPercent > 0 && t.maxLossPercent <= 100)) throw new Error('overload: interval, step and max loss must be positive (max loss ≤ 100)');
    this.t = { ...t };
  }

  /** Percentage of new INVITEs to refuse now (0–100). */
  get loss(): number { return this.lossPct; }
  /** Why shedding is on (the signal that last pushed it up); undefined when loss is 0. */
  get reason(): ShedReason | undefined { return this.lossPct > 0 ? this.why : undefined; }
  /** Mean lag of the interval in progress, last counts (for metrics and logs). */
  get signals(): Sample {
    const n = this.lagN;
    return { ...this.last, lagMs: n > 0 ? this.lagSum / n : this.last.lagMs, workerLagMs: n > 0 ? this.workerLagSum / n : this.last.workerLagMs ?? 0, drops: n > 0 ? this.dropSum : this.last.drops };
  }

  /** One probe tick at time `now` (ms). Returns true when the loss changed. */
  sample(now: number, s: Sample): boolean {
    this.lagSum += s.lagMs;
    this.workerLagSum += s.workerLagMs ?? 0;
    this.lagN++;
    this.dropSum += s.drops;
    this.last = s;
    if (this.periodStart === undefined) this.periodStart = now;
    if (now - this.periodStart < this.t.intervalMs) return false;
    const lag = this.lagSum / this.lagN;
    const workerLagMs = this.workerLagSum / this.lagN;
    const drops = this.dropSum;
    this.lagSum = 0;
    this.workerLagSum = 0;
    this.lagN = 0;
    this.dropSum = 0;
    this.periodStart = now;
    this.last = { ...s, lagMs: lag, workerLagMs, drops };
    const before = this.lossPct;
    const over = this.over(lag, this.last, this.prevQueue, this.prevWorkerLag);
    this.prevQueue = this.last.queueBytes;
    this.prevWorkerLag = workerLagMs;
    this.overRun = over === undefined ? 0 : this.overRun + 1;
    if (over !== undefined) {
      if (this.lossPct > 0 || !STALL_PRONE.has(over) || this.overRun >= this.t.onsetIntervals) {
        this.why = over;
        this.lossPct = Math.min(this.t.maxLossPercent, this.lossPct + this.t.stepPercent);
      }
    } else if (this.calm(lag, this.last)) {
      const next = this.t.calmStepPercent > 0 ? this.lossPct - this.t.calmStepPercent : Math.floor(this.lossPct / 2);
      this.lossPct = next < 5 ? 0 : next;
    }
    return this.lossPct !== before;
  }

  /** The delays come last: when one is the reason, no backlog signal is over (the onset rule needs that). */
  private over(lag: number, s: Sample, prevQueue: number, prevWorkerLag: number): ShedReason | undefined {
    const t = this.t;
    // A full queue that is already draining needs no more shedding: raising the loss while the
    // backlog drains would overshoot to 100 % and throw away capacity.
    if (t.queueHighBytes > 0 && (s.drops > 0 || (s.queueBytes > t.queueHighBytes && s.queueBytes >= prevQueue))) return 'receive_queue';
    if (s.pending > t.pendingHigh) return 'pending_setups';
    if (t.maxTransactions > 0 && s.transactions > t.maxTransactions) return 'transactions';
    if (t.maxDialogs > 0 && s.dialogs > t.maxDialogs) return 'dialogs';
    // Like the queue: a worker's delay falls only once its backlog is read, so a delay over the
    // mark that is already falling needs no more shedding (raising it would overshoot to 100 %).
    const wl = s.workerLagMs ?? 0;
    if (t.workerLagHighMs > 0 && wl > t.workerLagHighMs && wl >= prevWorkerLag) return 'worker_backlog';
    if (lag > t.lagHighMs) return 'event_loop_lag';
    return undefined;
  }

  private calm(lag: number, s: Sample): boolean {
    const t = this.t;
    return lag < t.lagLowMs && (t.workerLagHighMs === 0 || (s.workerLagMs ?? 0) < t.workerLagLowMs) && s.pending < t.pendingLow && (t.queueHighBytes === 0 || s.queueBytes < t.queueLowBytes)
      && (t.maxTransactions === 0 || s.transactions < 0.9 * t.maxTransactions)
      && (t.maxDialogs === 0 || s.dialogs < 0.9 * t.maxDialogs);
  }
}

/** Delays a lone stall (a cold start compiling, a major GC) can push over the mark for one interval. */
const STALL_PRONE: ReadonlySet<ShedReason> = new Set<ShedReason>(['event_loop_lag', 'worker_backlog']);

/**
 * RFC 7339 §7 "loss": refuse `loss` percent of requests. Deterministic (an accumulator, not a
 * random draw), so a 30 % loss refuses exactly 3 of every 10 and tests can count.
 */
export class LossThrottle {
  private acc = 0;

  /** Whether the next request is to be refused at `lossPercent`. */
  refuse(lossPercent: number): boolean {
    if (lossPercent <= 0) { this.acc = 0; return false; }
    if (lossPercent >= 100) return true;
    this.acc += lossPercent;
    if (this.acc >= 100) { this.acc -= 100; return true; }
    return false;
  }
}
