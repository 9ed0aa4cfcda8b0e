// RFC 3261 §17.1 client transactions, with RFC 6026's Accepted state for INVITE.
// Memory contract: once a final response arrived (Completed, Accepted) the request, its bytes and
// the last response are released; only the key, target and ACK bytes (non-2xx, as a string)
// remain, with no timer of its own: the layer's expiry list for Timer D/K/M ends it (expiry.ts).
import type { SipRequest, SipResponse } from '../message/types.js';
import { serialize } from '../message/serialize.js';
import type { SendTarget } from '../transport/types.js';
import { TransactionBase } from './base.js';
import { buildAck } from './build.js';
import { keepBytes, keptBytes, methodName, own } from './own.js';
import { firstHeader, tagOf } from './headers.js';
import type { InboundMeta, TransactionHost } from './types.js';

/** Strip IPv6 brackets and the IPv4-mapped prefix so `[::1]`, `::1`, `::ffff:1.2.3.4` compare sanely. */
export function normalizeAddress(a: string): string {
  if (a.charCodeAt(0) === 91) a = a.slice(1, a.length - 1);
  if (a.length > 7 && a.charCodeAt(0) === 58 && a.startsWith('::ffff:') && a.indexOf('.') > 0) a = a.slice(7);
  return a.indexOf(':') >= 0 ? a.toLowerCase() : a;
}

abstract class ClientTransactionBase extends TransactionBase {
  readonly method: string;
  /** Where the request went. Responses must come back from here (RFC 6404 §2.3.2.2). */
  readonly target: SendTarget;
  /** Connection the request was sent on (TCP/TLS), learnt from the transport's SendResult. */
  connectionId: string | undefined;
  /** Last response delivered to the TU (undefined again once the transaction waits out Timer D/K/M). */
  lastResponse: SipResponse | undefined = undefined;
  /** The request and its bytes: released once no retransmission or CANCEL can need them
   *  (Completed, Accepted), so a transaction waiting out Timer D/K/M stays small. */
  private req: SipRequest | undefined;
  private bytes: Buffer | undefined;
  private readonly targetAddress: string;

  protected constructor(host: TransactionHost, key: string, request: SipRequest, target: SendTarget, initial: 'Calling' | 'Trying', bytes: Buffer | undefined) {
    super(host, key, target.protocol, initial);
    this.req = request;
    this.method = methodName(request.method);
    this.target = target;
    this.connectionId = target.connectionId;
    this.targetAddress = normalizeAddress(target.address);
    this.bytes = bytes ?? serialize(request);
  }

  /** The top Via branch: the key's first part (not a field of its own: one string less per
   *  waiting transaction). */
  get branch(): string {
    return this.key.slice(0, this.key.length - this.method.length - 1);
  }

  /** The request; only while it may be retransmitted or cancelled (reading it later throws). */
  get request(): SipRequest {
    if (this.req === undefined) throw new Error(`${this.method} client transaction: the request is released once a final response arrived`);
    return this.req;
  }

  /** A final response arrived: keep only what absorbing its retransmissions needs. */
  protected releaseRequest(): void {
    this.req = undefined;
    this.bytes = undefined;
    this.lastResponse = undefined;
  }

  /**
   * RFC 6404 §2.3.2.2: accept a response only from where the request went: the same
   * connection for TCP/TLS when known, else the same protocol, address and port.
   */
  acceptsFrom(meta: InboundMeta): boolean {
    const src = meta.source;
    if (src.protocol !== this.target.protocol) return false;
    // Stream transports: the connection identifies the peer (it may be an inbound one whose
    // remote port is ephemeral). Without connection ids on both sides fall back to address:port.
    if (this.reliable && this.connectionId !== undefined && meta.connectionId !== undefined) {
      return meta.connectionId === this.connectionId;
    }
    if (src.port !== this.target.port) return false;
    return src.address === this.target.address || normalizeAddress(src.address) === this.targetAddress;
  }

  /** Where the next message of this transaction goes: the target, on the connection learnt so far. */
  get sendTarget(): SendTarget {
    return this.connectionId === this.target.connectionId ? this.target : { ...this.target, connectionId: this.connectionId };
  }

  /** Hand the request (or a retransmission) to the transport. */
  protected transmit(retransmission: boolean): void {
    if (this.bytes === undefined) return;
    if (retransmission) this.host.counters.retransmissionsSent++;
    this.host.send(
      this.sendTarget,
      this.bytes,
      (reason, detail) => this.transportFailed(reason, detail),
      (cid) => {
        if (cid !== undefined && this.reliable) this.connectionId = cid;
      },
    );
  }

