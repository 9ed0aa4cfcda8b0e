// Overload detector (hysteresis, recovery) and the RFC 7339 loss throttle, with a fake clock.
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, LossThrottle, OverloadDetector } from '../../../src/engine/overload/index.js';

const T = { ...DEFAULT_THRESHOLDS, lagHighMs: 50, lagLowMs: 15, pendingHigh: 100, pendingLow: 50, maxTransactions: 1000, maxDialogs: 0, intervalMs: 100, onsetIntervals: 1, stepPercent: 20, maxLossPercent: 100 };
const calm = { lagMs: 0, pending: 0, transactions: 0, dialogs: 0, queueBytes: 0, drops: 0 };
const KIB = 1024;

/** Feed `n` ticks of 20 ms with `s` starting at `t0`; returns the time after. */
function ticks(d: OverloadDetector, t0: number, n: number, s: typeof calm): number {
  let t = t0;
  for (let i = 0; i < n; i++) { t += 20; d.sample(t, s); }
  return t;
}

describe('overload detector', () => {
  it('starts at loss 0 and stays there under normal load', () => {
    const d = new OverloadDetector(T);
    ticks(d, 0, 50, { ...calm, lagMs: 10, pending: 40 });
    expect(d.loss).toBe(0);
    expect(d.reason).toBeUndefined();
  });

  it('lag over the high mark raises loss one step per interval, up to the ceiling', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm); // opens the first interval
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) { t = ticks(d, t, 5, { ...calm, lagMs: 80 }); seen.push(d.loss); }
    expect(seen).toEqual([20, 40, 60, 80, 100, 100, 100]);
    expect(d.reason).toBe('event_loop_lag');
  });

  it('onset: from loss 0, shedding starts only after onsetIntervals overloaded intervals in a row', () => {
    const d = new OverloadDetector({ ...T, onsetIntervals: 3 });
    let t = ticks(d, 0, 1, calm);
    // A lone 200 ms stall: one interval whose mean lag is far over the mark, then calm.
    t = ticks(d, t, 1, { ...calm, lagMs: 200 });
    t = ticks(d, t, 4, { ...calm, lagMs: 200 });
    expect(d.loss).toBe(0);
    t = ticks(d, t, 5, { ...calm, lagMs: 5 });
    // Two over, one calm, two over: never three in a row.
    for (const lag of [80, 80, 5, 80, 80, 5]) t = ticks(d, t, 5, { ...calm, lagMs: lag });
    expect(d.loss).toBe(0);
    // Sustained: the third interval in a row starts shedding, the next ones step up at once.
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) { t = ticks(d, t, 5, { ...calm, lagMs: 80 }); seen.push(d.loss); }
    expect(seen).toEqual([0, 0, 20, 40, 60]);
    // While shedding, a band interval (15–50 ms) holds; one over interval steps up again at once.
    t = ticks(d, t, 5, { ...calm, lagMs: 30 });
    t = ticks(d, t, 5, { ...calm, lagMs: 80 });
    expect(d.loss).toBe(80);
  });

  it('receive queue: bytes over the mark while filling, or any kernel drop, shed at once (no onset); then the loss follows the queue, not steps', () => {
    const d = new OverloadDetector({ ...T, onsetIntervals: 3, queueHighBytes: 250 * KIB, queueLowBytes: 50 * KIB });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 5, { ...calm, queueBytes: 200 * KIB });
    expect(d.loss).toBe(0); // below the high mark
    t = ticks(d, t, 5, { ...calm, queueBytes: 300 * KIB });
    const first = d.loss;
    expect(first).toBeGreaterThanOrEqual(20);
    expect(d.reason).toBe('receive_queue');
    t = ticks(d, t, 5, { ...calm, queueBytes: 600 * KIB }); // still filling: at least one more step
    const second = d.loss;
    expect(second).toBeGreaterThanOrEqual(first + 20);
    t = ticks(d, t, 5, { ...calm, queueBytes: 400 * KIB }); // over the mark but draining: less than a step up
    expect(d.loss).toBeLessThan(second + 20);
    // At the target (the low mark) the loss holds: the share that keeps the queue there.
    t = ticks(d, t, 5, { ...calm, queueBytes: 50 * KIB });
    const held = d.loss;
    for (let i = 0; i < 5; i++) t = ticks(d, t, 5, { ...calm, queueBytes: 50 * KIB });
    expect(d.loss).toBe(held);
    expect(held).toBeGreaterThan(0);
    // Above the target it rises a little each interval, below it falls a little: no halving, no step.
    t = ticks(d, t, 5, { ...calm, queueBytes: 100 * KIB });
    const up = d.loss;
    expect(up).toBeGreaterThan(held);
    expect(up - held).toBeLessThan(10);
    t = ticks(d, t, 5, { ...calm, queueBytes: 100 * KIB });
    expect(d.loss).toBeGreaterThan(up);
    t = ticks(d, t, 5, { ...calm, queueBytes: 30 * KIB });
    expect(d.loss).toBeLessThan(up);
    expect(d.loss).toBeGreaterThan(up / 2);
    // Nearly empty for a few intervals: the overload is over, the loss halves down to 0.
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) { t = ticks(d, t, 5, { ...calm, queueBytes: 5 * KIB }); seen.push(d.loss); }
    expect(seen[seen.length - 1]).toBe(0);
    expect(seen.indexOf(0)).toBeLessThanOrEqual(8);
    // Drops are summed over the interval: one drop in one tick starts it again.
    t = ticks(d, t, 1, { ...calm, drops: 1 });
    ticks(d, t, 4, calm);
    expect(d.loss).toBeGreaterThanOrEqual(20);
    // Queue and lag both over: the queue is the reason, and no onset wait applies.
    const e = new OverloadDetector({ ...T, onsetIntervals: 3 });
    ticks(e, ticks(e, 0, 1, calm), 5, { ...calm, lagMs: 80, queueBytes: 900 * KIB });
    expect(e.loss).toBeGreaterThanOrEqual(20);
    expect(e.reason).toBe('receive_queue');
  });

  it('receive queue: queueHighBytes 0 turns the signal off, drops included', () => {
    const d = new OverloadDetector({ ...T, queueHighBytes: 0, queueLowBytes: 0 });
    ticks(d, 0, 30, { ...calm, queueBytes: 1000 * KIB, drops: 100 });
    expect(d.loss).toBe(0);
  });

  it('onsetIntervals must be a whole number of at least 1', () => {
    expect(() => new OverloadDetector({ ...T, onsetIntervals: 0 })).toThrow(/onsetIntervals/);
    expect(() => new OverloadDetector({ ...T, onsetIntervals: 1.5 })).toThrow(/onsetIntervals/);
  });

  it('one GC-like stall inside an interval is averaged away', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 1, { ...calm, lagMs: 120 });
    ticks(d, t, 4, calm);
    expect(d.loss).toBe(0);
  });

  it('hysteresis: between the marks the loss holds; below the low marks it halves quickly to 0', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 15, { ...calm, pending: 150 });
    expect(d.loss).toBe(60);
    expect(d.reason).toBe('pending_setups');
    t = ticks(d, t, 25, { ...calm, pending: 70 }); // in the band: hold
    expect(d.loss).toBe(60);
    const down: number[] = [];
    for (let i = 0; i < 4; i++) { t = ticks(d, t, 5, { ...calm, pending: 10 }); down.push(d.loss); }
    expect(down).toEqual([30, 15, 7, 0]);
    expect(d.reason).toBeUndefined();
  });

  it('pending setups are not a signal by default: calls waiting for their callee to ring are no overload', () => {
    // 2,500 INVITEs without a provisional response: 250 calls/s with 10 s of post-dial delay.
    const d = new OverloadDetector({ ...DEFAULT_THRESHOLDS, intervalMs: 100, onsetIntervals: 1 });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 50, { ...calm, pending: 2500 });
    expect(d.loss).toBe(0);
    // Nor do they keep a loss another signal raised from falling once that signal is calm.
    t = ticks(d, t, 15, { ...calm, lagMs: 80, pending: 2500 });
    expect(d.loss).toBeGreaterThan(0);
    ticks(d, t, 40, { ...calm, pending: 2500 });
    expect(d.loss).toBe(0);
  });

  it('pending setups with only a high mark: calm below half of it', () => {
    const d = new OverloadDetector({ ...T, pendingHigh: 100, pendingLow: 0 });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 10, { ...calm, pending: 150 });
    expect(d.loss).toBe(40);
    t = ticks(d, t, 10, { ...calm, pending: 60 }); // between half and the mark: hold
    expect(d.loss).toBe(40);
    ticks(d, t, 25, { ...calm, pending: 40 });
    expect(d.loss).toBe(0);
  });

  it('transactions and dialogs are signals only when set', () => {
    const d = new OverloadDetector({ ...T, maxDialogs: 500 });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 5, { ...calm, transactions: 1001 });
    expect(d.reason).toBe('transactions');
    const off = new OverloadDetector({ ...T, maxTransactions: 0 });
    ticks(off, 0, 20, { ...calm, transactions: 10_000_000 });
    expect(off.loss).toBe(0);
    const dd = new OverloadDetector({ ...T, maxDialogs: 500 });
    ticks(dd, 0, 6, { ...calm, dialogs: 501 });
    expect(dd.reason).toBe('dialogs');
    void t;
  });

  it('calmStepPercent: each calm period takes that much off instead of halving', () => {
    const d = new OverloadDetector({ ...T, calmStepPercent: 10 });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 20, { ...calm, pending: 150 });
    expect(d.loss).toBe(80);
    const down: number[] = [];
    for (let i = 0; i < 9; i++) { t = ticks(d, t, 5, { ...calm, pending: 10 }); down.push(d.loss); }
    expect(down).toEqual([70, 60, 50, 40, 30, 20, 10, 0, 0]);
    expect(() => new OverloadDetector({ ...T, calmStepPercent: -1 })).toThrow(/calmStepPercent/);
  });

  it('rejects thresholds that make no sense', () => {
    expect(() => new OverloadDetector({ ...T, lagLowMs: 60 })).toThrow(/low mark/);
    expect(() => new OverloadDetector({ ...T, maxLossPercent: 120 })).toThrow(/max loss/);
  });
});

describe('RFC 7339 loss throttle', () => {
  it('refuses exactly the given share, deterministically', () => {
    for (const loss of [0, 10, 25, 30, 50, 90, 100]) {
      const th = new LossThrottle();
      let refused = 0;
      for (let i = 0; i < 1000; i++) if (th.refuse(loss)) refused++;
      expect(refused).toBe(loss * 10);
    }
  });

  it('spreads refusals out instead of refusing in a block', () => {
    const th = new LossThrottle();
    const pattern = Array.from({ length: 10 }, () => (th.refuse(30) ? 'x' : '.')).join('');
    expect(pattern).toBe('...x..x..x');
  });
});
