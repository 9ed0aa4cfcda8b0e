// The UA core behind the drachtio wire protocol (spec §7): it turns network requests into
// `sip` frames for apps, completes the partial messages apps send (§7.4–§7.6), keeps the
// transaction and dialog state drachtio-server keeps, and answers what the server answers
// by itself (100, 481, 487, 503 …). It is the transaction user (RFC 3261 §17) of the
// transaction layer (src/engine/transaction), which owns matching, retransmissions and timers
// A–M; the core renders every message itself in drachtio-server's header layout.
//
// This class only assembles the core and routes the layer's and the wire server's callbacks:
//   server.ts         RFC 3261 §8.2, §12.2.2, §9.2: requests from the network
//   invite-server.ts  RFC 3261 §13.3.1.4, RFC 3262, RFC 6026: 2xx/1xx retransmission, the ACK
//   client.ts         RFC 3261 §8.1.3, §13.2 (forks §13.2.2.4): responses to our requests
//   app-commands.ts, app-responses.ts  wire spec §7 forms (a)–(d): app commands → network
//   target.ts         where a new request goes (RFC 3263's place)
//   cdr.ts            call events and the CDR observer
//   ../dialog/        RFC 3261 §12 dialogs
import type { ParseResult, SipRequest, SipResponse } from '../message/types.js';
import type { Clock, Endpoint, InboundPacket, TlsPeerIdentity } from '../transport/types.js';
import {
  TransactionLayer, type ClientTransaction, type InboundMeta, type InviteClientTransaction,
  type InviteServerTransaction, type ServerTransaction, type Transaction, type TransactionUser,
} from '../transaction/index.js';
import type { TimerConfig } from '../transaction/types.js';
import { DialogStore, type Dialog } from '../dialog/dialog.js';
import type { AppConnection, WireHandler, WireServer } from '../wire/server.js';
import { nokPayload } from '../wire/leaders.js';
import { AppCommands } from './app-commands.js';
import { AppResponses } from './app-responses.js';
import { CdrReporter } from './cdr.js';
import { ClientSide } from './client.js';
import { CoreContext, type CoreTransport } from './context.js';
import { InviteServer } from './invite-server.js';
import { Listeners, type Listener } from './listeners.js';
import { ServerSide } from './server.js';

export type { Listener } from './listeners.js';
export type { CoreTransport } from './context.js';
import type { OwnCounters } from './context.js';

/** What the engine reports: the core's own totals with the layer's added in. */
export type CoreCounters = Omit<OwnCounters, 'invalidResponses'> & {
  /** Responses that matched no client transaction, came from elsewhere (RFC 6404 §2.3.2.2), or were a 2xx from one fork too many. */
  forgedResponses: number;
};

export interface UaCoreOptions {
  wire: WireServer;
  transport: CoreTransport;
  listeners: Listener[];
  parse: (buf: Buffer) => ParseResult;
  clock: Clock;
  /** When false (default) no cdr events are generated. */
  cdrs?: boolean;
  /** Told of every message that failed to parse, and of every request that claimed another
   *  peer's dialog (reputation: both are strikes against their source, or against its verified
   *  TLS identity `tls` when it came with one). */
  onMalformed?: (source: Endpoint, error: string, tls?: TlsPeerIdentity) => void;
  /** RFC 3261 Table 4 overrides (policy engine.sip_timers) and `trying`, the deferred 100 Trying
   *  (policy engine.trying_delay_ms; 0, the default: at once); the layer's defaults when omitted. */
  timers?: Partial<TimerConfig>;
}

export class UaCore implements WireHandler, TransactionUser {
  readonly dialogs: DialogStore;
  private readonly onMalformed: UaCoreOptions['onMalformed'];
  private readonly parse: (buf: Buffer) => ParseResult;
  /** RFC 3261 §17: matching, retransmissions, timers. The core is its transaction user. */
  private readonly layer: TransactionLayer;
  private readonly ctx: CoreContext;
  private readonly server: ServerSide;
  private readonly invites: InviteServer;
  private readonly client: ClientSide;
  private readonly commands: AppCommands;
  private closed = false;
  /** RFC 3326 Reason for the BYEs that end a gone app's established calls; undefined: 481 (spec §7.1). */
  private orphanReason: string | undefined;

  constructor(opts: UaCoreOptions) {
    this.parse = opts.parse;
    this.onMalformed = opts.onMalformed;
    this.layer = new TransactionLayer({
      send: (target, bytes, done) => opts.transport.sendThen(target, bytes, done),
      tu: this,
      clock: opts.clock,
      ...(opts.timers ? { timers: opts.timers } : {}),
      onError: (err) => process.emitWarning(`ua core: ${(err as Error)?.stack ?? String(err)}`),
    });
    // The INVITE server's retransmissions stop whenever a dialog ends, whoever ends it.
    this.dialogs = new DialogStore((d) => { this.invites.dialogEnded(d); this.client.dialogEnded(d); });
    const cdrs = opts.cdrs ? new CdrReporter(opts.wire, (app, payload) => this.ctx.sendToApp(app, payload)) : undefined;
    this.ctx = new CoreContext(opts.transport, opts.clock, new Listeners(opts.listeners), this.layer, this.dialogs, cdrs, opts.onMalformed);
    this.client = new ClientSide(this.ctx);
    const byeOnOwn = (d: Dialog, reason: string): void => this.client.byeOnOwn(d, reason, this.ctx.app(d.binding.appId));
    this.invites = new InviteServer(this.ctx, (d) => byeOnOwn(d, 'SIP;cause=200;text="ACK timeout"'));
    this.server = new ServerSide(this.ctx, opts.wire, this.invites, byeOnOwn);
    this.commands = new AppCommands(this.ctx, this.client, new AppResponses(this.ctx, this.server, this.invites));
    opts.wire.setHandler(this);
  }

