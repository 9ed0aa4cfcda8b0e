// Overload detection and the shedding fraction (the control law behind RFC 7339's "loss" value).
//
// Contract: the gate feeds one Sample per probe tick (event-loop lag of that tick, the worst B2BUA
// worker's event-loop delay, INVITEs the app has not answered yet, live transactions, dialogs,
// how full the UDP listeners' kernel receive queues are and the datagrams the kernel dropped
// since the last sample). Every `intervalMs` two laws decide, and the loss is the larger of the two:
// * The receive queue (queue-law.ts, when queueHighBytes > 0): a proportional-integral law that
//   holds the queue's delay near queueDelayTargetMs (the gate measures the delay: bytes over the
//   read rate), or, without a delay, its bytes near queueLowBytes (a quarter of the high mark when that is 0).
//   It starts from loss 0 only on a kernel drop or a queue over queueHighBytes that is not
//   shrinking (either also steps it up by at least stepPercent), then moves the loss in
//   proportion to how far the queue is from the target and how fast it moves, so the loss settles
//   near the share the node needs instead of swinging 0 ↔ 100 %; a queue nearly empty for a few
//   intervals in a row (the overload is over) halves it (or takes calmStepPercent off).
// * The other signals, in steps:
//   overloaded  some signal is above its high mark   -> loss += stepPercent (capped at maxLossPercent),
//               but from loss 0 only after `onsetIntervals` overloaded intervals in a row
//   calm        every signal is below its low mark   -> loss -= calmStepPercent (calmStepPercent 0:
//                                                       loss halves; below 5 it drops to 0)
//   otherwise   hold (hysteresis: the band between low and high marks changes nothing)
// Lag is averaged over the interval so one GC pause does not shed calls; the counts are the
// last sample. The onset run keeps a lone long stall (a cold start's first calls compiling, a
// major GC: 200 ms on an idle machine at 100 calls/s) from refusing calls a healthy node can
// carry; a real overload keeps every interval over the mark and is caught one run later.
// The onset applies to the two delays (the primary's lag, the workers'). Worker delay is averaged
// over the interval like lag and counts only while it is not falling (a worker's delay falls only
// once its backlog is read: stepping up meanwhile would overshoot to 100 %). The reason is the law
// with the larger loss (the queue's on a tie: `receive_queue`), else the first signal over its
// high mark (priority: pending, transactions, dialogs, worker backlog, lag).
import { QueueLaw } from './queue-law.js';

/** Why a new INVITE was refused. All but queue_sojourn are the detector's (its loss); queue_sojourn
 *  is the priority ingress's (ingress.ts): an INVITE that waited in its queue past the target. */
export const SHED_REASONS = ['event_loop_lag', 'receive_queue', 'pending_setups', 'transactions', 'dialogs', 'worker_backlog', 'queue_sojourn'] as const;
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
  /** INVITEs handed to an app without a provisional or final response from it yet; 0: not a
   *  signal (the default). Not the app's backlog alone: an INVITE the app has relayed waits here
   *  until the callee rings, so the count is also rate × post-dial delay (thousands at a
   *  carrier's rate while the node idles); the workers' delay and the lag are the backlog.
   *  pendingLow 0 with pendingHigh set: calm below half the high mark. */
  pendingHigh: number;
  pendingLow: number;
  /** Bytes waiting in the fullest UDP listener's kernel receive queue that mean overload, and the
   *  queue the receive-queue law holds (its target; 0: a quarter of the high mark); any datagram
   *  the kernel drops in an interval is overload too. queueHighBytes 0: not a signal.
   *  Bytes, not a share of the buffer: what the mark bounds is how long an INVITE waits unread,
   *  and a 4 MiB buffer's quarter held ≈ 0.5 s of this box's work (p99 setup ≈ 0.9 s at 3×). */
  queueHighBytes: number;
  queueLowBytes: number;
  /** The queueing delay (ms: the queue's bytes over the rate the listeners read at) the
   *  receive-queue law holds, as RFC 8033's PIE does; 0, or no delay in the samples: it holds
   *  queueLowBytes instead. A delay, not bytes: a higher arrival rate read as fast is no backlog. */
  queueDelayTargetMs: number;
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
  queueHighBytes: 192 * 1024, queueLowBytes: 48 * 1024, queueDelayTargetMs: 10,
  pendingHigh: 0, pendingLow: 0,
  maxTransactions: 300_000, maxDialogs: 0,
  intervalMs: 100, onsetIntervals: 3, stepPercent: 20, calmStepPercent: 0, maxLossPercent: 100,
});

