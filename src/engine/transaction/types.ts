// Contracts of the transaction layer: configuration, the TU callbacks, counters.
import type { SipRequest, SipResponse } from '../message/types.js';
import type { Clock, Endpoint, SendResult, SendTarget, TlsPeerIdentity } from '../transport/types.js';
import type { ClientTransaction, InviteClientTransaction } from './client.js';
import type { InviteServerTransaction, ServerTransaction } from './server.js';
import type { ExpiryList } from './expiry.js';

/** RFC 3261 §17 states, plus `Accepted` from RFC 6026 (INVITE after a 2xx, both sides). */
export type TransactionState =
  | 'Calling'
  | 'Trying'
  | 'Proceeding'
  | 'Completed'
  | 'Confirmed'
  | 'Accepted'
  | 'Terminated';

/** Where a message came from: an InboundPacket is assignable to this. */
export interface InboundMeta {
  source: Endpoint;
  connectionId?: string;
  local?: Endpoint;
  tls?: TlsPeerIdentity;
}

/**
 * Hands bytes to the transport. Either returns a SendResult or a promise of one, or returns
 * nothing and calls `done` once (later) if it learns how the send went (nothing ever: assumed
 * sent). `ok: false` becomes a transport error (RFC 3261 §17.1.4 / §17.2.4). The engine's
 * transport calls `done`: no promise per message on the hot path.
 */
export type SendFn = (target: SendTarget, bytes: Buffer, done: (r: SendResult) => void) => SendResult | Promise<SendResult> | void;

/** RFC 3261 Table 4 base values, milliseconds. */
export interface TimerConfig {
  /** RTT estimate (500 ms). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s). */
  T2: number;
  /** Maximum duration a message remains in the network (5 s). */
  T4: number;
  /** Timer D over unreliable transports (RFC: > 32 s). */
  D: number;
  /**
   * Not an RFC timer: a server transaction the TU has not answered (INVITE: no response above
   * 100; others: no final) after this long is dropped silently, as drachtio-server does after
   * 64 s, so a TU that never answers cannot pile up state. 0 disables.
   */
  unanswered: number;
  /**
   * RFC 3261 §17.2.1: an INVITE server transaction sends 100 Trying unless the TU will have
   * responded within 200 ms. The stack's own 100 (InviteServerTransaction.deferTrying) goes out
   * this long after the INVITE if no response has by then (at most 200 for the RFC); 0
   * (default): at once, as drachtio-server does.
   */
  trying: number;
}

export const DEFAULT_TIMERS: Readonly<TimerConfig> = Object.freeze({ T1: 500, T2: 4_000, T4: 5_000, D: 32_000, unanswered: 64_000, trying: 0 });

/** Why a transaction reported a transport error. */
export type TransportErrorReason = Extract<SendResult, { ok: false }>['reason'] | 'exception';

/** Every field is a running total since the layer was created. */
export interface TransactionCounters {
  /** Responses that matched a client transaction but came from elsewhere (RFC 6404 §2.3.2.2): dropped. */
  forgedResponses: number;
  /** Responses that matched no client transaction: dropped. */
  strayResponses: number;
  /** 2xx responses from one fork more than an INVITE accepts (client.ts MAX_2XX_FORKS): dropped. */
  excessForks: number;
  /** Retransmitted requests and responses absorbed (sum of the two below). */
  retransmissionsAbsorbed: number;
  requestRetransmissionsAbsorbed: number;
  responseRetransmissionsAbsorbed: number;
  /** Retransmissions this layer sent (Timers A, E, G and answers to retransmitted requests). */
  retransmissionsSent: number;
  /** Timer B / F (client, TU makes up 408) and Timer H (server, no ACK) expiries. */
  timeouts: number;
  transportErrors: number;
  /** Messages without a usable top Via or CSeq, or whose CSeq method differs from the request's. */
  invalidMessages: number;
  /** Server transactions dropped because the TU never answered (TimerConfig.unanswered). */
  unansweredDropped: number;
  clientTransactionsCreated: number;
  serverTransactionsCreated: number;
}