  /** The SIP listeners, once bound (an engine that opens them after its start: engine.ts). */
  setListeners(list: Listener[]): void { this.ctx.listeners.replace(list); }

  /** Running totals (the engine's metrics read these at scrape time). */
  get counters(): CoreCounters {
    const o = this.ctx.count;
    const t = this.layer.counters;
    return {
      requestsIn: o.requestsIn, responsesIn: o.responsesIn, parseErrors: o.parseErrors, badRequests: o.badRequests,
      retransmissionsAbsorbed: o.retransmissionsAbsorbed + t.retransmissionsAbsorbed,
      forgedResponses: o.invalidResponses + t.forgedResponses + t.strayResponses + t.excessForks,
      unroutedRequests: o.unroutedRequests, framesToApps: o.framesToApps, sendFailures: o.sendFailures,
      clientTimeouts: o.clientTimeouts, extraForksReleased: o.extraForksReleased, foreignDialogRequests: o.foreignDialogRequests,
    };
  }

  /** Stop every timer (engine shutdown). */
  close(): void {
    this.closed = true;
    this.layer.close();
    this.invites.close();
  }

  /** Client transactions without their final response yet (TransactionLayer.clientsAwaitingFinal). */
  clientsAwaitingFinal(): number {
    return this.layer.clientsAwaitingFinal();
  }

  stats(): { dialogs: number; serverTransactions: number; clientTransactions: number } {
    return { dialogs: this.dialogs.size, serverTransactions: this.layer.serverCount, clientTransactions: this.layer.clientCount };
  }

  // ------------------------------------------------------------------ network side

  /** Entry point for every packet the transport layer accepted. */
  onPacket(pkt: InboundPacket): void {
    if (this.closed) return;
    const res = this.parse(pkt.data);
    const count = this.ctx.count;
    if (!res.ok) {
      count.parseErrors++;
      this.onMalformed?.(pkt.source, res.error, pkt.tls);
      // Invalid requests get 400 when a response can be routed back; responses are dropped.
      // The reason phrase is the parser's fixed wording: the detail (res.error) never goes on the wire.
      if (res.kind === 'request') this.server.replyStateless(pkt, res.headers, res.status || 400, res.status ? res.reason : 'Bad Request');
      return;
    }
    const msg = res.message;
    if (msg.kind === 'request') {
      count.requestsIn++;
      // The layer matches retransmissions and ACKs; new requests come back through request().
      if (this.layer.receiveRequest(msg, pkt) === 'invalid') this.server.replyStateless(pkt, msg.headers, 400, 'Bad Request');
    } else {
      count.responsesIn++;
      if (this.layer.receiveResponse(msg, pkt) === 'invalid') count.invalidResponses++;
    }
  }

  // ------------------------------------------------------------------ TransactionUser

  request(txn: ServerTransaction, req: SipRequest, meta: InboundMeta): void { this.server.request(txn, req, meta); }

  ack(req: SipRequest, meta: InboundMeta): void { this.invites.ack(req, meta); }

  trying(txn: InviteServerTransaction): void { this.server.sendTrying(txn); }

  response(txn: ClientTransaction, res: SipResponse, meta: InboundMeta): void { this.client.response(txn, res, meta); }

  retransmitted2xx(txn: InviteClientTransaction, res: SipResponse): void { this.client.retransmitted2xx(txn, res); }

  /** Timer B/F (client: a made-up 408) or H (INVITE server, no ACK for a non-2xx: nothing to do). */
  timeout(txn: Transaction): void { this.client.failed(txn, 408); }

  /** The transport could not send (RFC 3261 §17.1.4): the app gets a made-up 503. */
  transportError(txn: Transaction): void {
    this.ctx.count.sendFailures++;
    this.client.failed(txn, 503);
  }

  /** The transaction left the layer; the app can no longer address it. */
  terminated(txn: Transaction): void {
    if (txn.kind === 'ict' || txn.kind === 'nict') this.client.terminated(txn);
    else this.server.terminated(txn);
  }

  // ------------------------------------------------------------------ WireHandler (app side)

  onAppGone(app: AppConnection): void {
    // Requests still waiting for this app get 503; its dialogs answer 481 from now on (spec §7.1).
    this.server.appGone(app);
    this.ctx.forgetApp(app.id);
    if (this.orphanReason !== undefined) this.endDialogsOf(app.id, this.orphanReason);
  }

  /**
   * Worker model (src/app/workers): when an app's connection goes, its confirmed dialogs get
   * BYE with `reason` (both legs of each of its calls) instead of answering 481 to the peers.
   */
  endDialogsOfGoneApps(reason: string | undefined): void { this.orphanReason = reason; }

  private endDialogsOf(appId: number, reason: string): void {
    for (const d of [...this.dialogs.all()]) {
      if (d.binding.appId === appId && d.state === 'confirmed') this.client.byeOnOwn(d, reason, undefined);
    }
  }

  onProxy(app: AppConnection, tokens: string[], _sip: string): void {
    // peergate is a B2BUA: proxying is not offered (spec §4.6 allows NOK).
    const txnId = tokens[2] ?? '';
    app.send(nokPayload(tokens[0] ?? '', this.server.find(txnId) ? 'proxy not supported by this server' : `Unknown transaction id: ${txnId}`));
  }

  onSip(app: AppConnection, tokens: string[], sip: string): void { this.commands.sip(app, tokens, sip); }
}