export interface Sample {
  lagMs: number; pending: number; transactions: number; dialogs: number;
  /** The worst worker's event-loop delay (ms); absent or 0 without workers. */
  workerLagMs?: number;
  /** Bytes in the fullest receive queue and kernel drops since the previous sample; 0 when unknown. */
  queueBytes: number; drops: number;
  /** That queue's delay (ms) at the last reading; absent: not known (the law uses bytes). */
  queueDelayMs?: number;
}

export class OverloadDetector {
  private readonly t: OverloadThresholds;
  /** The stepped law's loss (every signal but the receive queue) and its reason. */
  private stepLoss = 0;
  private why: ShedReason | undefined = undefined;
  /** The receive queue's law; undefined when that signal is off. */
  private readonly queueLaw: QueueLaw | undefined;
  private lagSum = 0;
  private workerLagSum = 0;
  private lagN = 0;
  private dropSum = 0;
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
    if (!(t.queueDelayTargetMs >= 0)) throw new Error('overload: queueDelayTargetMs must not be negative');
    if (!(t.intervalMs > 0) || !(t.stepPercent > 0) || !(t.maxLossPercent > 0 && t.maxLossPercent <= 100)) throw new Error('overload: interval, step and max loss must be positive (max loss ≤ 100)');
    // A high mark alone: calm below half of it (a 0 calm mark would never be reached).
    this.t = { ...t, pendingLow: t.pendingHigh > 0 && t.pendingLow === 0 ? t.pendingHigh / 2 : t.pendingLow };
    this.queueLaw = t.queueHighBytes > 0 ? new QueueLaw({
      targetBytes: t.queueLowBytes > 0 ? t.queueLowBytes : t.queueHighBytes / 4, highBytes: t.queueHighBytes,
      burstStep: t.stepPercent, calmStep: t.calmStepPercent, maxLoss: t.maxLossPercent,
      ...(t.queueDelayTargetMs > 0 ? { targetDelayMs: t.queueDelayTargetMs } : {}),
    }) : undefined;
  }

  /** Percentage of new INVITEs to refuse now (a whole number 0–100: RFC 7339's oc value). */
  get loss(): number { return Math.round(Math.max(this.stepLoss, this.queueLaw?.loss ?? 0)); }
  /** Why shedding is on (the law with the larger loss; in steps, the signal that last pushed it up); undefined when loss is 0. */
  get reason(): ShedReason | undefined {
    const q = this.queueLaw?.loss ?? 0;
    if (q > 0 && q >= this.stepLoss) return 'receive_queue';
    return this.stepLoss > 0 ? this.why : undefined;
  }
  /** Mean lag of the interval in progress, last counts (for metrics and logs). */
  get signals(): Sample {
    const n = this.lagN;
    return { ...this.last, lagMs: n > 0 ? this.lagSum / n : this.last.lagMs, workerLagMs: n > 0 ? this.workerLagSum / n : this.last.workerLagMs ?? 0, drops: n > 0 ? this.dropSum : this.last.drops };
  }

  /** Whether a sample at `now` closes a control interval (the gate reads the receive queue then,
   *  so the decision sees the queue as it is, not up to an interval old). */
  closes(now: number): boolean {
    return this.periodStart !== undefined && now - this.periodStart >= this.t.intervalMs;
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
    const elapsedMs = now - this.periodStart;
    this.lagSum = 0;
    this.workerLagSum = 0;
    this.lagN = 0;
    this.dropSum = 0;
    this.periodStart = now;
    this.last = { ...s, lagMs: lag, workerLagMs, drops };
    const before = this.loss;
    this.queueLaw?.update(this.last.queueBytes, drops, this.last.queueDelayMs, elapsedMs);
    const over = this.over(lag, this.last, this.prevWorkerLag);
    this.prevWorkerLag = workerLagMs;
    this.overRun = over === undefined ? 0 : this.overRun + 1;
    if (over !== undefined) {
      if (this.stepLoss > 0 || !STALL_PRONE.has(over) || this.overRun >= this.t.onsetIntervals) {
        this.why = over;
        this.stepLoss = Math.min(this.t.maxLossPercent, this.stepLoss + this.t.stepPercent);
      }
    } else if (this.calm(lag, this.last)) {
      const next = this.t.calmStepPercent > 0 ? this.stepLoss - this.t.calmStepPercent : Math.floor(this.stepLoss / 2);
      this.stepLoss = next < 5 ? 0 : next;
    }
    return this.loss !== before;
  }

  /** The delays come last: when one is the reason, no backlog signal is over (the onset rule needs that). */
  private over(lag: number, s: Sample, prevWorkerLag: number): ShedReason | undefined {
    const t = this.t;
    if (t.pendingHigh > 0 && s.pending > t.pendingHigh) return 'pending_setups';
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
    return lag < t.lagLowMs && (t.workerLagHighMs === 0 || (s.workerLagMs ?? 0) < t.workerLagLowMs) && (t.pendingHigh === 0 || s.pending < t.pendingLow)
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
