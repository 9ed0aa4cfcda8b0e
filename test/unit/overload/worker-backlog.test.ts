// The worker-backlog signal (issue #18.3) with a fake clock: the worker's delay probe, the
// primary's view of every worker (silence, forgetting, staleness), the detector's onset and
// hysteresis on it, and the gate passing it through.
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, LoopDelayReporter, OverloadDetector, OverloadGate, WorkerBacklog } from '../../../src/engine/overload/index.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const T = { ...DEFAULT_THRESHOLDS, lagHighMs: 50, lagLowMs: 15, workerLagHighMs: 50, workerLagLowMs: 15, pendingHigh: 100, pendingLow: 50, maxTransactions: 0, maxDialogs: 0, intervalMs: 100, onsetIntervals: 1, stepPercent: 20, maxLossPercent: 100 };
const calm = { lagMs: 0, workerLagMs: 0, pending: 0, transactions: 0, dialogs: 0, queueBytes: 0, drops: 0 };

function ticks(d: OverloadDetector, t0: number, n: number, s: typeof calm): number {
  let t = t0;
  for (let i = 0; i < n; i++) { t += 20; d.sample(t, s); }
  return t;
}

describe('LoopDelayReporter (in a worker)', () => {
  it('reports the mean drift of its probe ticks once per report period while busy, with the period of its next report', () => {
    const clock = new ManualClock();
    const sent: [number, number][] = [];
    const r = new LoopDelayReporter(clock, (ms, next) => sent.push([ms, next]), 20, 100, 1000, 1);
    clock.advance(100);
    expect(sent).toEqual([[0, 1000]]); // an idle loop: every tick on time; calm from now on
    clock.lag = 30; // a busy loop: every tick runs 30 ms late
    clock.advance(500);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(sent.at(-1)).toEqual([30, 100]);
    r.close();
    const n = sent.length;
    clock.advance(1000);
    expect(sent.length).toBe(n);
    expect(clock.pending).toBe(0);
  });

  it('calm: probes once per report period and reports once per calm period; the first late tick reports at once', () => {
    const clock = new ManualClock();
    const sent: { at: number; ms: number; next: number }[] = [];
    let fired = 0;
    const r = new LoopDelayReporter(clock, (ms, next) => sent.push({ at: clock.now(), ms, next }), 20, 100, 1000, 1);
    const count = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) => count(() => { fired++; fn(); }, ms);
    clock.advance(100); // the first window: calm
    fired = 0;
    clock.advance(3000);
    expect(fired).toBe(30); // 10 wake-ups a second, not 50
    expect(sent.map((x) => x.at)).toEqual([100, 1100, 2100, 3100]);
    expect(sent.every((x) => x.ms === 0 && x.next === 1000)).toBe(true);
    // A stall: the next tick runs 40 ms late and is reported at once, as busy.
    clock.lag = 40;
    clock.advance(140);
    expect(sent.at(-1)).toEqual({ at: 3240, ms: 40, next: 100 });
    // Busy again: probes every 20 ms, a report every 100 ms.
    const before = sent.length;
    clock.advance(300);
    expect(sent.length - before).toBeGreaterThanOrEqual(2);
    expect(sent.at(-1)!.next).toBe(100);
    // Calm again after one calm window: the next report announces the calm period.
    clock.lag = 0;
    clock.advance(300);
    expect(sent.at(-1)!.next).toBe(1000);
    r.close();
  });

  it('each report carries its loop utilisation since the last report, rounded to a thousandth', () => {
    const clock = new ManualClock();
    const sent: number[] = [];
    const readings = [0.61234, 0.4, 1];
    let asked = 0;
    const r = new LoopDelayReporter(clock, (_ms, _next, u) => sent.push(u), 20, 100, 1000, 1, () => readings[asked++]!);
    clock.lag = 5; // busy: a report every 100 ms
    clock.advance(300);
    r.close();
    expect(sent).toEqual([0.612, 0.4, 1]);
    expect(asked).toBe(3); // read once per report, not per tick
  });

  it('a report that cannot be sent does not stop the probe', () => {
    const clock = new ManualClock();
    let calls = 0;
    clock.lag = 5; // busy: one report per 100 ms
    const r = new LoopDelayReporter(clock, () => { calls++; throw new Error('channel closed'); }, 20, 100);
    clock.advance(1000);
    expect(calls).toBeGreaterThanOrEqual(8);
    r.close();
  });
});

