// Expiry lists: the end of the windows in which a transaction only absorbs retransmissions.
//
// Contract. A transaction that has nothing left to send on its own (RFC 3261 §17: NIST
// Completed for Timer J, NICT Completed for K, IST Confirmed for I, ICT Completed for D; RFC
// 6026: IST Accepted for L, ICT Accepted for M) waits out a window whose length is the same for
// every transaction entering it (64*T1, T4 or D). Entries therefore join a list in deadline
// order, and ONE timer per list, armed for the head's deadline, ends each entry exactly when
// its own timer would have: no Node Timeout, closure and context per waiting transaction
// (≈ 250 B each, with 30,000–50,000 waiting at 500 calls/s). An entry that ends earlier
// (transport failure, an explicit terminate(): e.g. a 481 to a forged request) is taken out at
// once with the position add() returned (remove()), so the list never keeps it alive.
// The same list serves any fixed delay per entry: RFC 3261 §17.2.1's deferred 100 Trying uses
// one with its own `due` action (layer.ts).
import type { Clock } from '../transport/types.js';

/** What a list can end: a transaction that is either still waiting or already terminated. */
export interface Expirable {
  readonly terminated: boolean;
  /** The window ended: enter Terminated (the state machine's Timer D/I/J/K/L/M handler). */
  expire(): void;
}

/** The window ended: enter Terminated (the default action). */
function expireItem(item: Expirable): void {
  item.expire();
}

export class ExpiryList {
  /** Window length (ms) shared by every entry. */
  readonly ms: number;
  private readonly clock: Clock;
  /** What happens to an entry still live at its deadline. */
  private readonly due: (item: Expirable) => void;
  private items: (Expirable | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  /** Position (as add() returns it) of items[0]: positions stay valid across compaction. */
  private base = 0;
  private live = 0;
  private handle: unknown = undefined;

  constructor(clock: Clock, ms: number, due: (item: Expirable) => void = expireItem) {
    this.clock = clock;
    this.ms = ms;
    this.due = due;
  }

  /** Entries waiting for their deadline. */
  get size(): number {
    return this.live;
  }

  /** Start `item`'s window now. Returns its position, for remove(). */
  add(item: Expirable): number {
    const position = this.base + this.items.length;
    this.items.push(item);
    this.deadlines.push(this.clock.now() + this.ms);
    this.live++;
    if (this.handle === undefined) this.handle = this.clock.setTimeout(this.fire, this.ms);
    return position;
  }

  /** `item` ended before its deadline: forget it now (its slot stays empty until then). */
  remove(position: number, item: Expirable): void {
    const i = position - this.base;
    if (i < this.head || i >= this.items.length || this.items[i] !== item) return;
    this.items[i] = undefined;
    this.live--;
  }

  /** Forget every entry and stop the timer (layer shutdown); nothing is expired. */
  clear(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.base += this.items.length;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
    this.live = 0;
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    const now = this.clock.now();
    const items = this.items;
    const deadlines = this.deadlines;
    // Entries added while expiring (a TU reacting to a termination) land after `end`; they are
    // not due yet anyway, their deadline being a whole window away.
    const end = items.length;
    let i = this.head;
    while (i < end && deadlines[i]! <= now) {
      const item = items[i];
      items[i] = undefined;
      i++;
      this.head = i;
      if (item === undefined) continue;
      this.live--;
      if (!item.terminated) this.due(item);
    }
    this.compact();
    if (this.head < this.items.length) {
      this.handle = this.clock.setTimeout(this.fire, Math.max(1, this.deadlines[this.head]! - now));
    }
  };

  /** Drop the expired prefix once it is most of the arrays (amortised O(1) per entry). */
  private compact(): void {
    if (this.head === this.items.length) {
      this.base += this.items.length;
      this.items.length = 0;
      this.deadlines.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.base += this.head;
      this.items = this.items.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
