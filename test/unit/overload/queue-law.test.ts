// The receive-queue law (queue-law.ts) through the detector, with a fake clock and a model node:
// one core's worth of work per 100 ms, an admitted call costing 0.9 ms and a refused INVITE
// 0.14 ms (BENCHMARKS.md), the kernel queue charged ≈ 5.5 KB per ms of work waiting, and the
// gate's reading jittered ±30 % (it samples the queue at a random phase of the loop's reads).
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, OverloadDetector } from '../../../src/engine/overload/index.js';
import { QueueLaw, surgeShare } from '../../../src/engine/overload/queue-law.js';

const KIB = 1024;
const T = { ...DEFAULT_THRESHOLDS, onsetIntervals: 3 };
const calm = { lagMs: 0, pending: 0, transactions: 0, dialogs: 0, queueBytes: 0, drops: 0 };

interface Point { t: number; loss: number; queue: number; delay: number }

/** A node at `rate(t)` new calls/s for `ms`; the detector sampled every 20 ms, the queue read once per 100 ms. */
/** `bytesPerMs`: the kernel's charge per ms of work waiting (more for a mix of small messages);
 *  `delay`: the gate's delay reading too (the work waiting, in ms, with the same jitter). */
function run(d: OverloadDetector, rate: (tMs: number) => number, ms: number, opts: { callMs?: number; refuseMs?: number; bytesPerMs?: number; delay?: boolean } = {}): Point[] {
  const callMs = opts.callMs ?? 0.9;
  const refuseMs = opts.refuseMs ?? 0.14;
  const bytesPerMs = opts.bytesPerMs ?? 5.5 * 1000;
  let delay = 0;
  let seed = 12345;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  let work = 0; // ms of work waiting in the queue
  let reading = 0;
  let owed = 0; // fractional calls carried between ticks
  const out: Point[] = [];
  for (let t = 20; t <= ms; t += 20) {
    owed += (rate(t) * 20) / 1000;
    const n = Math.floor(owed);
    owed -= n;
    const p = d.loss / 100;
    work = Math.max(0, work + n * ((1 - p) * callMs + p * refuseMs) - 20);
    if (t % 100 === 0) {
      const jitter = 0.7 + 0.6 * rand();
      reading = Math.round(work * bytesPerMs * jitter);
      delay = work * jitter;
    }
    d.sample(t, { ...calm, queueBytes: reading, ...(opts.delay ? { queueDelayMs: delay } : {}) });
    if (t % 100 === 0) out.push({ t, loss: d.loss, queue: reading, delay });
  }
  return out;
}