describe('WorkerBacklog (in the primary)', () => {
  it('is the worst worker\'s last report; 0 with no worker', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    expect(b.lagMs()).toBe(0);
    b.report(0, 12);
    b.report(1, 80);
    expect(b.lagMs()).toBe(80);
    b.report(1, 5);
    expect(b.lagMs()).toBe(12);
    b.report(0, Number.NaN); // junk over IPC is ignored
    b.report(0, -3);
    expect(b.lagMs()).toBe(12);
  });

  it('a silent worker is behind by its silence beyond two periods, less the primary\'s own lag', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    b.report(0, 10);
    clock.t = 190; // a report that is only late does not count
    expect(b.lagMs()).toBe(10);
    clock.t = 500; // 500 ms without a report: at least 300 ms behind
    expect(b.lagMs()).toBe(300);
    // The primary itself ran 250 ms late: reports were waiting unread, that part is its own lag.
    expect(b.lagMs(250)).toBe(50);
  });

  it('a calm worker\'s announced period is not silence; past it and one short period more, it is', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    b.report(0, 0.2, 1000);
    clock.t = 1100;
    expect(b.lagMs()).toBe(0.2);
    clock.t = 1500;
    expect(b.lagMs()).toBe(400);
    b.report(0, 3, 100); // busy again: two short periods
    clock.t = 1700;
    expect(b.lagMs()).toBe(3);
    clock.t = 1800;
    expect(b.lagMs()).toBe(100);
    // A period that is junk or outside [reportMs, staleMs) counts as one busy period.
    for (const junk of ['1000', -5, 50, 5000, Number.NaN]) {
      const c = { t: 0, now() { return this.t; } };
      const j = new WorkerBacklog(c, 100, 2000);
      j.report(0, 1, junk);
      c.t = 500;
      expect(j.lagMs()).toBe(300);
    }
  });

  it('a dead or replaced worker\'s last value stops counting; a worker silent for staleMs is ignored', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    b.report(0, 900);
    b.report(1, 3);
    b.forget(0);
    expect(b.lagMs()).toBe(0 + 3);
    expect(b.size).toBe(1);
    clock.t = 1999;
    expect(b.lagMs()).toBe(1799); // silent, not yet stale
    clock.t = 2000;
    expect(b.lagMs()).toBe(0); // hung or dying: the pool's business, not a reason to shed
    b.report(1, 4); // it speaks again
    expect(b.lagMs()).toBe(4);
  });

  it('stale: a worker that reported and has been silent for staleMs; not one that never spoke or was forgotten', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    b.report(0, 1);
    b.report(1, 1);
    clock.t = 1999;
    expect(b.stale(0)).toBe(false);
    b.report(1, 1);
    clock.t = 2000;
    expect(b.stale(0)).toBe(true);
    expect(b.stale(1)).toBe(false);
    expect(b.stale(7)).toBe(false); // never reported: a new worker is judged once it speaks
    b.forget(0);
    expect(b.stale(0)).toBe(false);
    b.report(0, 1);
    expect(b.stale(0)).toBe(false);
  });

  it('silentMs: the time since a worker\'s last report; none for one that never reported or was forgotten', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new WorkerBacklog(clock, 100, 2000);
    expect(b.silentMs(0)).toBeUndefined();
    b.report(0, 1);
    clock.t = 2500;
    expect(b.silentMs(0)).toBe(2500);
    b.report(0, 1);
    clock.t = 2600;
    expect(b.silentMs(0)).toBe(100);
    b.forget(0);
    expect(b.silentMs(0)).toBeUndefined();
  });
});

describe('WorkerBacklog: utilisation', () => {
  it('is the busiest worker\'s last report; a worker silent past its period counts as fully busy; stale, forgotten or invalid values do not count', () => {
    const clock = new ManualClock();
    const b = new WorkerBacklog(clock, 100, 2000);
    expect(b.utilisation()).toBeUndefined();
    b.report(0, 3, 100, 0.4);
    b.report(1, 1, 100, 0.7);
    b.report(2, 1, 100); // an older worker build: no utilisation
    expect(b.utilisation()).toBe(0.7);
    for (const bad of [1.5, -0.1, Number.NaN, '0.9']) { b.report(1, 1, 100, bad); expect(b.utilisation()).toBe(0.4); }
    b.report(1, 1, 100, 0.7);
    b.forget(1);
    expect(b.utilisation()).toBe(0.4);
    clock.advance(150);
    expect(b.utilisation()).toBe(0.4); // within its period and one more
    clock.advance(100);
    expect(b.utilisation()).toBe(1); // silent: too busy to report
    expect(b.utilisation(60)).toBe(0.4); // … unless the primary's own lag explains the silence
    clock.advance(2000);
    expect(b.utilisation()).toBeUndefined(); // stale: hung or dying, the pool's business
  });
});

