// The transaction layer: owns every client and server transaction, matches incoming messages
// to them (RFC 3261 §17.1.3, §17.2.3) and enforces RFC 6404 §2.3.2.2 response source checks.
import type { HeaderField, SipMessage, SipRequest, SipResponse } from '../message/types.js';
import { buildCancel } from './build.js';
import { systemClock, type Clock, type SendResult, type SendTarget } from '../transport/types.js';
import { isIP } from 'node:net';
import { InviteClientTransaction, NonInviteClientTransaction, normalizeAddress, type ClientTransaction } from './client.js';
import { KEY_SEP, MAGIC_COOKIE, firstHeader, parseCSeq, tagOf, topVia, topViaBranch, type TopVia } from './headers.js';
import { InviteServerTransaction, NonInviteServerTransaction, type ServerTransaction } from './server.js';
import { own } from './own.js';
import { ExpiryList, type Expirable } from './expiry.js';
import { SharedTargets } from './targets.js';
import {
  DEFAULT_TIMERS,
  newCounters,
  type InboundMeta,
  type ReceiveOutcome,
  type SendFn,
  type TimerConfig,
  type Transaction,
  type TransactionCounters,
  type TransactionHost,
  type TransactionUser,
  type TransportErrorReason,
} from './types.js';

export interface TransactionLayerOptions {
  send: SendFn;
  tu: TransactionUser;
  clock?: Clock;
  /** Overrides of T1/T2/T4/D/unanswered/trying (ms). */
  timers?: Partial<TimerConfig>;
  /**
   * Send 100 Trying for every new INVITE before the TU hears of it (drachtio-server does this,
   * and RFC 3261 §17.2.1 wants a 100 within 200 ms when the TU may be slower). Default false.
   * A TU that renders its own 100 asks for it with `txn.deferTrying()` instead (timers.trying).
   */
  autoTrying?: boolean;
  /** Where exceptions thrown by TU callbacks go (default: console.error). */
  onError?: (err: unknown) => void;
}

const SEP = KEY_SEP;

export class TransactionLayer implements TransactionHost {
  readonly clock: Clock;
  readonly timers: Readonly<TimerConfig>;
  readonly counters: TransactionCounters = newCounters();
  readonly tu: TransactionUser;
  private readonly sendFn: SendFn;
  private readonly autoTrying: boolean;
  private readonly onError: (err: unknown) => void;
  /** One SendTarget per peer for the transactions' targets (targets.ts). */
  readonly targets = new SharedTargets();
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerTransaction>();
  /** One per window length (64*T1, T4, D): transactions waiting out Timer D/I/J/K/L/M. */
  private readonly expiryLists = new Map<number, ExpiryList>();
  /** INVITE server transactions whose 100 Trying is due `timers.trying` ms after the INVITE
   *  (RFC 3261 §17.2.1): one timer for all, as for the windows above. Made on first use. */
  private trying: ExpiryList | undefined = undefined;

  constructor(opts: TransactionLayerOptions) {
    this.sendFn = opts.send;
    this.autoTrying = opts.autoTrying ?? false;
    this.tu = opts.tu;
    this.clock = opts.clock ?? systemClock;
    const t = { ...DEFAULT_TIMERS, ...opts.timers };
    for (const k of ['T1', 'T2', 'T4', 'D', 'unanswered', 'trying'] as const) {
      if (!Number.isFinite(t[k]) || t[k] < 0) throw new Error(`transaction timer ${k} must be a non-negative number of ms, got ${String(t[k])}`);
    }
    this.timers = Object.freeze(t);
    this.onError = opts.onError ?? ((err) => console.error('transaction layer: TU callback threw', err));
  }

  /** Live client transactions. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Client transactions still waiting for a final response (Calling, Trying, Proceeding):
   *  what a stopping node waits for; the others only absorb retransmissions (Timer D/K/M).
   *  Walks them all: for shutdown, not for a hot path. */
  clientsAwaitingFinal(): number {
    let n = 0;
    for (const t of this.clients.values()) if (t.state === 'Calling' || t.state === 'Trying' || t.state === 'Proceeding') n++;
    return n;
  }

