/*
 * RFC 3261 §17 transaction layer (with RFC 6026's fixes for INVITE). How the core uses it:
 *
 *   const layer = new TransactionLayer({
 *     send: (target, bytes, done) => transport.sendThen(target, bytes, done),   // or return a SendResult / Promise<SendResult>
 *     tu: {
 *       request(txn, req, meta)        { ... },  // new server transaction (never for ACK)
 *       ack(req, meta, invite)         { ... },  // ACK not absorbed here: ACK for a 2xx (dialog layer)
 *       response(txn, res, meta)       { ... },  // first copy of each response to a client transaction
 *       retransmitted2xx(txn, res, m)  { ... },  // 2xx to INVITE seen again: re-send your ACK
 *       timeout(txn)                   { ... },  // client: Timer B/F → make up 408; INVITE server: Timer H (no ACK)
 *       transportError(txn, reason)    { ... },  // send failed / connection closed → client: make up 503
 *       terminated(txn)                { ... },  // optional: the transaction left the tables
 *       trying(txn)                    { ... },  // optional: a deferred 100 Trying is due (see below)
 *     },
 *     clock,                                    // optional Clock (tests pass a fake one)
 *     timers: { T1: 500, T2: 4000, T4: 5000, D: 32000, unanswered: 64000, trying: 0 },   // optional
 *     autoTrying: true,                         // optional: 100 Trying for each new INVITE before tu.request
 *   });
 *
 * Inbound: for every parsed message call `layer.receive(msg, packet)` (an InboundPacket works as
 * the meta). The return value says what happened: 'new' | 'ack' | 'delivered' | 'absorbed' |
 * 'stray' | 'forged' | 'invalid'. On 'invalid' for a request the core may answer 400 statelessly.
 *   - A new request creates an InviteServerTransaction / NonInviteServerTransaction and calls
 *     tu.request(). The TU answers with `txn.respond(response)` (false = no longer accepted, e.g.
 *     after the final response: the wire server replies NOK). For INVITE, `txn.sendTrying()`
 *     sends 100 Trying at once; `txn.deferTrying()` asks for tu.trying(txn) `timers.trying` ms later
 *     (or at a retransmission) if no response went out by then, and the TU passes its own 100 to
 *     `txn.sendOwnTrying(bytes)` (RFC 3261 §17.2.1's 200 ms). `buildResponse(req, status, reason,
 *     {toTag})` builds responses.
 *     Responses go to `txn.target` (default: the source address/port/connection = rport).
 *   - A server transaction the TU leaves unanswered (INVITE: nothing above 100; others: no final)
 *     is dropped silently after `timers.unanswered` (64 s, as drachtio); `txn.terminate()` drops one now.
 *   - Retransmitted requests are absorbed; the transaction re-sends its last response.
 *   - CANCEL is its own non-INVITE server transaction; in tu.request() for a CANCEL, call
 *     `layer.findInviteServerTransaction(cancel)` to find the INVITE (undefined → answer 481).
 *   - ACK of a non-2xx final is absorbed (Completed → Confirmed). Any other ACK → tu.ack().
 *   - After a 2xx the INVITE server transaction sits in Accepted (64*T1) absorbing INVITE
 *     retransmissions; the core retransmits the 2xx itself with `TwoXxRetransmitter` (start()
 *     after sending the 2xx, stop() on the ACK, giveUp → BYE) via `txn.respond(2xx)` or
 *     `layer.sendStateless(target, bytes)`.
 *   - Responses are matched by top Via branch + CSeq method and must come from where the request
 *     went (same connection for TCP/TLS, else protocol+address+port). Otherwise they are dropped
 *     and counted in `layer.counters` (forgedResponses, strayResponses, …).
 *
 * Outbound: build the request with its own top Via (`newBranch()` for the branch) and call
 * `layer.sendRequest(req, target)` → InviteClientTransaction | NonInviteClientTransaction
 * (target.address must be an IP literal). Retransmissions (A/E), timeouts (B/F), the ACK for a
 * non-2xx (`buildAck`) are handled here; the ACK for a 2xx is the core's (`sendStateless`).
 * To cancel: `layer.cancel(inviteTxn)` once a provisional arrived (same destination/connection).
 * Transport events: `layer.connectionClosed(connectionId)`, `layer.destinationUnreachable(dest)`.
 * Over TCP/TLS there are no retransmissions and Timers D/I/J/K are zero (RFC 3261 Table 4).
 * `layer.close()` stops all timers (shutdown).
 */
export { TransactionLayer, type TransactionLayerOptions } from './layer.js';
export { InviteClientTransaction, MAX_2XX_FORKS, NonInviteClientTransaction, type ClientTransaction } from './client.js';
export { InviteServerTransaction, NonInviteServerTransaction, type ServerTransaction } from './server.js';
export { SharedTargets } from './targets.js';
export { TwoXxRetransmitter, type TwoXxRetransmitterOptions } from './two-xx.js';
export { buildAck, buildCancel, buildResponse, newBranch, newTag, type BuildResponseOptions } from './build.js';
export { keepBytes, keptBytes, own, ownBytes, ownOpt } from './own.js';
export { MAGIC_COOKIE, parseCSeq, parseVia, tagOf, topVia, type TopVia } from './headers.js';
export {
  DEFAULT_TIMERS,
  type InboundMeta,
  type ReceiveOutcome,
  type SendFn,
  type TimerConfig,
  type Transaction,
  type TransactionCounters,
  type TransactionState,
  type TransactionUser,
  type TransportErrorReason,
} from './types.js';
