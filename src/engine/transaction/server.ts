// RFC 3261 §17.2 server transactions, with RFC 6026's Accepted state for INVITE.
// Memory contract: once the final response is sent, a transaction keeps only what absorbing
// retransmissions needs (key, target, the final's bytes as a string while Completed); `request`
// and `meta` are released then (reading them throws), and so is the TU's `appData` except in
// Accepted (the TU still acts on a 2xx-answered INVITE). Accepted and Confirmed keep no bytes,
// and a transaction that only absorbs (Accepted, Confirmed, NIST Completed) has no timer of its
// own: the layer's expiry list for its window ends it (expiry.ts).
import type { SipRequest, SipResponse } from '../message/types.js';
import { serialize } from '../message/serialize.js';
import type { SendTarget } from '../transport/types.js';
import { TransactionBase } from './base.js';
import { buildResponse } from './build.js';
import { keepBytes, keptBytes, methodName } from './own.js';
import { serverKeyBranch } from './headers.js';
import type { InboundMeta, TransactionHost } from './types.js';

abstract class ServerTransactionBase extends TransactionBase {
  /** 'INVITE' for an INVITE transaction (on its prototype, no field); the request's method,
   *  interned (own.ts methodName), for a non-INVITE one. */
  abstract readonly method: string;
  /** Released with the final response (memory: a transaction waiting out Timer G/H/I/J/L keeps
   *  only its key, target, last response bytes and timers; ≈ 112,000 wait at 500 calls/s). */
  private req: SipRequest | undefined;
  private inbound: InboundMeta | undefined;
  /**
   * Where responses go: by default back to the request's source over its connection, which is
   * RFC 3581 rport behaviour (the engine stamps rport on every request, as drachtio does).
   * The TU may replace it before its first response (RFC 3261 §18.2.2 rules, maddr …).
   */
  target: SendTarget;
  /** Status of the last response sent (0: none yet). */
  lastStatus = 0;
  /** The latest response, to resend for a retransmitted request: a Buffer while provisional,
   *  a kept string (own.ts keepBytes) once final. */
  protected lastBytes: Buffer | string | undefined = undefined;

  protected constructor(host: TransactionHost, key: string, request: SipRequest, meta: InboundMeta, initial: 'Proceeding' | 'Trying') {
    super(host, key, meta.source.protocol, initial);
    this.req = request;
    this.inbound = meta;
    this.target = host.replyTarget(meta);
  }

  /** The top Via branch, read from the key (RFC 3261 §17.2.3): no field, no slice kept for
   *  each of the ≈ 32,000 server transactions waiting at 500 calls/s. */
  get branch(): string {
    return serverKeyBranch(this.key);
  }

  /** The request; only until the final response is sent (afterwards it is released: throws). */
  get request(): SipRequest {
    if (this.req === undefined) throw new Error(`${this.method} server transaction: the request is released once the final response is sent`);
    return this.req;
  }

  /** Where the request came from (as the transport reported it); only until the final response. */
  get meta(): InboundMeta {
    if (this.inbound === undefined) throw new Error(`${this.method} server transaction: its inbound facts are released once the final response is sent`);
    return this.inbound;
  }

  /** A final response went out: keep only what absorbing retransmissions needs. */
  protected releaseRequest(): void {
    this.req = undefined;
    this.inbound = undefined;
  }

  protected transmit(bytes: Buffer, retransmission: boolean): void {
    if (retransmission) this.host.counters.retransmissionsSent++;
    this.host.send(this.target, bytes, (reason, detail) => this.transportFailed(reason, detail));
  }

  /** Send a response already accepted by the state machine; remember it for retransmissions. */
  protected sendResponse(status: number, bytes: Buffer): void {
    this.lastStatus = status;
    this.lastBytes = bytes;
    this.transmit(bytes, false);
  }

  /** The final response is kept for retransmissions (Completed): as a string of its own, not a
   *  slice of a shared pool slab nor a Buffer's ≈ 190 B of objects (own.ts). */
  protected keepLastBytes(): void {
    if (this.lastBytes !== undefined && typeof this.lastBytes !== 'string') this.lastBytes = keepBytes(this.lastBytes);
  }

  /** Resend the latest response (a retransmitted request, Timer G). */
  protected resendLast(): void {
    const b = this.lastBytes;
    if (b !== undefined) this.transmit(typeof b === 'string' ? keptBytes(b) : b, true);
  }

  /** Start the (non-RFC) unanswered timer; it uses the lifetime slot, idle until the first
   *  response above 100. Nothing when that came already (or the transaction ended): the slot
   *  may hold Timer H then. */
  armUnansweredTimer(): void {
    const ms = this.host.timers.unanswered;
    if (ms > 0 && this.unanswered()) this.startLifetimeTimer(ms, this.onUnanswered);
  }

  /** Whether the answer that stops the unanswered timer has not been sent yet. */
  protected abstract unanswered(): boolean;