describe('detector: worker backlog', () => {
  it('onset: a lone worker stall does not shed; sustained delay does, with reason worker_backlog', () => {
    const d = new OverloadDetector({ ...T, onsetIntervals: 3 });
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 5, { ...calm, workerLagMs: 300 }); // one interval (a worker's cold start)
    t = ticks(d, t, 5, calm);
    expect(d.loss).toBe(0);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) { t = ticks(d, t, 5, { ...calm, workerLagMs: 120 }); seen.push(d.loss); }
    expect(seen).toEqual([0, 0, 20, 40, 60]);
    expect(d.reason).toBe('worker_backlog');
    expect(d.signals.workerLagMs).toBe(120);
  });

  it('hysteresis: the band holds, below the low mark the loss halves; the primary idle does not end it', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 10, { ...calm, workerLagMs: 90 });
    expect(d.loss).toBe(40);
    t = ticks(d, t, 20, { ...calm, workerLagMs: 30 }); // between 15 and 50: hold
    expect(d.loss).toBe(40);
    t = ticks(d, t, 5, { ...calm, workerLagMs: 5 });
    expect(d.loss).toBe(20);
    // The worker reason wins over the primary's own lag when both are over.
    t = ticks(d, t, 5, { ...calm, lagMs: 80, workerLagMs: 80 });
    expect(d.reason).toBe('worker_backlog');
    void t;
  });

  it('a delay over the mark that is already falling holds the loss instead of raising it', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 5, { ...calm, workerLagMs: 400 });
    t = ticks(d, t, 5, { ...calm, workerLagMs: 600 });
    expect(d.loss).toBe(40);
    t = ticks(d, t, 5, { ...calm, workerLagMs: 300 }); // draining: hold
    t = ticks(d, t, 5, { ...calm, workerLagMs: 150 });
    expect(d.loss).toBe(40);
    t = ticks(d, t, 5, { ...calm, workerLagMs: 200 }); // growing again: step up
    expect(d.loss).toBe(60);
    void t;
  });

  it('is averaged over the interval: one late report among calm ones does not count', () => {
    const d = new OverloadDetector(T);
    let t = ticks(d, 0, 1, calm);
    t = ticks(d, t, 1, { ...calm, workerLagMs: 150 });
    ticks(d, t, 4, calm);
    expect(d.loss).toBe(0);
  });

  it('workerLagHighMs 0 turns it off; samples without it (one process) change nothing', () => {
    const off = new OverloadDetector({ ...T, workerLagHighMs: 0, workerLagLowMs: 0 });
    ticks(off, 0, 30, { ...calm, workerLagMs: 5000 });
    expect(off.loss).toBe(0);
    const d = new OverloadDetector(T);
    const { workerLagMs: _w, ...noWorkers } = calm;
    let t = 0;
    for (let i = 0; i < 30; i++) { t += 20; d.sample(t, { ...noWorkers, lagMs: 10 }); }
    expect(d.loss).toBe(0);
    expect(() => new OverloadDetector({ ...T, workerLagLowMs: 60 })).toThrow(/low mark/);
  });
});

describe('gate: worker backlog', () => {
  it('reads the workers\' delay every probe with its own lag, sheds by it, reports it and counts the reason', () => {
    const clock = new ManualClock();
    let workerLag = 0;
    const own: number[] = [];
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      workerLag: (ownLagMs) => { own.push(ownLagMs); return workerLag; },
    }, { ...T, onsetIntervals: 1, probeMs: 20 });
    clock.advance(200);
    expect(gate.state.loss).toBe(0);
    expect(own.every((x) => x === 0)).toBe(true);
    workerLag = 200;
    clock.advance(300);
    expect(gate.state.loss).toBeGreaterThan(0);
    expect(gate.state.reason).toBe('worker_backlog');
    expect(gate.state.workerLagMs).toBe(200);
    expect(gate.totals().worker_backlog).toBe(0);
    workerLag = 0;
    clock.advance(2000);
    expect(gate.state.loss).toBe(0);
    gate.close();
  });
});
