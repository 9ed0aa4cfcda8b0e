// RFC 3261 §13.3.1.4: the UAS core (not the transaction) retransmits a 2xx to INVITE until the
// ACK arrives: T1, doubling up to T2, giving up after 64*T1 (then the core sends BYE).
// The same schedule without the T2 cap (T2: Infinity) is RFC 3262 §3's for reliable
// provisionals until their PRACK.
import { systemClock, type Clock } from '../transport/types.js';
import { DEFAULT_TIMERS } from './types.js';

export interface TwoXxRetransmitterOptions {
  /** Re-send the 2xx (the same bytes each time). */
  retransmit: () => void;
  /** No ACK within 64*T1 (RFC 3261 §13.3.1.4: the core should end the dialog with BYE). */
  giveUp: () => void;
  clock?: Clock;
  T1?: number;
  T2?: number;
  /**
   * Skip retransmissions (still give up after 64*T1). RFC 3261 retransmits 2xx end to end even
   * over TCP, because a proxy on the path may use UDP; set this only for a direct reliable hop.
   */
  noRetransmit?: boolean;
}

export class TwoXxRetransmitter {
  private readonly opts: TwoXxRetransmitterOptions;
  private readonly clock: Clock;
  private readonly T1: number;
  private readonly T2: number;
  private interval = 0;
  private retransmitHandle: unknown = undefined;
  private giveUpHandle: unknown = undefined;
  private active = false;
  /** Retransmissions sent so far. */
  count = 0;

  constructor(opts: TwoXxRetransmitterOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.T1 = opts.T1 ?? DEFAULT_TIMERS.T1;
    this.T2 = opts.T2 ?? DEFAULT_TIMERS.T2;
  }

  get running(): boolean {
    return this.active;
  }

  /** Call right after sending the 2xx the first time. */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.interval = this.T1;
    if (!this.opts.noRetransmit) this.retransmitHandle = this.clock.setTimeout(this.fire, this.interval);
    this.giveUpHandle = this.clock.setTimeout(this.expire, 64 * this.T1);
  }

  /** The ACK arrived (or the dialog ended): stop. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.retransmitHandle !== undefined) this.clock.clearTimeout(this.retransmitHandle);
    if (this.giveUpHandle !== undefined) this.clock.clearTimeout(this.giveUpHandle);
    this.retransmitHandle = undefined;
    this.giveUpHandle = undefined;
  }

  private readonly fire = (): void => {
    this.retransmitHandle = undefined;
    if (!this.active) return;
    this.count++;
    this.opts.retransmit();
    if (!this.active) return;
    this.interval = Math.min(2 * this.interval, this.T2);
    this.retransmitHandle = this.clock.setTimeout(this.fire, this.interval);
  };

  private readonly expire = (): void => {
    this.giveUpHandle = undefined;
    if (!this.active) return;
    this.stop();
    this.opts.giveUp();
  };
}