  protected deliver(res: SipResponse, meta: InboundMeta): void {
    this.lastResponse = res;
    this.host.guard(() => this.host.tu.response(this as never, res, meta));
  }

  protected absorb(): void {
    this.host.counters.retransmissionsAbsorbed++;
    this.host.counters.responseRetransmissionsAbsorbed++;
  }

  /** Timer B / F: the TU makes up a 408 (RFC 3261 §8.1.3.1). */
  protected timedOut(): void {
    this.host.counters.timeouts++;
    this.stopRetransmitTimer();
    this.host.guard(() => this.host.tu.timeout(this as never));
    this.terminate();
  }

  abstract start(): void;
  abstract receiveResponse(res: SipResponse, meta: InboundMeta): 'delivered' | 'absorbed';
}

/** 2xx responses with distinct To-tags (forks, RFC 3261 §13.2.2.4) one INVITE accepts. */
export const MAX_2XX_FORKS = 16;

/** Reliable provisionals (RFC 3262 RSeq values) an INVITE remembers while it waits for its final
 *  answer, to absorb their retransmissions. */
const MAX_RSEQS_KEPT = 32;

/** RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2 (Accepted, Timer M). */
export class InviteClientTransaction extends ClientTransactionBase {
  /** On the prototype (below): no per-transaction field. */
  declare readonly kind: 'ict';
  /** ACK sent for the non-2xx final response, kept for retransmitted finals (own.ts keepBytes). */
  private ackBytes: string | undefined = undefined;
  /** To-tags of 2xx responses seen (forks), to tell a retransmitted 2xx from a new one: the
   *  one tag as a string (nearly every call; no array kept through Timer M), a list once a
   *  second fork answered. */
  private twoXxTags: string | string[] | undefined = undefined;
  /** RSeq values of reliable provisionals seen (RFC 3262: their retransmissions are absorbed). */
  private rseqs: string[] | undefined = undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, target: SendTarget, bytes?: Buffer) {
    super(host, key, request, target, 'Calling', bytes);
  }

  /** A final answer came: a provisional after it is absorbed whatever its RSeq, so the RSeq
   *  values seen go too (not kept through Timer M). */
  protected override releaseRequest(): void {
    super.releaseRequest();
    this.rseqs = undefined;
  }

  start(): void {
    const T1 = this.host.timers.T1;
    this.transmit(false);
    if (this.state !== 'Calling') return; // transport failed synchronously
    if (!this.reliable) {
      this.interval = T1;
      this.startRetransmitTimer(T1, this.onTimerA);
    }
    this.startLifetimeTimer(64 * T1, this.onTimerB);
  }

  /** Timer A: retransmit, double the interval (no T2 cap for INVITE requests). */
  private onTimerA(): void {
    if (this.state !== 'Calling') return;
    this.transmit(true);
    if (this.state !== 'Calling') return;
    this.interval *= 2;
    this.startRetransmitTimer(this.interval, this.onTimerA);
  }

  /** Timer B: no response at all within 64*T1. */
  private onTimerB(): void {
    if (this.state === 'Calling') this.timedOut();
  }

  receiveResponse(res: SipResponse, meta: InboundMeta): 'delivered' | 'absorbed' {
    const status = res.status;
    const state = this.state;
    if (status < 200) {
      if (state !== 'Calling' && state !== 'Proceeding') {
        this.absorb();
        return 'absorbed';
      }
      const rseq = firstHeader(res, 'rseq')?.value;
      if (rseq !== undefined) {
        const key = `${tagOf(firstHeader(res, 'to')?.value ?? '') ?? ''} ${rseq}`;
        if (this.rseqs?.includes(key)) {
          this.absorb();
          return 'absorbed';
        }
        const seen = (this.rseqs ??= []);
        // Bounded: a peer could send reliable provisionals with new RSeq values without end
        // while the INVITE waits for its final answer; an old one seen again is passed up again.
        if (seen.length >= MAX_RSEQS_KEPT) seen.shift();
        seen.push(key);
      }
      if (state === 'Calling') {
        // Proceeding: no more retransmissions, and Timer B no longer applies (§17.1.1.2).
        this.state = 'Proceeding';
        this.stopRetransmitTimer();
        this.stopLifetimeTimer();
      }
      this.deliver(res, meta);
      return 'delivered';
    }
    if (status < 300) {
      const tag = tagOf(firstHeader(res, 'to')?.value ?? '') ?? '';
      if (state === 'Calling' || state === 'Proceeding') {
        // RFC 6026 §7.2: Accepted for 64*T1 so retransmitted and forked 2xx still reach the TU.
        this.state = 'Accepted';
        this.stopRetransmitTimer();
        this.twoXxTags = own(tag); // kept through Timer M: a flat copy (own.ts)
        this.waitOut(64 * this.host.timers.T1); // Timer M
        this.deliver(res, meta);
        this.releaseRequest();
        return 'delivered';
      }
      if (state === 'Accepted') {
        const seen = this.twoXxTags!;
        if (typeof seen === 'string' ? seen === tag : seen.includes(tag)) {
          this.absorb();
          this.host.guard(() => this.host.tu.retransmitted2xx(this, res, meta));
          return 'absorbed';
        }
        // A 2xx from another fork: new to the TU, up to MAX_2XX_FORKS. Past that it is dropped
        // unanswered: the peer that sent the INVITE's answer would otherwise make the core ACK,
        // BYE and keep an ACK for every To-tag it invents, for 32 s (RFC 6404 §2.3.2: an
        // amplifier). A real fork beyond it, left without ACK, ends itself (§13.3.1.4).
        if (typeof seen === 'string') this.twoXxTags = [seen, own(tag)];
        else if (seen.length >= MAX_2XX_FORKS) {
          this.host.counters.excessForks++;
          return 'absorbed';
        } else seen.push(own(tag));
        this.deliver(res, meta);
        return 'delivered';
      }
      this.absorb();
      return 'absorbed';
    }
    // 300-699
    if (state === 'Calling' || state === 'Proceeding') {
      this.state = 'Completed';
      this.stopRetransmitTimer();
      this.stopLifetimeTimer();
      // Kept through Timer D: a string of its own, not a slice of a pool slab (own.ts).
      this.ackBytes = keepBytes(serialize(buildAck(this.request, res)));
      this.sendAck();
      this.deliver(res, meta);
      this.releaseRequest();
      if (this.state === 'Completed') this.terminateAfter(this.host.timers.D); // Timer D
      return 'delivered';
    }
    if (state === 'Completed') this.sendAck(); // a retransmitted final: ACK it again (§17.1.1.2)
    this.absorb();
    return 'absorbed';
  }

  private sendAck(): void {
    if (this.ackBytes === undefined) return;
    this.host.send(
      this.sendTarget,
      keptBytes(this.ackBytes),
      (reason, detail) => this.transportFailed(reason, detail),
    );
  }
}