  /** Live server transactions. */
  get serverCount(): number {
    return this.servers.size;
  }

  // ---- inbound -------------------------------------------------------------------------------

  /** Feed one parsed message with its transport facts. Never throws for bad input. */
  receive(msg: SipMessage, meta: InboundMeta): ReceiveOutcome {
    return msg.kind === 'request' ? this.receiveRequest(msg, meta) : this.receiveResponse(msg, meta);
  }

  receiveResponse(res: SipResponse, meta: InboundMeta): ReceiveOutcome {
    const branch = topViaBranch(res);
    const cseqField = firstHeader(res, 'cseq');
    const cseq = cseqField === undefined ? undefined : parseCSeq(cseqField.value);
    if (branch === undefined || cseq === undefined || res.status < 100 || res.status > 699) {
      this.counters.invalidMessages++;
      return 'invalid';
    }
    const txn = this.clients.get(branch + SEP + cseq.method);
    if (txn === undefined) {
      this.counters.strayResponses++;
      return 'stray';
    }
    if (!txn.acceptsFrom(meta)) {
      this.counters.forgedResponses++;
      return 'forged';
    }
    return txn.receiveResponse(res, meta);
  }

  receiveRequest(req: SipRequest, meta: InboundMeta): ReceiveOutcome {
    const via = topVia(req);
    const cseqField = firstHeader(req, 'cseq');
    const cseq = cseqField === undefined ? undefined : parseCSeq(cseqField.value);
    if (via === undefined || cseq === undefined || cseq.method !== req.method) {
      this.counters.invalidMessages++;
      return 'invalid';
    }
    const isAck = req.method === 'ACK';
    const key = this.serverKey(req, via, cseq.seq, isAck || req.method === 'INVITE' ? 'INVITE' : req.method);
    if (key === undefined) {
      this.counters.invalidMessages++;
      return 'invalid';
    }
    const existing = this.servers.get(key);
    if (isAck) {
      if (existing !== undefined && existing.kind === 'ist' && existing.receiveAck()) return 'absorbed';
      const invite = existing !== undefined && existing.kind === 'ist' ? existing : undefined;
      this.guard(() => this.tu.ack(req, meta, invite));
      return 'ack';
    }
    if (existing !== undefined) {
      existing.receiveRequest(req);
      return 'absorbed';
    }
    // Kept up to 64*T1 (Timer J, L): a flat copy, not a slice of this message's text (own.ts).
    const ownKey = own(key);
    const txn =
      req.method === 'INVITE'
        ? new InviteServerTransaction(this, ownKey, req, meta)
        : new NonInviteServerTransaction(this, ownKey, req, meta);
    this.servers.set(ownKey, txn);
    this.counters.serverTransactionsCreated++;
    if (this.autoTrying && txn.kind === 'ist') {
      txn.sendTrying();
      if (txn.terminated) return 'new'; // the transport failed; the TU heard via transportError
    }
    this.guard(() => this.tu.request(txn, req, meta));
    // Armed once the TU has had the request (the same instant: the call is synchronous), and
    // only if it left it unanswered: a request answered at once (the overload gate's 503, a
    // 400) never needs it, and its set and clear were a share of every refusal.
    txn.armUnansweredTimer();
    return 'new';
  }

  /**
   * RFC 3261 §17.2.3 server-transaction key. ACK and CANCEL are looked up with method INVITE.
   * RFC 3261 branches: branch + sent-by + method. Older (RFC 2543) branches: Request-URI,
   * Call-ID, From tag, CSeq number and the whole top Via (the To tag, which the ACK adds, is
   * not compared). undefined when an RFC 2543 request lacks Call-ID.
   */
  private serverKey(req: SipRequest, via: TopVia, seq: number, method: string): string | undefined {
    if (via.branch.startsWith(MAGIC_COOKIE)) return via.branch + SEP + via.sentBy + SEP + method;
    const callId = firstHeader(req, 'call-id')?.value;
    if (callId === undefined) return undefined;
    const fromTag = tagOf(firstHeader(req, 'from')?.value ?? '') ?? '';
    return '2543' + SEP + req.uri + SEP + callId + SEP + fromTag + SEP + seq + SEP + via.field.value + SEP + method;
  }

