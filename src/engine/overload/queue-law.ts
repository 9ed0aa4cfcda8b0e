// The receive-queue share of the loss: a proportional-integral law on the UDP receive queue
// (the control of RFC 8033's PIE): on the queue's delay (its bytes over the rate the listeners
// read at, measured by the gate per interval) when a delay target is set and the reading has a
// delay, else on its bytes.
//
// Why a delay: what an admitted INVITE waits is the queue's delay, not its size. In bytes, the
// same 48 KiB target is ≈ 10 ms of reading at 2× overload and ≈ 7 ms at 3× on a 2-core box
// (BENCHMARKS.md), so the higher the arrival rate, the more the law refused for the same wait.
//
// Why not steps: a fixed step up while the queue is over its mark and halving once it is calm is
// bang-bang. Measured at 3× overload (BENCHMARKS.md), the loss swung 0 ↔ 100 % within a second and
// the queue refilled to 0.7–2 MB between swings: admitted INVITEs waited there (p99 setup 0.3–0.5 s).
//
// Contract: once per control interval, `update(queueBytes, drops, delayMs?, elapsedMs?)` moves the loss (0–max %) by
//   kI · e  +  kP · (e − e_prev),   e = (delayMs − targetDelayMs) / targetDelayMs (or the same
//   in bytes: (queueBytes − targetBytes) / targetBytes), clipped to [−1, 3]
// (the integral term brings the mean queue to `target`: the loss settles near the share the node
// needs; the proportional one answers the queue's growth within an interval, before it is deep).
// At loss 0 the law is off (a GC pause's backlog above the target is no overload) until a kernel
// drop, or a queue over `highBytes` that is not shrinking, starts it at `burstStep` or more; a
// kernel drop while regulating, or such a queue two intervals in a row, steps it up by
// `burstStep` too (datagrams are being lost; a surge), and such a queue, when its delay is
// known, at least to the share its growth says is needed (surgeShare). Once
// `idleIntervals` intervals in a row had the queue under a quarter of the target (the overload
// is over, or the share is far too high) each further such interval takes 30 % of the loss off
// (or `calmStep` points); below 5 % with the queue under its target it is 0. Deterministic: no
// clock, no randomness.
// Gains, per interval, in loss points per target's worth of queue (kI 1, kP 4): with a node where
// one point of loss moves the queue by g targets per interval, the linear loop's poles are the
// roots of z² − (2 − 4g − g)z + (1 − 4g): well damped from g ≈ 0.06 to 0.3 (settles in 1–2 s)
// and stable up to g ≈ 0.44 (Jury). A 2-core box at 3× overload is g ≈ 0.1–0.2 (queue-law.test.ts's model).

export interface QueueLawOptions {
  /** Queue (bytes) the law holds on average when it has no delay; > 0. */
  targetBytes: number;
  /** Queueing delay (ms) the law holds on average when update() is given one; absent: bytes. */
  targetDelayMs?: number;
  /** From loss 0: over this and not shrinking starts the law at `burstStep` or more. */
  highBytes: number;
  burstStep: number;
  /** Decrease per idle interval once idle long enough (points); 0: 30 % of the loss. */
  calmStep: number;
  maxLoss: number;
  /** Loss points per interval per target's worth of excess queue (integral) and of growth (proportional). */
  kI?: number;
  kP?: number;
  /** Intervals in a row with the queue under a quarter of the target before the loss falls faster. */
  idleIntervals?: number;
}

export const QUEUE_LAW_GAINS = Object.freeze({ kI: 1, kP: 4, idleIntervals: 4 });
/** Per idle interval once the idle run is long enough: 60 % → 0 in ≈ 0.8 s more. Halving swung
 *  the loss mid-overload (the queue reads near-empty for a few intervals in a row there too). */
const IDLE_FACTOR = 0.7;
/** The largest error counted: a queue of 4× the target (the default high mark). */
const E_MAX = 3;
/** What refusing an INVITE costs the node against admitting it (a refused INVITE and its ACK
 *  ≈ 0.14 ms of the primary's work, an admitted call ≈ 0.9 ms: BENCHMARKS.md). */
const REFUSAL_COST = 0.15;

export class QueueLaw {
  private lossPct = 0;
  private prevError = 0;
  private prevBytes = 0;
  private prevDelay: number | undefined = undefined;
  /** The delay's growth over the last interval (ms per ms), when known. */
  private prevGrowth: number | undefined = undefined;
  private idleRun = 0;
  /** Intervals in a row with the queue over the high mark and not shrinking. */
  private overRun = 0;
  private readonly kI: number;
  private readonly kP: number;
  private readonly idleIntervals: number;