export function newCounters(): TransactionCounters {
  return {
    forgedResponses: 0,
    strayResponses: 0,
    excessForks: 0,
    retransmissionsAbsorbed: 0,
    requestRetransmissionsAbsorbed: 0,
    responseRetransmissionsAbsorbed: 0,
    retransmissionsSent: 0,
    timeouts: 0,
    transportErrors: 0,
    invalidMessages: 0,
    unansweredDropped: 0,
    clientTransactionsCreated: 0,
    serverTransactionsCreated: 0,
  };
}

export type Transaction = ClientTransaction | ServerTransaction;

/** The transaction user (UA core / dialog layer / wire server): events out of the layer. */
export interface TransactionUser {
  /** A new request created a server transaction (never called for ACK). Respond via `txn.respond()`. */
  request(txn: ServerTransaction, req: SipRequest, meta: InboundMeta): void;
  /**
   * An ACK that no INVITE server transaction absorbed: the ACK for a 2xx (its own branch, RFC 3261
   * §17.1.1.3), or one matching an INVITE transaction in Accepted (then `invite` is set).
   */
  ack(req: SipRequest, meta: InboundMeta, invite: InviteServerTransaction | undefined): void;
  /** A response for a client transaction, first copy only. */
  response(txn: ClientTransaction, res: SipResponse, meta: InboundMeta): void;
  /** A retransmitted 2xx to an INVITE (RFC 6026 Accepted): the TU re-sends its ACK. */
  retransmitted2xx(txn: InviteClientTransaction, res: SipResponse, meta: InboundMeta): void;
  /** Timer B/F fired (client: the TU makes up 408) or Timer H fired (INVITE server: no ACK came). */
  timeout(txn: Transaction): void;
  /** The transport could not send (client: the TU makes up 503). The transaction is terminated. */
  transportError(txn: Transaction, reason: TransportErrorReason, detail?: string): void;
  /** The transaction reached Terminated and left the layer's tables. */
  terminated?(txn: Transaction): void;
  /**
   * An INVITE server transaction that asked for the stack's own 100 Trying (deferTrying) has
   * sent no response yet, and `timers.trying` ms have passed or the INVITE was retransmitted:
   * the TU renders the 100 now and passes it to `txn.sendOwnTrying()`.
   */
  trying?(txn: InviteServerTransaction): void;
}

/** What `TransactionLayer.receive` did with a message (for logs and the caller's follow-up). */
export type ReceiveOutcome =
  /** New server transaction created, TU told. */
  | 'new'
  /** ACK passed to the TU (`ack` event). */
  | 'ack'
  /** Response passed to the TU. */
  | 'delivered'
  /** Retransmission (or ACK of a non-2xx) handled inside the layer. */
  | 'absorbed'
  /** Response matching no client transaction: dropped. */
  | 'stray'
  /** Response from a source other than where the request went: dropped. */
  | 'forged'
  /** Missing/garbled top Via or CSeq: dropped; the caller may answer a request with 400. */
  | 'invalid';

/** What transactions need from the layer that owns them. */
export interface TransactionHost {
  readonly clock: Clock;
  readonly timers: Readonly<TimerConfig>;
  readonly counters: TransactionCounters;
  readonly tu: TransactionUser;
  send(target: SendTarget, bytes: Buffer, onError: (reason: TransportErrorReason, detail?: string) => void, onOk?: (connectionId: string | undefined) => void): void;
  /** The layer's expiry list for windows of `ms` (expiry.ts), made on first use. */
  expiryList(ms: number): ExpiryList;
  /** The list of INVITE server transactions waiting `timers.trying` ms for their 100 Trying. */
  tryingList(): ExpiryList;
  /** Where a request's responses go: its source over its connection, from the listener it
   *  arrived on (RFC 3581 rport), one shared target per peer (targets.ts). */
  replyTarget(meta: InboundMeta): SendTarget;
  /** Called once when a transaction reaches Terminated. */
  remove(txn: Transaction): void;
  /** Runs a TU callback; an exception there must not break the layer or a timer. */
  guard(fn: () => void): void;
}