  /** The INVITE server transaction a CANCEL targets (RFC 3261 §9.2), if it is still live. */
  findInviteServerTransaction(cancel: SipRequest): InviteServerTransaction | undefined {
    const via = topVia(cancel);
    const cseqField = firstHeader(cancel, 'cseq');
    const cseq = cseqField === undefined ? undefined : parseCSeq(cseqField.value);
    if (via === undefined || cseq === undefined) return undefined;
    const key = this.serverKey(cancel, via, cseq.seq, 'INVITE');
    const txn = key === undefined ? undefined : this.servers.get(key);
    return txn !== undefined && txn.kind === 'ist' ? txn : undefined;
  }

  /** A live client transaction by branch and CSeq method (e.g. the INVITE a CANCEL is for). */
  findClientTransaction(branch: string, method: string): ClientTransaction | undefined {
    return this.clients.get(branch + SEP + method);
  }

  // ---- outbound ------------------------------------------------------------------------------

  /**
   * Start a client transaction: `req` must carry its top Via with an RFC 3261 branch (see
   * `newBranch`) and a CSeq whose method equals the request's. `target.address` must be an IP
   * literal (responses are checked against it). ACK is not a transaction: use `sendStateless`.
   * Throws on a malformed request or a branch already in use. `bytes`, when given, is `req`
   * already rendered (the UA core writes drachtio-server's header layout); else it is serialised.
   */
  sendRequest(req: SipRequest, target: SendTarget, bytes?: Buffer): ClientTransaction {
    if (req.method === 'ACK') throw new Error('ACK does not start a client transaction; use sendStateless()');
    // Responses are checked against this address, so it must be what the peer's packets carry.
    if (isIP(normalizeAddress(target.address)) === 0) throw new Error(`${req.method}: target address "${target.address}" must be an IP literal (resolve names first)`);
    const via = topVia(req);
    if (via === undefined) throw new Error(`${req.method}: missing or malformed top Via`);
    if (!via.branch.startsWith(MAGIC_COOKIE)) throw new Error(`${req.method}: top Via branch must start with ${MAGIC_COOKIE}`);
    const cseqField = firstHeader(req, 'cseq');
    const cseq = cseqField === undefined ? undefined : parseCSeq(cseqField.value);
    if (cseq === undefined || cseq.method !== req.method) throw new Error(`${req.method}: missing CSeq or CSeq method differs`);
    // Kept up to 64*T1 (Timer M): a flat copy, not a concatenation holding the Via's text (own.ts).
    const key = own(via.branch + SEP + req.method);
    if (this.clients.has(key)) throw new Error(`${req.method}: a client transaction with branch ${via.branch} already exists`);
    const txn =
      req.method === 'INVITE'
        ? new InviteClientTransaction(this, key, req, this.targets.share(target), bytes)
        : new NonInviteClientTransaction(this, key, req, this.targets.share(target), bytes);
    this.clients.set(key, txn);
    this.counters.clientTransactionsCreated++;
    txn.start();
    return txn;
  }

  /**
   * CANCEL a pending INVITE (RFC 3261 §9.1): builds the CANCEL from the INVITE and sends it as its
   * own non-INVITE transaction to the same destination and connection. Returns undefined when
   * the INVITE no longer needs cancelling (a final response already arrived, or it is gone).
   * The RFC wants a provisional first; the TU decides when (drachtio queues the CANCEL till then).
   */
  cancel(invite: InviteClientTransaction, extraHeaders?: HeaderField[]): NonInviteClientTransaction | undefined {
    if (invite.state !== 'Calling' && invite.state !== 'Proceeding') return undefined;
    return this.sendRequest(buildCancel(invite.request, extraHeaders), invite.sendTarget) as NonInviteClientTransaction;
  }

