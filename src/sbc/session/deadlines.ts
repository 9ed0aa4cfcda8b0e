// One timer for every established call's deadlines (issue #18 item 5: memory per held call).
//
// Why: a held call used to own three node Timeouts (maximum duration and one RFC 4028 refresh
// per leg), each with a closure re-created at every re-arm, and two Refresher objects with
// their own closures: ≈ 1 KB per call that did nothing but wait for hours. Here a call is one
// entry of a binary min-heap ordered by its next deadline, and the queue arms a single clock
// timer for the earliest one.
//
// Contract:
// * `set(e, at)` queues `e` to be due at `at` (the queue's own time, `now()`), or moves it when
//   already queued; `delete(e)` takes it out. Both are O(log n) and allocate nothing once the
//   heap's array has grown.
// * When the earliest deadline comes, every entry due by then is taken out of the queue and its
//   `due(now)` called, earliest first (an entry may set itself again from inside `due`).
// * The clock timer is re-armed only when the earliest deadline changes, and cleared when the
//   queue is empty (a process with no call holds no timer).
// * Time is the clock's monotonic `elapsed()` when it has one (systemClock: a wall-clock step
//   must not fire or delay every call's timers), else its `now()` (the tests' manual clocks).
import type { Clock, SessionClock } from './clock.js';

/** What the queue orders: one per call. `slot` is the queue's (-1: not queued). */
export interface Deadline {
  dueAt: number;
  slot: number;
  due(now: number): void;
}

export class DeadlineQueue {
  private readonly heap: Deadline[] = [];
  private handle: unknown;
  /** The deadline the clock timer is armed for (Infinity: none). */
  private armedFor = Infinity;
  /** Inside fire(): entries re-queued there arm the timer once, at the end. */
  private firing = false;
  private readonly onTimer = (): void => this.fire();

  constructor(private readonly clock: SessionClock) {}

  /** The queue's time (ms). */
  now(): number { return this.clock.elapsed ? Math.floor(this.clock.elapsed()) : this.clock.now(); }

  get size(): number { return this.heap.length; }

  set(e: Deadline, at: number): void {
    const h = this.heap;
    if (e.slot >= 0 && h[e.slot] === e) {
      const was = e.dueAt;
      e.dueAt = at;
      if (at < was) this.up(e.slot); else this.down(e.slot);
    } else {
      e.dueAt = at;
      e.slot = h.length;
      h.push(e);
      this.up(e.slot);
    }
    this.arm();
  }

  delete(e: Deadline): void {
    this.remove(e);
    this.arm();
  }

  private remove(e: Deadline): void {
    const h = this.heap;
    const i = e.slot;
    if (i < 0 || h[i] !== e) return;
    e.slot = -1;
    const last = h.pop()!;
    if (last !== e) {
      h[i] = last;
      last.slot = i;
      this.up(i);
      this.down(last.slot);
    }
  }

  private fire(): void {
    this.handle = undefined;
    this.armedFor = Infinity;
    // node's timers run on the event loop's whole-millisecond time: up to 1 ms before the
    // monotonic deadline. A manual clock fires exactly.
    const now = this.now() + (this.clock.elapsed ? 1 : 0);
    const h = this.heap;
    this.firing = true;
    try {
      // Bounded: each entry due is taken out before its `due` runs (which may queue it again).
      for (let n = h.length; n > 0 && h.length > 0 && h[0]!.dueAt <= now; n--) {
        const e = h[0]!;
        this.remove(e);
        e.due(now);
      }
    } finally {
      this.firing = false;
      this.arm();
    }
  }

  private arm(): void {
    if (this.firing) return;
    const next = this.heap[0]?.dueAt ?? Infinity;
    if (next === this.armedFor) return;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.armedFor = next;
    if (next !== Infinity) this.handle = this.clock.setTimeout(this.onTimer, Math.max(0, next - this.now()));
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.dueAt <= e.dueAt) break;
      h[i] = parent;
      parent.slot = i;
      i = p;
    }
    h[i] = e;
    e.slot = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1]!.dueAt < h[c]!.dueAt) c++;
      const child = h[c]!;
      if (e.dueAt <= child.dueAt) break;
      h[i] = child;
      child.slot = i;
      i = c;
    }
    h[i] = e;
    e.slot = i;
  }
}

const queues = new WeakMap<Clock, DeadlineQueue>();

/** The one queue of a clock (systemClock: one per process). */
export function deadlinesOf(clock: Clock): DeadlineQueue {
  let q = queues.get(clock);
  if (!q) { q = new DeadlineQueue(clock); queues.set(clock, q); }
  return q;
}
