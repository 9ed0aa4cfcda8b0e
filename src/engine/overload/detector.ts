// Overload detection and the shedding fraction (the control law behind RFC 7339's "loss" value).
//
// Contract: the gate feeds one Sample per probe tick (event-loop lag of that tick, INVITEs the
// app has not answered yet, live transactions, dialogs). Every `intervalMs` the detector decides:
//   overloaded  some signal is above its high mark   -> loss += stepPercent (capped at maxLossPercent),
//               but from loss 0 only after `onsetIntervals` overloaded intervals in a row
//   calm        every signal is below its low mark   -> loss halves (below 5 it drops to 0)
//   otherwise   hold (hysteresis: the band between low and high marks changes nothing)
// Lag is averaged over the interval so one GC pause does not shed calls; the counts are the
// last sample. The onset run keeps a lone long stall (a cold start's first calls compiling, a
// major GC: 200 ms on an idle machine at 100 calls/s) from refusing calls a healthy node can
// carry; a real overload keeps every interval over the mark and is caught one run later. Halving on the way down is what lets it recover within a few intervals.
// The reason is the first signal over its high mark (priority: lag, pending, transactions, dialogs).

export const SHED_REASONS = ['event_loop_lag', 'pending_setups', 'transactions', 'dialogs'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

export interface OverloadThresholds {
  /** Mean event-loop lag (ms) over an interval that counts as overload, and the calm mark. */
  lagHighMs: number;
  lagLowMs: number;
  /** INVITEs handed to an app without a response from it yet (the app's backlog). */
  pendingHigh: number;
  pendingLow: number;
  /** Live transactions / dialogs; 0 disables the signal. Calm below 90 % of the mark. */
  maxTransactions: number;
  maxDialogs: number;
  /** Control period (ms), shedding increase per overloaded period, and its ceiling. */
  intervalMs: number;
  /** Overloaded intervals in a row before shedding starts from loss 0. */
  onsetIntervals: number;
  stepPercent: number;
  maxLossPercent: number;
}

export const DEFAULT_THRESHOLDS: Readonly<OverloadThresholds> = Object.freeze({
  lagHighMs: 50, lagLowMs: 15,
  pendingHigh: 2000, pendingLow: 1000,
  maxTransactions: 300_000, maxDialogs: 0,
  intervalMs: 100, onsetIntervals: 3, stepPercent: 20, maxLossPercent: 100,
});

export interface Sample { lagMs: number; pending: number; transactions: number; dialogs: number }

export class OverloadDetector {
  private readonly t: OverloadThresholds;
  private lossPct = 0;
  private why: ShedReason | undefined = undefined;
  private lagSum = 0;
  private lagN = 0;
  private last: Sample = { lagMs: 0, pending: 0, transactions: 0, dialogs: 0 };
  private periodStart: number | undefined = undefined;
  /** Overloaded intervals in a row so far. */
  private overRun = 0;

  constructor(t: OverloadThresholds) {
    if (!(t.lagLowMs <= t.lagHighMs) || !(t.pendingLow <= t.pendingHigh)) throw new Error('overload: each low mark must not exceed its high mark');
    if (!(Number.isInteger(t.onsetIntervals) && t.onsetIntervals >= 1)) throw new Error('overload: onsetIntervals must be a whole number ≥ 1');
    if (!(t.intervalMs > 0) || !(t.stepPercent > 0) || !(t.maxLossPercent > 0 && t.maxLossPercent <= 100)) throw new Error('overload: interval, step and max loss must be positive (max loss ≤ 100)');
    this.t = { ...t };
  }

  /** Percentage of new INVITEs to refuse now (0–100). */
  get loss(): number { return this.lossPct; }
  /** Why shedding is on (the signal that last pushed it up); undefined when loss is 0. */
  get reason(): ShedReason | undefined { return this.lossPct > 0 ? this.why : undefined; }
  /** Mean lag of the interval in progress, last counts (for metrics and logs). */
  get signals(): Sample { return { ...this.last, lagMs: this.lagN > 0 ? this.lagSum / this.lagN : this.last.lagMs }; }

  /** One probe tick at time `now` (ms). Returns true when the loss changed. */
  sample(now: number, s: Sample): boolean {
    this.lagSum += s.lagMs;
    this.lagN++;
    this.last = s;
    if (this.periodStart === undefined) this.periodStart = now;
    if (now - this.periodStart < this.t.intervalMs) return false;
    const lag = this.lagSum / this.lagN;
    this.lagSum = 0;
    this.lagN = 0;
    this.periodStart = now;
    this.last = { ...s, lagMs: lag };
    const before = this.lossPct;
    const over = this.over(lag, s);
    this.overRun = over === undefined ? 0 : this.overRun + 1;
    if (over !== undefined) {
      if (this.lossPct > 0 || this.overRun >= this.t.onsetIntervals) {
        this.why = over;
        this.lossPct = Math.min(this.t.maxLossPercent, this.lossPct + this.t.stepPercent);
      }
    } else if (this.calm(lag, s)) {
      const half = Math.floor(this.lossPct / 2);
      this.lossPct = half < 5 ? 0 : half;
    }
    return this.lossPct !== before;
  }

  private over(lag: number, s: Sample): ShedReason | undefined {
    const t = this.t;
    if (lag > t.lagHighMs) return 'event_loop_lag';
    if (s.pending > t.pendingHigh) return 'pending_setups';
    if (t.maxTransactions > 0 && s.transactions > t.maxTransactions) return 'transactions';
    if (t.maxDialogs > 0 && s.dialogs > t.maxDialogs) return 'dialogs';
    return undefined;
  }

  private calm(lag: number, s: Sample): boolean {
    const t = this.t;
    return lag < t.lagLowMs && s.pending < t.pendingLow
      && (t.maxTransactions === 0 || s.transactions < 0.9 * t.maxTransactions)
      && (t.maxDialogs === 0 || s.dialogs < 0.9 * t.maxDialogs);
  }
}

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
