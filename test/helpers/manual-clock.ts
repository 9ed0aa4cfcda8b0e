// A Clock for unit tests and benches: timers fire only when the test advances it, in due-time
// order (insertion order on ties), optionally `lag` ms late (what an event-loop lag probe sees).
import type { Clock } from '../../src/clock.js';

interface Timer { at: number; fn: () => void }

export class ManualClock implements Clock {
  t = 0;
  /** Each timer runs this many ms after its due time. */
  lag = 0;
  private seq = 0;
  protected readonly timers = new Map<number, Timer>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  get pending(): number { return this.timers.size; }

  /** Removes the earliest timer that runs by `end` and moves the clock to when it runs. */
  protected takeDue(end: number): (() => void) | undefined {
    let next: [number, Timer] | undefined;
    for (const e of this.timers) if (e[1].at + this.lag <= end && (!next || e[1].at < next[1].at)) next = e;
    if (!next) return undefined;
    this.timers.delete(next[0]);
    this.t = Math.max(this.t, next[1].at + this.lag);
    return next[1].fn;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const fn = this.takeDue(end);
      if (!fn) break;
      fn();
    }
    this.t = end;
  }
}