const between = (ps: Point[], from: number, to: number) => ps.filter((p) => p.t >= from && p.t < to);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('receive-queue law (proportional-integral on the queue)', () => {
  it('settles on a constant 3× overload: no 0 ↔ 100 swing, the queue held near its target', () => {
    const d = new OverloadDetector(T);
    // Capacity ≈ 1,111 calls/s; 1,800/s offered needs ≈ 45 % refused.
    const ps = run(d, () => 1800, 8000);
    if (process.env.TRACE) console.log(ps.map((p) => `${p.loss}:${Math.round(p.queue / 1024)}`).join(" "));
    const steady = between(ps, 2000, 8000);
    const losses = steady.map((p) => p.loss);
    expect(Math.min(...losses)).toBeGreaterThan(20);
    expect(Math.max(...losses)).toBeLessThan(80);
    expect(Math.max(...losses) - Math.min(...losses)).toBeLessThanOrEqual(30);
    expect(mean(losses)).toBeGreaterThan(35);
    expect(mean(losses)).toBeLessThan(60);
    expect(mean(steady.map((p) => p.queue))).toBeLessThan(2 * T.queueLowBytes);
    expect(Math.max(...steady.map((p) => p.queue))).toBeLessThan(T.queueHighBytes * 2);
    expect(d.reason).toBe('receive_queue');
  });

  it('settles at 2× too, with a smaller share refused', () => {
    const d = new OverloadDetector(T);
    const losses = between(run(d, () => 1200, 8000), 2000, 8000).map((p) => p.loss);
    expect(Math.max(...losses) - Math.min(...losses)).toBeLessThanOrEqual(30);
    expect(mean(losses)).toBeGreaterThan(3);
    expect(mean(losses)).toBeLessThan(30);
  });

  it('recovers when the overload ends: loss 0 within a second at 10 % of the load', () => {
    const d = new OverloadDetector(T);
    const ps = run(d, (t) => (t <= 6000 ? 1800 : 180), 9000);
    expect(between(ps, 5000, 6000).every((p) => p.loss > 0)).toBe(true);
    const zeroAt = ps.find((p) => p.t > 6000 && p.loss === 0)?.t;
    expect(zeroAt).toBeDefined();
    expect(zeroAt! - 6000).toBeLessThanOrEqual(1000);
    expect(between(ps, zeroAt!, 9000).every((p) => p.loss === 0)).toBe(true);
    expect(d.reason).toBeUndefined();
  });

  it('a queue under the high mark from loss 0 sheds nothing (the backlog of a GC pause); over it while filling, or a kernel drop, starts at once', () => {
    const d = new OverloadDetector(T);
    let t = 0;
    const interval = (s: Partial<typeof calm>) => { for (let i = 0; i < 5; i++) { t += 20; d.sample(t, { ...calm, ...s }); } };
    interval({});
    interval({ queueBytes: 180 * KIB });
    interval({ queueBytes: 10 * KIB });
    expect(d.loss).toBe(0);
    interval({ queueBytes: 300 * KIB });
    expect(d.loss).toBeGreaterThanOrEqual(T.stepPercent);
    expect(d.reason).toBe('receive_queue');
    const e = new OverloadDetector(T);
    t = 0;
    for (let i = 0; i < 15; i++) { t += 20; e.sample(t, { ...calm, drops: i === 7 ? 1 : 0 }); }
    expect(e.loss).toBeGreaterThanOrEqual(T.stepPercent);
  });

  it('while regulating, a lone spike of the reading moves the loss a little; a surge over the high mark two intervals in a row steps it', () => {
    const law = new QueueLaw({ targetBytes: 48 * KIB, highBytes: 192 * KIB, burstStep: 20, calmStep: 0, maxLoss: 100 });
    law.update(300 * KIB, 0); // start
    for (let i = 0; i < 30; i++) law.update(48 * KIB, 0);
    const held = law.loss;
    law.update(2000 * KIB, 0); // one reading during a GC pause
    law.update(48 * KIB, 0);
    law.update(48 * KIB, 0);
    expect(Math.abs(law.loss - held)).toBeLessThanOrEqual(4);
    law.update(400 * KIB, 0);
    const first = law.loss;
    law.update(500 * KIB, 0);
    expect(law.loss).toBeGreaterThanOrEqual(first + 20);
  });

  it('a surge in delay two intervals in a row: the loss goes at once to the share the growth implies, not 20 points an interval', () => {
    // ρ = what arrives over what is read: the delay grows by ρ − 1 ms per ms.
    expect(surgeShare(0, 2)).toBeCloseTo(100 * 0.5 / 0.85, 5);
    expect(surgeShare(50, 1)).toBeCloseTo(50, 5); // balanced at the present loss: keep it
    expect(surgeShare(20, 1.8)).toBeGreaterThan(60);
    const law = (): QueueLaw => new QueueLaw({ targetBytes: 48 * KIB, highBytes: 192 * KIB, targetDelayMs: 10, burstStep: 20, calmStep: 0, maxLoss: 100 });
    const surge = (elapsed: number | undefined): number => {
      const l = law();
      l.update(0, 0, 0, elapsed);
      l.update(300 * KIB, 0, 100, elapsed); // started: burstStep
      expect(l.loss).toBeLessThan(30);
      l.update(540 * KIB, 0, 180, elapsed); // +80 ms in 100 ms at 20 % refused: ρ ≈ 1.8
      return l.loss;
    };
    expect(surge(100)).toBeGreaterThan(60);
    // Without the interval's length, only the step and the (clipped) error move it.
    expect(surge(undefined)).toBeLessThan(50);
    // A queue that shrinks after a stall's reading gets no share from it.
    const shrinking = law();
    shrinking.update(0, 0, 0, 100);
    shrinking.update(400 * KIB, 0, 300, 100);
    shrinking.update(300 * KIB, 0, 120, 100);
    expect(shrinking.loss).toBeLessThan(30);
    // One interval's jump (the reader paused: its delay reads high) between two of little growth
    // is no surge: the lesser growth counts. The step still answers it.
    const paused = law();
    paused.update(0, 0, 0, 100);
    paused.update(250 * KIB, 0, 5, 100); // started, the delay still short
    paused.update(400 * KIB, 0, 160, 100); // +155 ms in 100 ms: ρ 2.55 read alone
    expect(paused.loss).toBeLessThan(50);
  });

  it('the loss is a whole number (RFC 7339 oc value) and never leaves 0–maxLossPercent', () => {
    const d = new OverloadDetector({ ...T, maxLossPercent: 70 });
    const ps = run(d, () => 5000, 4000);
    for (const p of ps) {
      expect(Number.isInteger(p.loss)).toBe(true);
      expect(p.loss).toBeLessThanOrEqual(70);
    }
    expect(Math.max(...ps.map((p) => p.loss))).toBe(70);
  });

  it('the larger law sets the loss and its reason: pending setups over the queue law', () => {
    const d = new OverloadDetector({ ...T, pendingHigh: 100, pendingLow: 50 });
    let t = 0;
    for (let i = 0; i < 50; i++) { t += 20; d.sample(t, { ...calm, pending: 500, queueBytes: 0 }); }
    expect(d.loss).toBe(100);
    expect(d.reason).toBe('pending_setups');
  });

  it('in delay (the gate measures one): the same overload settles at the same delay whatever the kernel charges per message; in bytes it does not', () => {
    const steady = (bytesPerMs: number, delay: boolean) => between(run(new OverloadDetector(T), () => 1800, 8000, { bytesPerMs, delay }), 2000, 8000);
    // A mix of smaller messages charges the queue more per ms of work (ACKs and BYEs: 1.3 KB for ≈ 0.4 KB).
    const [d1, d2] = [steady(5.5 * 1000, true), steady(11 * 1000, true)];
    const [b1, b2] = [steady(5.5 * 1000, false), steady(11 * 1000, false)];
    const delayOf = (ps: Point[]) => mean(ps.map((p) => p.delay));
    expect(delayOf(d2)).toBeGreaterThan(0.8 * delayOf(d1));
    expect(delayOf(d2)).toBeLessThan(1.25 * delayOf(d1));
    // The byte law reads twice the bytes as twice the backlog: it holds half the delay.
    expect(delayOf(b2)).toBeLessThan(0.7 * delayOf(b1));
    for (const ps of [d1, d2]) {
      const losses = ps.map((p) => p.loss);
      expect(Math.max(...losses) - Math.min(...losses)).toBeLessThanOrEqual(30);
      // The mean delay sits near the 10 ms target (the readings jitter ±30 %).
      expect(mean(ps.map((p) => p.delay))).toBeGreaterThan(0.5 * T.queueDelayTargetMs);
      expect(mean(ps.map((p) => p.delay))).toBeLessThan(2 * T.queueDelayTargetMs);
    }
  });

  it('in delay: recovers when the overload ends, and a short queue read fast sheds nothing', () => {
    const d = new OverloadDetector(T);
    const ps = run(d, (t) => (t <= 6000 ? 1800 : 180), 9000, { delay: true });
    const zeroAt = ps.find((p) => p.t > 6000 && p.loss === 0)?.t;
    expect(zeroAt).toBeDefined();
    expect(zeroAt! - 6000).toBeLessThanOrEqual(1000);
    const law = new QueueLaw({ targetBytes: 48 * KIB, highBytes: 192 * KIB, targetDelayMs: 10, burstStep: 20, calmStep: 0, maxLoss: 100 });
    law.update(300 * KIB, 0, 30); // started by the high mark
    const started = law.loss;
    // 100 KiB waiting, read at 20 MB/s: 5 ms, under the target: the share falls.
    for (let i = 0; i < 5; i++) law.update(100 * KIB, 0, 5);
    expect(law.loss).toBeLessThan(started);
    // Without a delay reading the same queue is twice the byte target: the share climbs back.
    const bytes = new QueueLaw({ targetBytes: 48 * KIB, highBytes: 192 * KIB, targetDelayMs: 10, burstStep: 20, calmStep: 0, maxLoss: 100 });
    bytes.update(300 * KIB, 0);
    for (let i = 0; i < 5; i++) bytes.update(100 * KIB, 0);
    expect(bytes.loss).toBeGreaterThan(law.loss + 5);
  });

  it('rejects a delay target that is not positive', () => {
    expect(() => new QueueLaw({ targetBytes: 10, highBytes: 10, targetDelayMs: 0, burstStep: 20, calmStep: 0, maxLoss: 100 })).toThrow(/delay target/);
  });

  it('rejects a target of 0 or above the high mark', () => {
    expect(() => new QueueLaw({ targetBytes: 0, highBytes: 10, burstStep: 20, calmStep: 0, maxLoss: 100 })).toThrow(/target/);
    expect(() => new QueueLaw({ targetBytes: 20, highBytes: 10, burstStep: 20, calmStep: 0, maxLoss: 100 })).toThrow(/target/);
  });
});