  constructor(private readonly o: QueueLawOptions) {
    if (!(o.targetBytes > 0) || !(o.highBytes >= o.targetBytes)) throw new Error('overload: the queue law needs 0 < target ≤ high mark');
    if (o.targetDelayMs !== undefined && !(o.targetDelayMs > 0)) throw new Error('overload: the queue law\'s delay target must be positive');
    this.kI = o.kI ?? QUEUE_LAW_GAINS.kI;
    this.kP = o.kP ?? QUEUE_LAW_GAINS.kP;
    this.idleIntervals = o.idleIntervals ?? QUEUE_LAW_GAINS.idleIntervals;
  }

  /** Percentage of new INVITEs this law refuses now. */
  get loss(): number { return this.lossPct; }

  /** One control interval: the queue at its end, the kernel drops during it and, when known, the
   *  queue's delay (ms) and the interval's length (ms). The start (high mark, drops) stays in
   *  bytes: the buffer's room is bytes. */
  update(queueBytes: number, drops: number, delayMs?: number, elapsedMs?: number): void {
    const o = this.o;
    // Where the law is against its target, as a share of it: in delay when it has one.
    const byDelay = o.targetDelayMs !== undefined && delayMs !== undefined;
    const level = byDelay ? delayMs / o.targetDelayMs! : queueBytes / o.targetBytes;
    // The error is clipped to [−1, E_MAX]: a lone spike of the reading (a GC pause, a burst read
    // late) would otherwise add its full size to the integral and hold the loss high for seconds.
    const e = Math.min(E_MAX, Math.max(-1, level - 1));
    const over = queueBytes > o.highBytes && queueBytes >= this.prevBytes;
    const start = drops > 0 || over;
    // How fast the delay grew over this interval, in ms per ms; undefined when not known.
    const growth = byDelay && this.prevDelay !== undefined && elapsedMs !== undefined && elapsedMs > 0
      ? (delayMs! - this.prevDelay) / elapsedMs : undefined;
    const prevGrowth = this.prevGrowth;
    this.prevDelay = delayMs;
    this.prevGrowth = growth;
    if (this.lossPct === 0 && !start) {
      // Off until the queue passes the high mark: a GC pause's short backlog is no overload.
      this.prevError = e;
      this.prevBytes = queueBytes;
      this.idleRun = 0;
      this.overRun = 0;
      return;
    }
    this.overRun = over ? this.overRun + 1 : 0;
    let next = this.lossPct + this.kI * e + this.kP * (e - this.prevError);
    // Once regulating, the proportional term answers a growing queue; a step on top of it at
    // every reading over the mark overshot to 100 % in the bench. A start, a kernel drop
    // (datagrams lost) and a queue over the mark and growing two intervals in a row (a surge the
    // clipped error answers too slowly) step.
    if (drops > 0 || this.lossPct === 0 || this.overRun >= 2) next = Math.max(next, this.lossPct + o.burstStep);
    // Such a surge also says how far over the node is: the delay grew by (ρ − 1) ms per ms, ρ
    // being what arrives over what is read at the present loss. Stepping 20 points an interval
    // took 3–5 intervals to reach the share a 2–3× surge needs (the model node of
    // queue-law.test.ts: 150–300 ms of queue meanwhile; BENCHMARKS.md "Overload: the surge
    // share"); the share it implies is reached in one.
    // The lesser growth of the two intervals counts: a pause of the reader (a GC, a wait for a
    // core) inflates one interval's delay, a surge grows both.
    const surge = growth !== undefined && prevGrowth !== undefined ? Math.min(growth, prevGrowth) : 0;
    if (this.overRun >= 2 && surge > 0) next = Math.max(next, surgeShare(this.lossPct, 1 + surge));
    this.idleRun = level < 0.25 ? this.idleRun + 1 : 0;
    if (this.idleRun >= this.idleIntervals && next > 0) {
      next = Math.min(next, o.calmStep > 0 ? this.lossPct - o.calmStep : this.lossPct * IDLE_FACTOR);
    }
    this.prevError = e;
    this.prevBytes = queueBytes;
    next = Math.min(o.maxLoss, Math.max(0, next));
    // Below 5 % with the queue under its target the share is noise: off, so a quiet node refuses nothing.
    this.lossPct = next < 5 && level < 1 ? 0 : next;
  }
}

/**
 * The loss (%) at which a node refusing `lossPct` % while ρ times what it reads arrives would
 * read as much as arrives: the work per arrival, (1 − p) + p·c with c a refusal's share of an
 * admitted call's cost, must fall by 1/ρ. Draining what waits is left to the integral term.
 */
export function surgeShare(lossPct: number, rho: number): number {
  const now = 1 - (lossPct / 100) * (1 - REFUSAL_COST);
  return (100 * (1 - now / rho)) / (1 - REFUSAL_COST);
}