  /** Send bytes outside any transaction (ACK for a 2xx, stateless responses). */
  sendStateless(target: SendTarget, bytes: Buffer): ReturnType<SendFn> {
    return this.sendFn(target, bytes, ignoreResult);
  }

  // ---- transport events ----------------------------------------------------------------------

  /** A TCP/TLS connection closed: client transactions bound to it fail (RFC 3261 §17.1.4). */
  connectionClosed(connectionId: string): void {
    const failed: ClientTransaction[] = [];
    for (const txn of this.clients.values()) if (txn.reliable && txn.connectionId === connectionId && txn.state !== 'Completed') failed.push(txn);
    for (const txn of failed) txn.transportFailedExternally('closed');
  }

  /** ICMP unreachable (UDP) or refused (TCP) for a destination: its pending client transactions fail. */
  destinationUnreachable(dest: Pick<SendTarget, 'protocol' | 'address' | 'port'>, reason: TransportErrorReason = 'unreachable'): void {
    const failed: ClientTransaction[] = [];
    for (const txn of this.clients.values()) {
      const t = txn.target;
      if (t.protocol === dest.protocol && t.address === dest.address && t.port === dest.port && (txn.state === 'Calling' || txn.state === 'Trying' || txn.state === 'Proceeding')) failed.push(txn);
    }
    for (const txn of failed) txn.transportFailedExternally(reason);
  }

  /** Stop every timer and forget every transaction (engine shutdown). No TU events. */
  close(): void {
    for (const txn of [...this.clients.values(), ...this.servers.values()]) txn.abandon();
    this.clients.clear();
    this.servers.clear();
    for (const list of this.expiryLists.values()) list.clear();
    this.trying?.clear();
  }

  // ---- TransactionHost -----------------------------------------------------------------------

  send(target: SendTarget, bytes: Buffer, onError: (reason: TransportErrorReason, detail?: string) => void, onOk?: (connectionId: string | undefined) => void): void {
    let result: SendResult | Promise<SendResult> | void;
    try {
      result = this.sendFn(target, bytes, (r) => settle(r, onError, onOk));
    } catch (err) {
      onError('exception', err instanceof Error ? err.message : String(err));
      return;
    }
    if (result === undefined) return;
    if (result instanceof Promise) {
      result.then(
        (r) => settle(r, onError, onOk),
        (err: unknown) => onError('exception', err instanceof Error ? err.message : String(err)),
      );
    } else settle(result, onError, onOk);
  }

  expiryList(ms: number): ExpiryList {
    let list = this.expiryLists.get(ms);
    if (list === undefined) this.expiryLists.set(ms, (list = new ExpiryList(this.clock, ms)));
    return list;
  }

  tryingList(): ExpiryList {
    return (this.trying ??= new ExpiryList(this.clock, this.timers.trying, tryingDue));
  }

  replyTarget(meta: InboundMeta): SendTarget {
    return this.targets.reply(meta);
  }

  remove(txn: Transaction): void {
    const table: Map<string, Transaction> = txn.kind === 'ict' || txn.kind === 'nict' ? this.clients : this.servers;
    if (table.get(txn.key) === txn) table.delete(txn.key);
    if (this.tu.terminated) this.guard(() => this.tu.terminated!(txn));
  }

  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onError(err);
    }
  }
}

/** An INVITE's 100 Trying fell due (its entry in the trying list; expiry.ts skips terminated ones). */
function tryingDue(txn: Expirable): void {
  (txn as InviteServerTransaction).tryingDue();
}

/** A stateless send's outcome: nobody to tell (RFC 3261 §17.1.1.3, §8.2.7). */
function ignoreResult(): void {}

function settle(r: SendResult, onError: (reason: TransportErrorReason, detail?: string) => void, onOk?: (connectionId: string | undefined) => void): void {
  if (r.ok) onOk?.(r.connectionId);
  else onError(r.reason, r.detail);
}