/** RFC 3261 §17.1.2 (Figure 6). */
export class NonInviteClientTransaction extends ClientTransactionBase {
  /** On the prototype (below): no per-transaction field. */
  declare readonly kind: 'nict';

  constructor(host: TransactionHost, key: string, request: SipRequest, target: SendTarget, bytes?: Buffer) {
    super(host, key, request, target, 'Trying', bytes);
  }

  start(): void {
    const T1 = this.host.timers.T1;
    this.transmit(false);
    if (this.state !== 'Trying') return;
    if (!this.reliable) {
      this.interval = T1;
      this.startRetransmitTimer(T1, this.onTimerE);
    }
    this.startLifetimeTimer(64 * T1, this.onTimerF);
  }

  /** Timer E: retransmit; doubling up to T2 in Trying, T2 in Proceeding. */
  private onTimerE(): void {
    if (this.state !== 'Trying' && this.state !== 'Proceeding') return;
    this.transmit(true);
    if (this.state === 'Trying') this.interval = Math.min(2 * this.interval, this.host.timers.T2);
    else if (this.state === 'Proceeding') this.interval = this.host.timers.T2;
    else return;
    this.startRetransmitTimer(this.interval, this.onTimerE);
  }

  /** Timer F: no final response within 64*T1. */
  private onTimerF(): void {
    if (this.state === 'Trying' || this.state === 'Proceeding') this.timedOut();
  }

  receiveResponse(res: SipResponse, meta: InboundMeta): 'delivered' | 'absorbed' {
    const state = this.state;
    if (state !== 'Trying' && state !== 'Proceeding') {
      this.absorb();
      return 'absorbed';
    }
    if (res.status < 200) {
      this.state = 'Proceeding';
      this.deliver(res, meta);
      return 'delivered';
    }
    this.state = 'Completed';
    this.stopRetransmitTimer();
    this.stopLifetimeTimer();
    this.deliver(res, meta);
    this.releaseRequest();
    if (this.state === 'Completed') this.terminateAfter(this.host.timers.T4); // Timer K
    return 'delivered';
  }
}

// Constant per class: on the prototype, not a field of every transaction (8 B each).
Object.defineProperty(InviteClientTransaction.prototype, 'kind', { value: 'ict' });
Object.defineProperty(NonInviteClientTransaction.prototype, 'kind', { value: 'nict' });

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