  /** The TU answered: the unanswered timer no longer applies. */
  protected answered(): void {
    this.stopLifetimeTimer();
  }

  private onUnanswered(): void {
    if (this.state !== 'Proceeding' && this.state !== 'Trying') return;
    this.host.counters.unansweredDropped++;
    this.terminate();
  }

  protected absorbRequest(): void {
    this.host.counters.retransmissionsAbsorbed++;
    this.host.counters.requestRetransmissionsAbsorbed++;
  }

  /**
   * Pass a response from the TU down (RFC 3261 §17.2.1 / §17.2.2). Returns false, sending
   * nothing, when the transaction no longer accepts one (final already sent, terminated).
   */
  respond(res: SipResponse): boolean {
    return this.accepts(res.status) && this.respondRaw(res.status, serialize(res));
  }

  /**
   * The same with the response already rendered (a TU that writes its own header layout, as
   * the UA core does in drachtio-server's order). `status` must be the one in `bytes`.
   */
  abstract respondRaw(status: number, bytes: Buffer): boolean;

  /**
   * RFC 3261 §8.2.7, a stateless UAS: send this final non-2xx response once and end the
   * transaction at once: no Completed state, so no resending it (Timer G), no waiting for the ACK
   * (Timer H) and no Timer I / J window. A retransmitted request is then a new request, and the
   * ACK of the response finds no transaction (the TU drops it: §8.2.7 "MUST ignore ACK").
   * For the overload gate's 503: at 3× overload two INVITEs of three are refused, and each one's
   * transaction waited ≈ 5 s after its ACK, long enough to be promoted and collected old.
   * Returns false, sending nothing, once a response above 100 went out (or the status is < 300).
   */
  respondStatelessly(status: number, bytes: Buffer): boolean {
    if (status < 300 || !this.accepts(status) || this.lastStatus > 100) return false;
    this.lastStatus = status;
    this.transmit(bytes, false);
    this.terminate();
    return true;
  }

  /** Whether a response with this status would be taken now. */
  abstract accepts(status: number): boolean;
  /** A retransmission of the request arrived. */
  abstract receiveRequest(req: SipRequest): void;
}

/** RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1 (Accepted, Timer L). */
export class InviteServerTransaction extends ServerTransactionBase {
  /** On the prototype (below), as `method`: no per-transaction field. */
  declare readonly kind: 'ist';

  constructor(host: TransactionHost, key: string, request: SipRequest, meta: InboundMeta) {
    super(host, key, request, meta, 'Proceeding');
  }

  get method(): 'INVITE' {
    return 'INVITE';
  }

  /** 100 Trying (RFC 3261 §17.2.1), only before any other response. Returns whether it was sent. */
  sendTrying(): boolean {
    if (this.state !== 'Proceeding' || this.lastStatus !== 0) return false;
    return this.respond(buildResponse(this.request, 100, 'Trying'));
  }

  /**
   * A 100 Trying the stack makes up itself (drachtio-server's, in its layout). Sent at once
   * (`timers.trying` 0), it is not repeated for retransmitted INVITEs: not being a provisional
   * "received from the TU" (RFC 3261 §17.2.1), which is what sofia-sip does (golden trace 05).
   * Deferred (deferTrying), it is kept and resent for a retransmission like any provisional in
   * Proceeding: the INVITE came again after it, so the client may not have it.
   */
  sendOwnTrying(bytes: Buffer): boolean {
    if (this.state !== 'Proceeding' || this.lastStatus !== 0) return false;
    // Its status counts as sent; at once, no bytes are kept: a retransmitted INVITE gets nothing.
    this.lastStatus = 100;
    if (this.host.timers.trying > 0) this.lastBytes = bytes;
    this.transmit(bytes, false);
    return true;
  }

  /**
   * RFC 3261 §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it
   * knows that the TU will generate a provisional or final response within 200 ms". A TU that
   * often answers within that (a B2BUA relaying the far end's 180) asks for the stack's own 100
   * here: the TU is called back (tu.trying) `timers.trying` ms after the INVITE arrived if no
   * response was sent by then, or at once for a retransmitted INVITE before that; at once when
   * `timers.trying` is 0. Most calls then never send it: one datagram less per call.
   */
  deferTrying(): void {
    if (this.state !== 'Proceeding' || this.lastStatus !== 0) return;
    if (this.host.timers.trying === 0) this.host.tu.trying?.(this);
    // No position kept: a response before the deadline leaves the entry to lapse (tryingDue).
    else this.host.tryingList().add(this);
  }

  /** The deferred 100 fell due (the trying list, or a retransmitted INVITE): still nothing sent? */
  tryingDue(): void {
    if (this.state !== 'Proceeding' || this.lastStatus !== 0) return;
    this.host.guard(() => this.host.tu.trying?.(this));
  }

  protected unanswered(): boolean { return this.state === 'Proceeding' && this.lastStatus <= 100; }

