// Common machinery of the four RFC 3261 §17 state machines: state, two timer slots, termination.
import type { Protocol } from '../transport/types.js';
import type { TransactionHost, TransactionState, TransportErrorReason } from './types.js';

/**
 * At most two timers run at once in any §17 state: a retransmission timer (A, E or G) and a
 * lifetime timer (B, F, H, D, I, J, K, or RFC 6026's L and M). Two slots, no per-timer objects.
 * A timer's handler is a method (called with the transaction as `this`), not a per-instance
 * arrow function: ≈ 56 B per handler and transaction saved, ≈ 300 B under tsx (keepNames gives
 * each closure a `name` dictionary), with tens of thousands of transactions waiting at once.
 */
export abstract class TransactionBase {
  state: TransactionState;
  /** Map key in the layer's table (branch + method, plus sent-by for server transactions). */
  readonly key: string;
  /** Reliable transport (TCP/TLS): no retransmissions, Timers D/I/J/K are zero. */
  readonly reliable: boolean;
  /** Free slot for the TU (e.g. the wire server's txnId). A server transaction clears it when it
   *  has sent a final response it can only retransmit (non-INVITE, or INVITE non-2xx): nothing
   *  the TU does can reach it any more; an INVITE answered 2xx (Accepted) keeps it (CANCEL, ACK). */
  appData: unknown = undefined;
  protected readonly host: TransactionHost;
  private retransmitHandle: unknown = undefined;
  private lifetimeHandle: unknown = undefined;
  /** Position in the expiry list this transaction waits on (waitOut()), -1 when in none. The
   *  list is the layer's for the window `interval` ms long: no field of its own (8 B on each of
   *  ≈ 50,000 waiting transactions at 500 calls/s). */
  private expiryPosition = -1;
  /** The current retransmission interval (Timer A/E/G value) while retransmitting; the length
   *  of the window (Timer D/I/J/K/L/M) while waiting in an expiry list. Never both at once:
   *  waitOut() stops the retransmission timer first. */
  protected interval = 0;

  protected constructor(host: TransactionHost, key: string, protocol: Protocol, initial: TransactionState) {
    this.host = host;
    this.key = key;
    this.reliable = protocol !== 'udp';
    this.state = initial;
  }

  get terminated(): boolean {
    return this.state === 'Terminated';
  }

  protected startRetransmitTimer(ms: number, fire: (this: this) => void): void {
    this.stopRetransmitTimer();
    this.retransmitHandle = this.host.clock.setTimeout(() => {
      this.retransmitHandle = undefined;
      fire.call(this);
    }, ms);
  }

  protected stopRetransmitTimer(): void {
    if (this.retransmitHandle !== undefined) {
      this.host.clock.clearTimeout(this.retransmitHandle);
      this.retransmitHandle = undefined;
    }
  }

  protected startLifetimeTimer(ms: number, fire: (this: this) => void): void {
    this.stopLifetimeTimer();
    this.lifetimeHandle = this.host.clock.setTimeout(() => {
      this.lifetimeHandle = undefined;
      fire.call(this);
    }, ms);
  }

  protected stopLifetimeTimer(): void {
    if (this.lifetimeHandle !== undefined) {
      this.host.clock.clearTimeout(this.lifetimeHandle);
      this.lifetimeHandle = undefined;
    }
  }

  /** Enter Terminated: stop timers, leave the layer's table, tell the TU. Idempotent. */
  terminate(): void {
    if (this.state === 'Terminated') return;
    this.state = 'Terminated';
    this.stopRetransmitTimer();
    this.stopLifetimeTimer();
    this.leaveExpiryList();
    this.host.remove(this as never);
  }

  private leaveExpiryList(): void {
    if (this.expiryPosition < 0) return;
    this.host.expiryList(this.interval).remove(this.expiryPosition, this);
    this.expiryPosition = -1;
  }

  /** Timer D/I/J/K: wait `ms` over UDP, terminate at once over a reliable transport. */
  protected terminateAfter(unreliableMs: number): void {
    if (this.reliable || unreliableMs <= 0) this.terminate();
    else this.waitOut(unreliableMs);
  }

  /**
   * Enter a window in which this transaction only absorbs retransmissions (Timer D, I, J, K, L,
   * M): with no timer of its own, it joins the layer's expiry list for windows of `ms`, which
   * calls expire() at the end (expiry.ts). Call with no other timer left running.
   */
  protected waitOut(ms: number): void {
    this.stopRetransmitTimer();
    this.stopLifetimeTimer();
    if (ms <= 0) {
      this.terminate();
      return;
    }
    this.interval = ms;
    this.expiryPosition = this.host.expiryList(ms).add(this);
  }

  /** The window entered by waitOut() ended: Timer D/I/J/K/L/M fired. The list has already
   *  dropped this entry. */
  expire(): void {
    this.expiryPosition = -1;
    this.terminate();
  }

  /** The transport reported a failure outside a send (connection closed, ICMP unreachable). */
  transportFailedExternally(reason: TransportErrorReason, detail?: string): void {
    this.transportFailed(reason, detail);
  }

  /** Stop timers and go quiet, without TU events (layer shutdown). */
  abandon(): void {
    this.stopRetransmitTimer();
    this.stopLifetimeTimer();
    this.leaveExpiryList();
    this.state = 'Terminated';
  }

  /** RFC 3261 §17.1.4 / §17.2.4: the transport failed; inform the TU and terminate. */
  protected transportFailed(reason: TransportErrorReason, detail?: string): void {
    if (this.state === 'Terminated') return;
    this.host.counters.transportErrors++;
    this.stopRetransmitTimer();
    this.stopLifetimeTimer();
    this.host.guard(() => this.host.tu.transportError(this as never, reason, detail));
    this.terminate();
  }
}
