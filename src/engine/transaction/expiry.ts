// Expiry lists: the end of the windows in which a transaction only absorbs retransmissions.
//
// Contract. A transaction that has nothing left to send on its own (RFC 3261 §17: NIST
// Completed for Timer J, NICT Completed for K, IST Confirmed for I, ICT Completed for D; RFC
// 6026: IST Accepted for L, ICT Accepted for M) waits out a window whose length is the same for
// every transaction entering it (64*T1, T4 or D). Entries therefore join a list in deadline
// order, and ONE timer per list, armed for the head's deadline, ends each entry exactly when
// its own timer would have: no Node Timeout, closure and context per waiting transaction
// (≈ 250 B each, with 30,000–50,000 waiting at 500 calls/s). An entry that ended earlier
// (transport failure, an explicit terminate()) is skipped when its deadline comes.
import type { Clock } from '../transport/types.js';

/** What a list can end: a transaction that is either still waiting or already terminated. */
export interface Expirable {
  readonly terminated: boolean;
  /** The window ended: enter Terminated (the state machine's Timer D/I/J/K/L/M handler). */
  expire(): void;
}

export class ExpiryList {
  /** Window length (ms) shared by every entry. */
  readonly ms: number;
  private readonly clock: Clock;
  private items: (Expirable | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private handle: unknown = undefined;

  constructor(clock: Clock, ms: number) {
    this.clock = clock;
    this.ms = ms;
  }

  /** Entries still listed (including ones that ended early and await their deadline). */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Start `item`'s window now. */
  add(item: Expirable): void {
    this.items.push(item);
    this.deadlines.push(this.clock.now() + this.ms);
    if (this.handle === undefined) this.handle = this.clock.setTimeout(this.fire, this.ms);
  }

  /** Forget every entry and stop the timer (layer shutdown); nothing is expired. */
  clear(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
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
      const item = items[i]!;
      items[i] = undefined;
      i++;
      this.head = i;
      if (!item.terminated) item.expire();
    }
    this.compact();
    if (this.head < this.items.length) {
      this.handle = this.clock.setTimeout(this.fire, Math.max(1, this.deadlines[this.head]! - now));
    }
  };

  /** Drop the expired prefix once it is most of the arrays (amortised O(1) per entry). */
  private compact(): void {
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.deadlines.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