  accepts(status: number): boolean {
    if (!(status >= 100 && status <= 699)) return false;
    // RFC 6026 §7.1: in Accepted, further 2xx (retransmissions or another 2xx) pass straight through.
    if (this.state === 'Accepted') return status >= 200 && status < 300;
    return this.state === 'Proceeding';
  }

  respondRaw(status: number, bytes: Buffer): boolean {
    if (!this.accepts(status)) return false;
    if (this.state === 'Accepted') {
      this.transmit(bytes, false);
      return true;
    }
    this.sendResponse(status, bytes);
    if (this.terminated) return true; // transport failed
    if (status > 100) this.answered();
    if (status < 200) return true;
    this.releaseRequest();
    const T1 = this.host.timers.T1;
    if (status < 300) {
      // RFC 6026: Accepted absorbs INVITE retransmissions while the core retransmits the 2xx;
      // the 2xx bytes are the core's to keep, not ours (§13.3.1.4).
      this.lastBytes = undefined;
      this.state = 'Accepted';
      this.waitOut(64 * T1); // Timer L
      return true;
    }
    this.state = 'Completed';
    this.appData = undefined;
    this.keepLastBytes();
    if (!this.reliable) {
      this.interval = T1;
      this.startRetransmitTimer(T1, this.onTimerG);
    }
    this.startLifetimeTimer(64 * T1, this.onTimerH);
    return true;
  }

  receiveRequest(_req: SipRequest): void {
    this.absorbRequest();
    // Proceeding: resend the latest provisional; Completed: the final. Accepted/Confirmed: nothing.
    // Nothing sent yet while a deferred 100 waits: the retransmission gets it now (it proves we
    // have the INVITE, and stops the client's Timer A).
    if (this.state === 'Proceeding' && this.lastStatus === 0) this.tryingDue();
    else if (this.state === 'Proceeding' || this.state === 'Completed') this.resendLast();
  }

  /**
   * An ACK with this transaction's branch. Returns true when absorbed here (ACK of the non-2xx
   * final, §17.2.1), false when the TU should see it (Accepted: ACK of the 2xx).
   */
  receiveAck(): boolean {
    if (this.state === 'Completed') {
      this.state = 'Confirmed';
      this.lastBytes = undefined; // Confirmed absorbs ACKs and resends nothing (§17.2.1)
      this.stopRetransmitTimer();
      this.stopLifetimeTimer();
      this.terminateAfter(this.host.timers.T4); // Timer I
      return true;
    }
    if (this.state === 'Accepted') return false;
    this.absorbRequest();
    return true;
  }

  /** Timer G: retransmit the final response, doubling up to T2. */
  private onTimerG(): void {
    if (this.state !== 'Completed' || this.lastBytes === undefined) return;
    this.resendLast();
    if (this.state !== 'Completed') return;
    this.interval = Math.min(2 * this.interval, this.host.timers.T2);
    this.startRetransmitTimer(this.interval, this.onTimerG);
  }

  /** Timer H: the ACK never came; the TU is told (transaction failure, §17.2.1). */
  private onTimerH(): void {
    if (this.state !== 'Completed') return;
    this.host.counters.timeouts++;
    this.stopRetransmitTimer();
    this.host.guard(() => this.host.tu.timeout(this));
    this.terminate();
  }
}

/** RFC 3261 §17.2.2 (Figure 8). */
export class NonInviteServerTransaction extends ServerTransactionBase {
  /** On the prototype (below): no per-transaction field. */
  declare readonly kind: 'nist';
  readonly method: string;

  constructor(host: TransactionHost, key: string, request: SipRequest, meta: InboundMeta) {
    super(host, key, request, meta, 'Trying');
    this.method = methodName(request.method);
  }

  protected unanswered(): boolean { return this.state === 'Trying' || this.state === 'Proceeding'; }

  accepts(status: number): boolean {
    return status >= 100 && status <= 699 && (this.state === 'Trying' || this.state === 'Proceeding');
  }

  respondRaw(status: number, bytes: Buffer): boolean {
    if (!this.accepts(status)) return false;
    this.sendResponse(status, bytes);
    if (this.terminated) return true;
    if (status < 200) {
      this.state = 'Proceeding';
      return true;
    }
    this.state = 'Completed';
    this.releaseRequest();
    this.appData = undefined;
    this.keepLastBytes();
    this.answered();
    this.terminateAfter(64 * this.host.timers.T1); // Timer J
    return true;
  }

  receiveRequest(_req: SipRequest): void {
    this.absorbRequest();
    // Trying: nothing to resend; Proceeding/Completed: the last response (§17.2.2).
    if (this.state !== 'Trying') this.resendLast();
  }
}

// Constant per class: on the prototype, not a field of every transaction (8 B each).
Object.defineProperty(InviteServerTransaction.prototype, 'kind', { value: 'ist' });
Object.defineProperty(NonInviteServerTransaction.prototype, 'kind', { value: 'nist' });

export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;
