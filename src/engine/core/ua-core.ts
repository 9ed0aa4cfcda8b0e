// The UA core behind the drachtio wire protocol (spec §7): it turns network requests into
// `sip` frames for apps, completes the partial messages apps send (§7.4–§7.6), keeps the
// transaction and dialog state drachtio-server keeps, and answers what the server answers
// by itself (100, 481, 487, 503 …). It is the transaction user of the RFC 3261 §17
// transaction layer (src/engine/transaction), which owns matching, retransmissions and
// timers A–M; the core renders every message itself in drachtio-server's header layout.
import type { HeaderField, ParseResult, SipMessage, SipRequest, SipResponse } from '../message/types.js';
import type { Clock, Endpoint, InboundPacket, Protocol, SendResult, SendTarget } from '../transport/types.js';
import {
  TransactionLayer, TwoXxRetransmitter, type ClientTransaction, type InboundMeta, type InviteClientTransaction,
  type ServerTransaction, type Transaction, type TransactionUser,
} from '../transaction/index.js';
import { Dialog, DialogStore } from '../dialog/dialog.js';
import type { AppConnection, WireHandler, WireServer } from '../wire/server.js';
import {
  nokPayload, requestSentPayload, responseSentPayload, sipFramePayload, stackTime, newId, cdrPayload,
} from '../wire/leaders.js';
import { appHeader, parseAppMessage, type AppMessage } from './app-message.js';
import { headerParam, parseLiteUri, parseViaValue, randomToken, splitCommas, tagOf, uriOf, type LiteUri } from './headers.js';
import { identityHeaderValue, rewriteInbound, TLS_IDENTITY_HEADER } from './inbound.js';
import { OutMessage } from './outgoing.js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** RFC 3261 T1, for the core's own schedules (2xx and reliable provisional retransmission). */
const T1 = 500;

/** Methods an app can route outside a dialog (spec §7.1). */
const ROUTED = new Set(['INVITE', 'REGISTER', 'MESSAGE', 'OPTIONS', 'INFO', 'NOTIFY', 'SUBSCRIBE', 'PUBLISH']);
/** Headers an app can never set (spec §7.5). */
/** Names the listener a new request leaves from (`address:port`); consumed by the engine, never sent. */
export const EGRESS_HEADER = 'x-peergate-egress';
const APP_FORBIDDEN = new Set(['via', 'route', 'record-route', 'rseq', 'content-length', EGRESS_HEADER]);
/** Headers the core writes itself from the request/dialog. */
const CORE_OWNED = new Set(['from', 'to', 'call-id', 'cseq']);

const REASONS: Record<number, string> = {
  100: 'Trying', 200: 'OK', 400: 'Bad Request', 408: 'Request Timeout', 481: 'Call/Transaction Does Not Exist',
  487: 'Request Terminated', 491: 'Request Pending', 500: 'Server Internal Error', 503: 'Service Unavailable',
};

export interface Listener {
  protocol: Protocol;
  address: string;
  port: number;
  /** Host written into our Via and Contact instead of `address` (a public address behind NAT). */
  advertise?: string;
}

export interface CoreTransport {
  send(target: SendTarget, bytes: Buffer): Promise<SendResult>;
  /** Whether a TCP/TLS connection still exists (responses on a closed one get NOK). */
  hasConnection?(connectionId: string): boolean;
}

export interface CoreCounters {
  requestsIn: number;
  responsesIn: number;
  parseErrors: number;
  badRequests: number;
  retransmissionsAbsorbed: number;
  /** Responses that matched no client transaction or came from elsewhere (RFC 6404 §2.3.2.2). */
  forgedResponses: number;
  unroutedRequests: number;
  framesToApps: number;
  sendFailures: number;
  /** Client transactions that got no final response (Timer B/F): a made-up 408 went to the app. */
  clientTimeouts: number;
  /** 2xx from a second fork of an INVITE: ACKed and released with BYE by the core (RFC 3261 §13.2.2.4). */
  extraForksReleased: number;
}

export interface UaCoreOptions {
  wire: WireServer;
  transport: CoreTransport;
  listeners: Listener[];
  parse: (buf: Buffer) => ParseResult;
  clock: Clock;
  /** When false (default) no cdr events are generated. */
  cdrs?: boolean;
  /** Told of every message that failed to parse (reputation: garbage is a strike against its source). */
  onMalformed?: (source: Endpoint, error: string) => void;
}

/** drachtio bookkeeping for a server transaction of the layer (its `appData`). */
interface ServerCtx {
  txn: ServerTransaction;
  /** Wire protocol transaction id; empty for a CANCEL (never addressed by the app). */
  txnId: string;
  method: string;
  app: AppConnection | undefined;
  /** The request's Vias with the top one stamped (received/rport): responses echo these. */
  vias: string[];
  from: string;
  to: string;
  callId: string;
  cseq: string;
  recordRoute: string[];
  contact: string | undefined;
  supports100rel: boolean;
  source: Endpoint;
  connectionId: string | undefined;
  local: Endpoint;
  bytes: number;
  toTag: string | undefined;
  dialogId: string;
  dialog: Dialog | undefined;
  canceled: boolean;
  /** The text passed to the app (for cdr). */
  inviteText?: string;
}

/** drachtio bookkeeping for a client transaction of the layer: a request an app (or the core) sent. */
interface ClientCtx {
  txn: ClientTransaction;
  txnId: string;
  method: string;
  /** Undefined for requests the server sends on its own (the ACK-timeout BYE, a BYE to an extra fork). */
  app: AppConnection | undefined;
  /** No made-up 408/503 frame on failure (CANCEL, the core's own requests). */
  silent: boolean;
  local: Listener;
  requestUri: string;
  topVia: string;
  from: string;
  to: string;
  callId: string;
  cseqNum: number;
  routes: string[];
  dialogId: string;
  dialog: Dialog | undefined;
  inDialog: boolean;
  canceled: boolean;
  /** ACKs sent for this INVITE's 2xx, by To-tag: re-sent when that 2xx is retransmitted (spec §7.7). */
  acks: Map<string, { bytes: Buffer; target: SendTarget }> | undefined;
}

/** A request the core rendered, with what the layer and the dialog need of it. */
interface Built {
  bytes: Buffer;
  request: SipRequest;
  target: SendTarget;
  local: Listener;
  seq: number;
  topVia: string;
  routes: string[];
  requestUri: string;
}

/** Per-dialog transient state kept outside Dialog to keep established dialogs small. */
interface PendingAck { retransmitter: TwoXxRetransmitter; txnId: string }
interface PendingReliable { retransmitter: TwoXxRetransmitter; rseq: number }

const EMPTY = Buffer.alloc(0);

function hdr(msg: SipMessage, name: string): string | undefined {
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.name === name) return hs[i]!.value;
  return undefined;
}

/** All values of a header. The parser already splits comma lists (Via, Route, Record-Route,
 *  Contact …) into one field per value; a value still holding a top-level comma is split here. */
function hdrAll(msg: SipMessage, name: string): string[] {
  const out: string[] = [];
  for (const h of msg.headers) {
    if (h.name !== name) continue;
    if (h.value.includes(',')) out.push(...splitCommas(h.value)); else out.push(h.value);
  }
  return out;
}

function hasOptionTag(values: string[], tag: string): boolean {
  for (const v of values) for (const t of v.split(',')) if (t.trim().toLowerCase() === tag) return true;
  return false;
}

function cseqParts(v: string | undefined): { num: number; method: string } | undefined {
  if (!v) return undefined;
  const t = v.trim().split(/\s+/);
  const num = Number(t[0]);
  if (t.length !== 2 || !Number.isInteger(num) || num < 0 || num > 0xffffffff) return undefined;
  return { num, method: t[1]! };
}

/** Characters that would break a wire leader if they reached one (Call-ID, tags). */
function leaderSafe(s: string): boolean {
  return !/[|\r\n]/.test(s);
}

export class UaCore implements WireHandler, TransactionUser {
  private readonly onMalformed: UaCoreOptions['onMalformed'];
  readonly dialogs = new DialogStore();
  private readonly own = {
    requestsIn: 0, responsesIn: 0, parseErrors: 0, badRequests: 0, retransmissionsAbsorbed: 0, invalidResponses: 0,
    unroutedRequests: 0, framesToApps: 0, sendFailures: 0, clientTimeouts: 0, extraForksReleased: 0,
  };
  /** RFC 3261 §17: matching, retransmissions, timers. The core is its transaction user. */
  private readonly layer: TransactionLayer;
  /** Server transactions an app may still answer, by wire transaction id. */
  private readonly stxById = new Map<string, ServerCtx>();
  /** Client transactions an app may still CANCEL, by wire transaction id. */
  private readonly ctxById = new Map<string, ClientCtx>();
  private readonly pendingAcks = new Map<string, PendingAck>();
  private readonly pendingReliable = new Map<string, PendingReliable>();
  /** Dialog ids of app INVITEs that failed: an ACK from the app for them gets the spec's NOK. */
  private readonly failedInvites = new Map<string, number>();
  private readonly apps = new Map<number, AppConnection>();
  /** The latest INVITE client transaction of each dialog id (its ACK is re-sent on 2xx copies). */
  private readonly inviteCtxByDialog = new Map<string, ClientCtx>();
  private cseqCounter = 100_000_000 + Math.floor(Math.random() * 100_000_000);
  private readonly wire: WireServer;
  private readonly transport: CoreTransport;
  private readonly listeners: Listener[];
  private readonly parse: (buf: Buffer) => ParseResult;
  private readonly clock: Clock;
  private readonly cdrs: boolean;
  private closed = false;

  constructor(opts: UaCoreOptions) {
    this.wire = opts.wire;
    this.transport = opts.transport;
    this.listeners = opts.listeners;
    this.parse = opts.parse;
    this.clock = opts.clock;
    this.cdrs = opts.cdrs ?? false;
    this.onMalformed = opts.onMalformed;
    this.layer = new TransactionLayer({
      send: (target, bytes) => this.transport.send(target, bytes),
      tu: this,
      clock: opts.clock,
      onError: (err) => process.emitWarning(`ua core: ${(err as Error)?.stack ?? String(err)}`),
    });
    opts.wire.setHandler(this);
  }

  /** Running totals (the engine's metrics read these at scrape time). */
  get counters(): CoreCounters {
    const o = this.own;
    const t = this.layer.counters;
    return {
      requestsIn: o.requestsIn, responsesIn: o.responsesIn, parseErrors: o.parseErrors, badRequests: o.badRequests,
      retransmissionsAbsorbed: o.retransmissionsAbsorbed + t.retransmissionsAbsorbed,
      forgedResponses: o.invalidResponses + t.forgedResponses + t.strayResponses,
      unroutedRequests: o.unroutedRequests, framesToApps: o.framesToApps, sendFailures: o.sendFailures,
      clientTimeouts: o.clientTimeouts, extraForksReleased: o.extraForksReleased,
    };
  }

  /** Stop every timer (engine shutdown). */
  close(): void {
    this.closed = true;
    this.layer.close();
    for (const p of this.pendingAcks.values()) p.retransmitter.stop();
    for (const p of this.pendingReliable.values()) p.retransmitter.stop();
  }

  stats(): { dialogs: number; serverTransactions: number; clientTransactions: number } {
    return { dialogs: this.dialogs.size, serverTransactions: this.layer.serverCount, clientTransactions: this.layer.clientCount };
  }

  // ------------------------------------------------------------------ helpers

  private listenerFor(protocol: Protocol, local?: Endpoint): Listener | undefined {
    if (local) {
      for (const l of this.listeners) if (l.protocol === protocol && l.port === local.port && l.address === local.address) return l;
    }
    for (const l of this.listeners) if (l.protocol === protocol) return l;
    return undefined;
  }

  private listenerKey(l: Listener): string { return `${l.protocol}/${l.address}:${l.port}`; }

  private listenerByKey(k: string): Listener | undefined {
    for (const l of this.listeners) if (this.listenerKey(l) === k) return l;
    return undefined;
  }

  private hostPort(l: Listener): string {
    const host = l.advertise ?? l.address;
    return isIP(host) === 6 ? `[${host}]:${l.port}` : `${host}:${l.port}`;
  }

  /** Our Contact for a listener (spec §7.4). */
  private contactFor(l: Listener): string {
    if (l.protocol === 'tls') return `<sips:${this.hostPort(l)};transport=tls>`;
    if (l.protocol === 'tcp') return `<sip:${this.hostPort(l)};transport=tcp>`;
    return `<sip:${this.hostPort(l)}>`;
  }

  private viaFor(l: Listener, branch: string): string {
    const adv = l.advertise ?? l.address;
    const host = isIP(adv) === 6 ? `[${adv}]` : adv;
    if (l.protocol === 'udp') return `SIP/2.0/UDP ${host}${l.port === 5060 ? '' : `:${l.port}`};rport;branch=${branch}`;
    return `SIP/2.0/${l.protocol.toUpperCase()} ${host}:${l.port};branch=${branch}`;
  }

  private sendToApp(app: AppConnection | undefined, payload: string): void {
    if (!app || app.closed) return;
    this.own.framesToApps++;
    app.send(payload);
  }

  private emitCdr(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', extra: string | undefined, sip: string): void {
    if (!this.cdrs) return;
    const app = this.wire.pickApp(`cdr:${kind}`);
    if (app) this.sendToApp(app, cdrPayload(kind, source, extra, sip));
  }

  private countSend(p: Promise<SendResult>): void {
    void p.then((r) => { if (!r.ok) this.own.sendFailures++; });
  }

  // ------------------------------------------------------------------ network side

  /** Entry point for every packet the transport layer accepted. */
  onPacket(pkt: InboundPacket): void {
    if (this.closed) return;
    const res = this.parse(pkt.data);
    if (!res.ok) {
      this.own.parseErrors++;
      this.onMalformed?.(pkt.source, res.error);
      // Invalid requests get 400 when a response can be routed back; responses are dropped.
      if (res.kind === 'request') this.replyStateless(pkt, res.headers, res.status || 400, res.status === 400 || !res.status ? 'Bad Request' : res.error);
      return;
    }
    const msg = res.message;
    if (msg.kind === 'request') {
      this.own.requestsIn++;
      // The layer matches retransmissions and ACKs; new requests come back through request().
      if (this.layer.receiveRequest(msg, pkt) === 'invalid') this.replyStateless(pkt, msg.headers, 400, 'Bad Request');
    } else {
      this.own.responsesIn++;
      if (this.layer.receiveResponse(msg, pkt) === 'invalid') this.own.invalidResponses++;
    }
  }

  /** A response built only from recovered headers (no transaction), e.g. 400 to garbage. */
  private replyStateless(pkt: InboundPacket, headers: HeaderField[], status: number, reason: string): void {
    const vias: string[] = [];
    let from: string | undefined, to: string | undefined, callId: string | undefined, cseq: string | undefined;
    for (const h of headers) {
      if (h.name === 'via') vias.push(...splitCommas(h.value));
      else if (h.name === 'from') from ??= h.value;
      else if (h.name === 'to') to ??= h.value;
      else if (h.name === 'call-id') callId ??= h.value;
      else if (h.name === 'cseq') cseq ??= h.value;
    }
    if (vias.length === 0) return;
    this.own.badRequests++;
    const m = new OutMessage();
    for (const v of vias) m.add('via', v);
    if (from) m.add('from', from);
    if (to) m.add('to', tagOf(to) ? to : `${to};tag=${randomToken()}`);
    if (callId) m.add('call-id', callId);
    if (cseq) m.add('cseq', cseq);
    const safeReason = reason.replace(/[\r\n]/g, ' ').slice(0, 120);
    void this.transport.send(this.replyTarget(pkt), m.render(`SIP/2.0 ${status} ${safeReason}`, EMPTY));
  }

  private replyTarget(pkt: InboundMeta): SendTarget {
    return { protocol: pkt.source.protocol, address: pkt.source.address, port: pkt.source.port, connectionId: pkt.connectionId, local: pkt.local };
  }

  /** The header values every request the core accepts must carry, checked once per new request. */
  private requestHead(req: SipRequest): { vias: string[]; from: string; to: string; callId: string; cseq: string; cseqNum: number; fromTag: string | undefined; toTag: string | undefined; viaHost: string } | undefined {
    const vias = hdrAll(req, 'via');
    const from = hdr(req, 'from');
    const to = hdr(req, 'to');
    const callId = hdr(req, 'call-id');
    const cseqV = hdr(req, 'cseq');
    const cseq = cseqParts(cseqV);
    const top = vias[0] ? parseViaValue(vias[0]) : undefined;
    if (!top || !from || !to || !callId || !cseq || cseq.method !== req.method || !leaderSafe(callId) || !leaderSafe(req.uri)) return undefined;
    const fromTag = tagOf(from);
    const toTag = tagOf(to);
    if ((fromTag !== undefined && !leaderSafe(fromTag)) || (toTag !== undefined && !leaderSafe(toTag))) return undefined;
    return { vias, from, to, callId, cseq: cseqV!, cseqNum: cseq.num, fromTag, toTag, viaHost: top.host };
  }

  /** TransactionUser: a new request made a server transaction (RFC 3261 §17.2). */
  request(txn: ServerTransaction, req: SipRequest, meta: InboundMeta): void {
    const pkt = meta as InboundPacket;
    txn.target = this.replyTarget(pkt);
    const head = this.requestHead(req);
    const rw = head && rewriteInbound(pkt.data.toString('utf8'), pkt.source.address, pkt.source.port, head.viaHost,
      pkt.tls ? identityHeaderValue(pkt.tls) : undefined);
    if (!head || !rw) {
      this.replyStateless(pkt, req.headers, 400, 'Bad Request');
      txn.terminate();
      return;
    }
    const method = req.method;
    const { callId, fromTag, toTag } = head;
    const stx: ServerCtx = {
      txn, txnId: method === 'CANCEL' ? '' : newId(), method, app: undefined, vias: [rw.topVia, ...head.vias.slice(1)],
      from: head.from, to: head.to, callId, cseq: head.cseq,
      recordRoute: hdrAll(req, 'record-route'), contact: hdr(req, 'contact'),
      supports100rel: hasOptionTag([...hdrAll(req, 'supported'), ...hdrAll(req, 'require')], '100rel'),
      source: pkt.source, connectionId: pkt.connectionId, local: pkt.local, bytes: pkt.data.length,
      toTag, dialogId: '', dialog: undefined, canceled: false,
    };
    txn.appData = stx;
    if (method === 'CANCEL') { this.onCancel(stx, req, pkt, rw.text); return; }

    if (toTag !== undefined) {
      // Inside a dialog (RFC 3261 §12.2.2).
      if (method === 'INVITE') this.respond(stx, 100);
      const d = this.dialogs.findByLocal(callId, toTag);
      const app = d ? this.apps.get(d.appId) : undefined;
      if (!d || !app || app.closed) {
        if (d && method === 'BYE') this.destroyDialog(d);
        this.respond(stx, 481);
        return;
      }
      stx.app = app;
      stx.dialog = d;
      stx.dialogId = d.id;
      if (method === 'INVITE' || method === 'UPDATE' || method === 'SUBSCRIBE' || method === 'NOTIFY' || method === 'REFER') {
        const c = stx.contact;
        if (c) d.remoteTarget = uriOf(splitCommas(c)[0] ?? c);
      }
      if (head.cseqNum > d.remoteSeq) d.remoteSeq = head.cseqNum;
      if (method === 'PRACK') this.onPrack(d, req);
      this.stxById.set(stx.txnId, stx);
      const frameDialogId = d.id;
      if (method === 'BYE') {
        // The dialog is gone once the BYE arrives (trace 03 #13: its response echo has no dialog id).
        this.destroyDialog(d);
        stx.dialogId = '';
        stx.dialog = undefined;
        if (this.cdrs) this.emitCdr('stop', 'network', 'normal-release', rw.text);
      }
      this.sendToApp(app, sipFramePayload({
        source: 'network', bytes: stx.bytes, protocol: pkt.source.protocol, address: pkt.source.address,
        port: pkt.source.port, time: stackTime(this.clock.now()), txnId: stx.txnId, dialogId: frameDialogId,
      }, rw.text));
      return;
    }

    // Outside any dialog.
    if (!ROUTED.has(method)) {
      if (method === 'BYE' || method === 'UPDATE') this.respond(stx, 481);
      // REFER, PRACK, … outside a dialog: no response at all (trace 02 #20).
      else txn.terminate();
      return;
    }
    if (method === 'INVITE') {
      this.respond(stx, 100);
      // A late copy of an INVITE whose dialog already exists (spec §7.1).
      const d = fromTag ? this.dialogs.get(`${callId};from-tag=${fromTag}`) : undefined;
      if (d && d.role === 'uas' && d.state === 'confirmed') { this.respond(stx, 491); return; }
    }
    if (this.cdrs && method === 'INVITE') this.emitCdr('attempt', 'network', undefined, rw.text);
    const app = this.wire.pickApp(method);
    if (!app) {
      this.own.unroutedRequests++;
      const resp = this.respond(stx, 503);
      if (this.cdrs && method === 'INVITE' && resp) this.emitCdr('stop', 'application', 'call-rejected', resp.toString('utf8'));
      return;
    }
    stx.app = app;
    this.apps.set(app.id, app);
    if (this.cdrs && method === 'INVITE') stx.inviteText = rw.text;
    // An app that never answers: the layer forgets the request after 64 s (spec §7.10).
    this.stxById.set(stx.txnId, stx);
    this.sendToApp(app, sipFramePayload({
      source: 'network', bytes: stx.bytes, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.clock.now()), txnId: stx.txnId, dialogId: '',
      receivedOn: { address: pkt.local.address, port: pkt.local.port },
    }, rw.text));
  }

  /** Send a response the server makes up itself (100, 481, 487, 503 …). Returns the bytes. */
  private respond(stx: ServerCtx, status: number, toTag?: string): Buffer | undefined {
    const m = new OutMessage();
    for (const v of stx.vias) m.add('via', v);
    m.add('from', stx.from);
    let to = stx.to;
    if (status > 100 && !tagOf(to)) to = `${to};tag=${toTag ?? stx.toTag ?? randomToken()}`;
    m.add('to', to);
    m.add('call-id', stx.callId);
    m.add('cseq', stx.cseq);
    const bytes = m.render(`SIP/2.0 ${status} ${REASONS[status] ?? 'Unknown'}`, EMPTY);
    if (status >= 200) this.stxById.delete(stx.txnId);
    if (status === 100 && stx.txn.kind === 'ist') return stx.txn.sendOwnTrying(bytes) ? bytes : undefined;
    return stx.txn.respondRaw(status, bytes) ? bytes : undefined;
  }

  /** TransactionUser: an ACK the layer did not absorb, i.e. the ACK for a 2xx (RFC 3261 §13.2.2.4). */
  ack(req: SipRequest, meta: InboundMeta): void {
    const pkt = meta as InboundPacket;
    const callId = hdr(req, 'call-id');
    const toTag = tagOf(hdr(req, 'to'));
    const top = hdrAll(req, 'via')[0];
    const via = top ? parseViaValue(top) : undefined;
    if (!callId || !toTag || !via) return;
    const d = this.dialogs.findByLocal(callId, toTag);
    if (!d) return;
    const cseq = cseqParts(hdr(req, 'cseq'));
    const pending = this.pendingAcks.get(d.id);
    let txnId: string;
    if (pending) {
      pending.retransmitter.stop();
      this.pendingAcks.delete(d.id);
      txnId = pending.txnId;
    } else {
      // A copy of an ACK already delivered is absorbed.
      if (cseq && cseq.num === d.lastAckSeq) { this.own.retransmissionsAbsorbed++; return; }
      txnId = newId();
    }
    if (cseq) d.lastAckSeq = cseq.num;
    const rw = rewriteInbound(pkt.data.toString('utf8'), pkt.source.address, pkt.source.port, via.host,
      pkt.tls ? identityHeaderValue(pkt.tls) : undefined);
    if (!rw) return;
    this.sendToApp(this.apps.get(d.appId), sipFramePayload({
      source: 'network', bytes: pkt.data.length, protocol: '', address: pkt.source.address, port: pkt.source.port,
      time: stackTime(this.clock.now()), txnId, dialogId: d.id,
    }, rw.text));
  }

  private onCancel(cancel: ServerCtx, req: SipRequest, pkt: InboundPacket, text: string): void {
    const ist = this.layer.findInviteServerTransaction(req);
    const inv = ist?.appData as ServerCtx | undefined;
    if (!ist || !inv || ist.state !== 'Proceeding' || inv.canceled) {
      // Nothing to cancel (spec §7.8).
      this.respond(cancel, 481);
      const d = ist?.state === 'Accepted' ? inv?.dialog : undefined;
      if (d && this.pendingAcks.has(d.id)) {
        // CANCEL after our 2xx but before its ACK: the caller gave up, so end the call (spec §7.8).
        this.sendByeOnOwn(d, 'SIP ;cause=200 ;text="CANCEL after 200 OK"', this.apps.get(d.appId));
      }
      return;
    }
    inv.canceled = true;
    const provisional = inv.toTag !== undefined;
    this.respond(cancel, 200, inv.toTag);
    this.respond(inv, 487, inv.toTag);
    const dialogId = inv.dialogId;
    if (inv.dialog) { this.destroyDialog(inv.dialog); inv.dialog = undefined; }
    this.cancelReliable(dialogId);
    if (this.cdrs && inv.inviteText) this.emitCdr('stop', 'network', 'call-canceled', inv.inviteText);
    this.sendToApp(inv.app, sipFramePayload({
      source: 'network', bytes: provisional ? inv.bytes : pkt.data.length, protocol: pkt.source.protocol,
      address: pkt.source.address, port: pkt.source.port, time: stackTime(this.clock.now()), txnId: inv.txnId,
      dialogId: provisional ? dialogId : '',
    }, text));
  }

  private onPrack(d: Dialog, req: SipRequest): void {
    const rack = hdr(req, 'rack');
    const p = this.pendingReliable.get(d.id);
    if (!rack || !p) return;
    const rseq = Number(rack.trim().split(/\s+/)[0]);
    if (rseq === p.rseq) this.cancelReliable(d.id);
  }

  private cancelReliable(dialogId: string): void {
    const p = this.pendingReliable.get(dialogId);
    if (!p) return;
    p.retransmitter.stop();
    this.pendingReliable.delete(dialogId);
  }

  private destroyDialog(d: Dialog): void {
    this.dialogs.remove(d);
    const p = this.pendingAcks.get(d.id);
    if (p) { p.retransmitter.stop(); this.pendingAcks.delete(d.id); }
    this.cancelReliable(d.id);
  }

  // ------------------------------------------------------------------ responses from the network

  /** TransactionUser: the first copy of a response to a request an app (or the core) sent. */
  response(txn: ClientTransaction, res: SipResponse, meta: InboundMeta): void {
    const ctx = txn.appData as ClientCtx | undefined;
    if (!ctx) return;
    const pkt = meta as InboundPacket;
    const status = res.status;
    const isInvite = ctx.method === 'INVITE';
    if (ctx.method === 'CANCEL') return; // responses to a CANCEL are not passed up (spec §5.2)
    if (status < 200) {
      if (status === 100) return; // never passed up (trace 05 #38)
      if (isInvite && hdr(res, 'rseq') !== undefined && tagOf(hdr(res, 'to'))) this.uacDialogFrom(ctx, res, pkt, 'early');
      this.passResponse(ctx, pkt);
      return;
    }
    if (isInvite && status < 300) {
      const d = ctx.dialog;
      if (!ctx.inDialog && d && d.state === 'confirmed' && tagOf(hdr(res, 'to')) !== d.remoteTag) {
        this.releaseExtraFork(ctx, res, pkt);
        return;
      }
      this.uacDialogFrom(ctx, res, pkt, 'confirmed');
      this.passResponse(ctx, pkt);
      if (this.cdrs) this.emitCdr('start', 'network', 'uac', pkt.data.toString('utf8'));
      return;
    }
    if (isInvite) {
      // Non-2xx: the layer has ACKed it (RFC 3261 §17.1.1.3), as drachtio-server does (spec §7.7).
      if (ctx.dialog && !ctx.inDialog) { this.destroyDialog(ctx.dialog); ctx.dialog = undefined; }
      if (!ctx.inDialog) this.rememberFailed(ctx.dialogId);
      this.passResponse(ctx, pkt);
      if (this.cdrs) this.emitCdr('stop', 'network', ctx.canceled ? 'call-canceled' : 'call-rejected', pkt.data.toString('utf8'));
      return;
    }
    if (ctx.method === 'BYE' && ctx.dialog) this.destroyDialog(ctx.dialog);
    this.passResponse(ctx, pkt);
  }

  /** TransactionUser: a 2xx to an INVITE seen again: re-send the ACK sent for it (spec §7.7). */
  retransmitted2xx(txn: InviteClientTransaction, res: SipResponse): void {
    const ctx = txn.appData as ClientCtx | undefined;
    const ack = ctx?.acks?.get(tagOf(hdr(res, 'to')) ?? '');
    if (ack) this.countSend(this.transport.send(ack.target, ack.bytes));
  }

  /** TransactionUser: Timer B/F (client) or H (INVITE server, no ACK for a non-2xx). */
  timeout(txn: Transaction): void {
    if (txn.kind !== 'ict' && txn.kind !== 'nict') return;
    const ctx = txn.appData as ClientCtx | undefined;
    if (!ctx) return;
    this.own.clientTimeouts++;
    if (ctx.dialog && !ctx.inDialog && ctx.dialog.state === 'early') this.destroyDialog(ctx.dialog);
    if (ctx.method === 'INVITE' && !ctx.inDialog) this.rememberFailed(ctx.dialogId);
    if (!ctx.silent) this.madeUpFailure(ctx, 408);
  }

  /** TransactionUser: the transport could not send (RFC 3261 §17.1.4): the app gets a made-up 503. */
  transportError(txn: Transaction): void {
    this.own.sendFailures++;
    if (txn.kind !== 'ict' && txn.kind !== 'nict') return;
    const ctx = txn.appData as ClientCtx | undefined;
    if (!ctx) return;
    if (ctx.dialog && !ctx.inDialog && ctx.dialog.state === 'early') this.destroyDialog(ctx.dialog);
    if (ctx.method === 'INVITE' && !ctx.inDialog) this.rememberFailed(ctx.dialogId);
    if (!ctx.silent) this.madeUpFailure(ctx, 503);
  }

  /** TransactionUser: the transaction left the layer; the app can no longer address it. */
  terminated(txn: Transaction): void {
    if (txn.kind === 'ict' || txn.kind === 'nict') {
      const ctx = txn.appData as ClientCtx | undefined;
      if (!ctx) return;
      if (this.ctxById.get(ctx.txnId) === ctx) this.ctxById.delete(ctx.txnId);
      if (this.inviteCtxByDialog.get(ctx.dialogId) === ctx) this.inviteCtxByDialog.delete(ctx.dialogId);
      return;
    }
    const stx = txn.appData as ServerCtx | undefined;
    if (stx && this.stxById.get(stx.txnId) === stx) this.stxById.delete(stx.txnId);
  }

  /**
   * A 2xx from a second fork of our INVITE (RFC 3261 §13.2.2.4): the app has its dialog with the
   * first, so the core ACKs this one and ends it with BYE itself; the app never hears of it.
   */
  private releaseExtraFork(ctx: ClientCtx, res: SipResponse, pkt: InboundPacket): void {
    const to = hdr(res, 'to') ?? ctx.to;
    const c = hdr(res, 'contact');
    const fork = new Dialog({
      role: 'uac', callId: ctx.callId, localTag: tagOf(ctx.from) ?? '', remoteTag: tagOf(to) ?? '', creatorFromTag: tagOf(ctx.from) ?? '',
      localParty: ctx.from, remoteParty: to, remoteTarget: c ? uriOf(splitCommas(c)[0] ?? c) : ctx.requestUri, localSeq: ctx.cseqNum,
      protocol: ctx.txn.target.protocol, address: ctx.txn.target.address, port: ctx.txn.target.port,
      connectionId: pkt.connectionId ?? ctx.txn.connectionId, localKey: this.listenerKey(ctx.local), appId: 0, inviteTxnId: '',
    });
    fork.routeSet = hdrAll(res, 'record-route').reverse();
    const ack = this.buildInDialog(fork, 'ACK', undefined, [], EMPTY, ctx.cseqNum);
    if (!ack) return;
    (ctx.acks ??= new Map()).set(fork.remoteTag, { bytes: ack.bytes, target: ack.target });
    this.countSend(this.transport.send(ack.target, ack.bytes));
    const bye = this.buildInDialog(fork, 'BYE', undefined, [['reason', 'SIP;cause=200;text="Call completed elsewhere"', 'Reason']], EMPTY);
    if (bye) this.startClientTxn({ app: undefined, txnId: newId(), built: bye, d: undefined, method: 'BYE', inDialog: true, silent: true });
    this.own.extraForksReleased++;
  }

  private rememberFailed(dialogId: string): void {
    if (!dialogId) return;
    const now = this.clock.now();
    this.failedInvites.set(dialogId, now);
    // Bounded: forget entries older than 32 s whenever the map grows.
    if (this.failedInvites.size > 1000) {
      for (const [k, t] of this.failedInvites) if (now - t > 64 * T1) this.failedInvites.delete(k);
    }
  }

  private passResponse(ctx: ClientCtx, pkt: InboundPacket): void {
    this.sendToApp(ctx.app, sipFramePayload({
      source: 'network', bytes: pkt.data.length, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.clock.now()), txnId: ctx.txnId, dialogId: ctx.dialogId,
    }, pkt.data.toString('utf8')));
  }

  /** Create or update the UAC dialog from a 2xx or reliable 1xx (RFC 3261 §12.1.2). */
  private uacDialogFrom(ctx: ClientCtx, res: SipResponse, pkt: InboundPacket, state: 'early' | 'confirmed'): void {
    if (ctx.inDialog) {
      // re-INVITE: refresh the remote target only.
      const c = hdr(res, 'contact');
      if (ctx.dialog && c) ctx.dialog.remoteTarget = uriOf(splitCommas(c)[0] ?? c);
      return;
    }
    const to = hdr(res, 'to') ?? ctx.to;
    const remoteTag = tagOf(to) ?? '';
    const c = hdr(res, 'contact');
    const target = c ? uriOf(splitCommas(c)[0] ?? c) : ctx.requestUri;
    const rr = hdrAll(res, 'record-route').reverse();
    let d = ctx.dialog;
    if (!d) {
      d = new Dialog({
        role: 'uac', callId: ctx.callId, localTag: tagOf(ctx.from) ?? '', remoteTag, creatorFromTag: tagOf(ctx.from) ?? '',
        localParty: ctx.from, remoteParty: to, remoteTarget: target, localSeq: ctx.cseqNum, protocol: ctx.txn.target.protocol,
        address: ctx.txn.target.address, port: ctx.txn.target.port, connectionId: pkt.connectionId ?? ctx.txn.connectionId,
        localKey: this.listenerKey(ctx.local), appId: ctx.app?.id ?? 0, inviteTxnId: ctx.txnId,
      });
      d.inviteSeq = ctx.cseqNum;
      d.routeSet = rr;
      ctx.dialog = d;
      if (ctx.app) this.apps.set(ctx.app.id, ctx.app);
      this.dialogs.add(d);
    } else {
      d.remoteParty = to;
      d.remoteTag = remoteTag;
      d.remoteTarget = target;
      if (rr.length > 0) d.routeSet = rr;
    }
    if (state === 'confirmed') d.state = 'confirmed';
  }

  // ------------------------------------------------------------------ app side (wire)

  onAppGone(app: AppConnection): void {
    // Requests still waiting for this app get 503; its dialogs answer 481 from now on (spec §7.1).
    for (const stx of [...this.stxById.values()]) {
      if (stx.app !== app) continue;
      if (stx.method === 'INVITE' && stx.dialog) this.destroyDialog(stx.dialog);
      this.respond(stx, 503);
    }
    this.apps.delete(app.id);
  }

  onProxy(app: AppConnection, tokens: string[], _sip: string): void {
    // peergate is a B2BUA: proxying is not offered (spec §4.6 allows NOK).
    const txnId = tokens[2] ?? '';
    app.send(nokPayload(tokens[0] ?? '', this.stxById.has(txnId) ? 'proxy not supported by this server' : `Unknown transaction id: ${txnId}`));
  }

  onSip(app: AppConnection, tokens: string[], sip: string): void {
    this.apps.set(app.id, app);
    const msgId = tokens[0]!;
    const txnId = tokens[2] ?? '';
    const dialogId = tokens[3] ?? '';
    const parsed = parseAppMessage(sip);
    if ('error' in parsed) { app.send(nokPayload(msgId, parsed.error)); return; }
    if (parsed.kind === 'response') { this.appResponse(app, msgId, txnId, parsed); return; }
    if (dialogId) { this.appInDialog(app, msgId, dialogId, parsed); return; }
    if (txnId) { this.appCancel(app, msgId, txnId, parsed); return; }
    // A new request whose Call-ID is a live dialog's is sent inside that dialog (spec §3).
    const callId = appHeader(parsed, 'call-id');
    const d = callId === undefined ? undefined : this.dialogs.findByCallId(callId.trim());
    if (d && d.appId === app.id) { this.appInDialog(app, msgId, d.id, parsed); return; }
    void this.appNewRequest(app, msgId, parsed, tokens[4] ?? '');
  }

  /** Content-Type rule of spec §7.4: the app's, else application/sdp for a `v=0` body, else fail. */
  private contentType(m: AppMessage): { ok: true; value: string | undefined } | { ok: false } {
    const ct = appHeader(m, 'content-type');
    if (ct) return { ok: true, value: ct };
    if (m.body.length === 0) return { ok: true, value: undefined };
    if (m.body.subarray(0, 3).toString('latin1') === 'v=0') return { ok: true, value: 'application/sdp' };
    return { ok: false };
  }

  /** Copy the app's headers except those it cannot set (spec §7.5). */
  private addAppHeaders(out: OutMessage, m: AppMessage, skip: Set<string>): void {
    for (const h of m.headers) {
      if (APP_FORBIDDEN.has(h.name) || skip.has(h.name) || h.name === 'content-type') continue;
      out.add(h.name, h.value, h.raw);
    }
  }

  // form (a): a response to a network request
  private appResponse(app: AppConnection, msgId: string, txnId: string, m: AppMessage): void {
    const stx = this.stxById.get(txnId);
    const cseqMethod = cseqParts(appHeader(m, 'cseq'))?.method?.toUpperCase();
    if (cseqMethod === 'CANCEL') { app.send(nokPayload(msgId, '200 OK to incoming CANCEL is automatically generated by the stack')); return; }
    const status = m.status;
    if (!stx || stx.canceled || !stx.txn.accepts(status)) {
      app.send(nokPayload(msgId, 'Response not sent due to unknown transaction'));
      return;
    }
    const ct = this.contentType(m);
    if (!ct.ok) { app.send(nokPayload(msgId, stx.dialog ? 'Server error: missing content-type' : 'missing content-type')); return; }
    const isInvite = stx.method === 'INVITE';
    // An INVITE outside a dialog: its 1xx/2xx create the (early) dialog (RFC 3261 §12.1.1).
    const initialInvite = isInvite && !tagOf(stx.to);
    let reliable = false;
    if (isInvite && status > 100 && status < 200) {
      const req = appHeader(m, 'require');
      if (req && hasOptionTag([req], '100rel')) {
        if (!stx.supports100rel) { app.send(nokPayload(msgId, 'Remote endpoint does not support 100rel')); return; }
        reliable = true;
      }
    }
    // To-tag: first tagged response fixes it (app's own tag honoured on the first one).
    if (status > 100 && stx.toTag === undefined) {
      const appTag = (isInvite || stx.method === 'SUBSCRIBE') ? tagOf(appHeader(m, 'to')) : undefined;
      stx.toTag = appTag && leaderSafe(appTag) ? appTag : randomToken();
    }
    const out = new OutMessage();
    for (const v of stx.vias) out.add('via', v);
    const initialSubscribe = stx.method === 'SUBSCRIBE' && !tagOf(stx.to);
    if ((initialInvite || initialSubscribe) && status > 100 && status < 300) for (const r of stx.recordRoute) out.add('record-route', r);
    out.add('from', stx.from);
    out.add('to', tagOf(stx.to) || status === 100 ? stx.to : `${stx.to};tag=${stx.toTag}`);
    out.add('call-id', stx.callId);
    out.add('cseq', stx.cseq);
    const appContact = appHeader(m, 'contact');
    const listener = this.listenerFor(stx.source.protocol, stx.local) ?? this.listeners[0]!;
    const wantsContact = (isInvite || stx.method === 'SUBSCRIBE') && ((status >= 200 && status < 300) || reliable || (!initialInvite && status >= 200));
    if (!appContact && wantsContact) out.add('contact', this.contactFor(listener));
    let rseq = 0;
    if (reliable) {
      rseq = this.nextRseq(stx);
      out.add('rseq', String(rseq));
    }
    this.addAppHeaders(out, m, CORE_OWNED);
    if (ct.value) out.add('content-type', ct.value);
    const bytes = out.render(`SIP/2.0 ${status} ${m.reason}`, m.body);

    // Dialog bookkeeping before sending, so that a fast ACK/PRACK finds it.
    if (initialInvite && status > 100 && status < 300 && !stx.dialog) {
      const c = stx.contact;
      const d = new Dialog({
        role: 'uas', callId: stx.callId, localTag: stx.toTag!, remoteTag: tagOf(stx.from) ?? '', creatorFromTag: tagOf(stx.from) ?? '',
        localParty: `${stx.to};tag=${stx.toTag}`, remoteParty: stx.from, remoteTarget: c ? uriOf(splitCommas(c)[0] ?? c) : '',
        // Our CSeq space starts at the INVITE's number, as drachtio-server's stack does (trace 03 #51).
        localSeq: cseqParts(stx.cseq)?.num ?? 1, protocol: stx.source.protocol, address: stx.source.address, port: stx.source.port,
        connectionId: stx.connectionId, localKey: this.listenerKey(listener), appId: app.id, inviteTxnId: stx.txnId,
      });
      d.routeSet = [...stx.recordRoute];
      d.remoteSeq = cseqParts(stx.cseq)?.num ?? 0;
      d.rseq = rseq;
      stx.dialog = d;
      stx.dialogId = d.id;
      this.dialogs.add(d);
    }

    if (status >= 200) this.stxById.delete(stx.txnId);
    // The echo goes out at once, before anything the network answers to this response (an ACK,
    // a BYE) can be framed: drachtio-srf builds the dialog from it (spec §8).
    const target = stx.txn.target;
    if (target.connectionId !== undefined && this.transport.hasConnection && !this.transport.hasConnection(target.connectionId)) {
      app.send(nokPayload(msgId, 'transport for response has been shutdown or closed'));
    } else {
      app.send(responseSentPayload(msgId, {
        bytes: bytes.length, protocol: isInvite ? stx.source.protocol : '', address: stx.source.address, port: stx.source.port,
        txnId: stx.txnId, dialogId: stx.dialogId,
      }, bytes.toString('utf8')));
    }
    stx.txn.respondRaw(status, bytes);

    const d = stx.dialog;
    if (status > 100 && status < 200) {
      if (reliable && d) this.startReliable(d, stx, bytes, rseq);
      return;
    }
    if (status >= 200 && status < 300) {
      if (isInvite && d) {
        d.state = 'confirmed';
        this.cancelReliable(d.id);
        this.startPendingAck(d, stx, bytes, target);
        if (this.cdrs) this.emitCdr('start', 'application', 'uas', bytes.toString('utf8'));
      }
      return;
    }
    // Non-2xx final: the layer retransmits it until the ACK (Timer G/H).
    if (isInvite && d && initialInvite) { this.destroyDialog(d); stx.dialog = undefined; }
    if (isInvite && this.cdrs && initialInvite) this.emitCdr('stop', 'application', 'call-rejected', bytes.toString('utf8'));
  }

  private nextRseq(stx: ServerCtx): number {
    const d = stx.dialog;
    if (d && d.rseq > 0) return ++d.rseq;
    return 1 + Math.floor(Math.random() * 0x7fffffff);
  }

  /** Retransmit a reliable provisional until PRACKed (RFC 3262 §3), over UDP only. */
  private startReliable(d: Dialog, stx: ServerCtx, bytes: Buffer, rseq: number): void {
    this.cancelReliable(d.id);
    d.rseq = rseq;
    if (stx.source.protocol !== 'udp') return;
    const target = stx.txn.target;
    const retransmitter = new TwoXxRetransmitter({
      clock: this.clock, T1,
      retransmit: () => this.countSend(this.transport.send(target, bytes)),
      giveUp: () => { if (this.pendingReliable.get(d.id)?.retransmitter === retransmitter) this.pendingReliable.delete(d.id); },
    });
    this.pendingReliable.set(d.id, { retransmitter, rseq });
    retransmitter.start();
  }

  /** 2xx retransmission until ACK (RFC 3261 §13.3.1.4, over UDP); after 64*T1: BYE + unsolicited BYE frame. */
  private startPendingAck(d: Dialog, stx: ServerCtx, bytes: Buffer, target: SendTarget): void {
    const retransmitter = new TwoXxRetransmitter({
      clock: this.clock, T1, noRetransmit: target.protocol !== 'udp',
      retransmit: () => this.countSend(this.transport.send(target, bytes)),
      giveUp: () => {
        if (this.pendingAcks.get(d.id)?.retransmitter !== retransmitter) return;
        this.pendingAcks.delete(d.id);
        this.sendByeOnOwn(d, 'SIP;cause=200;text="ACK timeout"', this.apps.get(d.appId));
      },
    });
    this.pendingAcks.set(d.id, { retransmitter, txnId: stx.txnId });
    retransmitter.start();
  }

  /** BYE the server sends by itself, plus the unsolicited BYE frame for the app (spec §7.10). */
  private sendByeOnOwn(d: Dialog, reason: string, app: AppConnection | undefined): void {
    const built = this.buildInDialog(d, 'BYE', undefined, [['reason', reason, 'Reason']], EMPTY);
    this.destroyDialog(d);
    if (!built) return;
    this.startClientTxn({ app, txnId: newId(), built, d, method: 'BYE', inDialog: true, silent: true });
    const l = built.local;
    this.sendToApp(app, sipFramePayload({
      source: 'application', bytes: built.bytes.length, protocol: l.protocol, address: l.address, port: l.port,
      time: stackTime(this.clock.now()), txnId: 'unsolicited', dialogId: d.id,
    }, built.bytes.toString('utf8')));
  }

  // form (b): a request inside a dialog
  private appInDialog(app: AppConnection, msgId: string, dialogId: string, m: AppMessage): void {
    const d = this.dialogs.get(dialogId);
    if (!d) {
      if (m.method === 'ACK' && this.failedInvites.has(dialogId)) {
        app.send(nokPayload(msgId, 'Server error: ACK for non-success final response is automatically generated by server'));
      } else {
        app.send(nokPayload(msgId, 'Server error: unable to find dialog for dialog id provided'));
      }
      return;
    }
    const ct = this.contentType(m);
    if (!ct.ok) { app.send(nokPayload(msgId, 'Server error: missing content-type')); return; }
    const method = m.method;
    const extra: Array<[string, string, string]> = [];
    for (const h of m.headers) {
      if (APP_FORBIDDEN.has(h.name) || CORE_OWNED.has(h.name) || h.name === 'content-type' || h.name === 'max-forwards') continue;
      extra.push([h.name, h.value, h.raw]);
    }
    if (ct.value) extra.push(['content-type', ct.value, 'Content-Type']);
    const uri = m.uri === 'sip:placeholder' || method === 'ACK' ? undefined : m.uri;
    let seq: number | undefined;
    const inv = method === 'ACK' ? this.findInviteCtx(d) : undefined;
    if (method === 'ACK') {
      seq = d.inviteSeq;
      if (inv && inv.txn.state === 'Completed') {
        app.send(nokPayload(msgId, 'ACK for non-success responses is automatically generated by the stack'));
        return;
      }
    }
    const built = this.buildInDialog(d, method, uri, extra, m.body, seq);
    if (!built) { app.send(nokPayload(msgId, 'Server error: unable to find dialog for dialog id provided')); return; }
    if (method === 'INVITE') d.inviteSeq = built.seq;
    const txnId = newId();
    if (method === 'BYE') {
      // Our BYE ends the dialog for every later request; its response still carries the id.
      this.dialogs.remove(d);
      const p = this.pendingAcks.get(d.id);
      if (p) { p.retransmitter.stop(); this.pendingAcks.delete(d.id); }
      this.cancelReliable(d.id);
    }
    if (method === 'ACK') {
      // ACK for a 2xx is not a transaction; remember it to answer 2xx retransmissions (spec §7.7).
      if (inv) (inv.acks ??= new Map()).set(d.remoteTag, { bytes: built.bytes, target: built.target });
      app.send(requestSentPayload(msgId, this.echoMeta(built.local, built.target, built.bytes.length, txnId), built.bytes.toString('utf8')));
      this.countSend(this.transport.send(built.target, built.bytes));
      // The app had CANCELed this INVITE but the 2xx won the race: release the call now (spec §7.8).
      if (inv?.canceled) this.sendByeOnOwn(d, 'SIP ;cause=200 ;text="ACK-BYE due to cancel race condition"', app);
      return;
    }
    this.startClientTxn({ app, txnId, built, d, method, inDialog: true, msgId, silent: false });
  }

  private findInviteCtx(d: Dialog): ClientCtx | undefined {
    const c = this.inviteCtxByDialog.get(d.id);
    return c && c.cseqNum === d.inviteSeq ? c : undefined;
  }

  /** Echo meta (spec §4.5): over UDP our own address, over TCP/TLS the remote end. */
  private echoMeta(local: Listener, target: SendTarget, bytes: number, txnId: string): { bytes: number; protocol: string; address: string; port: number; txnId: string } {
    if (target.protocol === 'udp') return { bytes, protocol: 'udp', address: local.address, port: local.port, txnId };
    return { bytes, protocol: target.protocol, address: target.address, port: target.port, txnId };
  }

  /** Build a request inside a dialog (RFC 3261 §12.2.1.1 with route set and loose routing). */
  private buildInDialog(d: Dialog, method: string, uri: string | undefined, extra: Array<[string, string, string]>, body: Buffer, seq?: number): Built | undefined {
    const local = this.listenerByKey(d.localKey) ?? this.listenerFor(d.protocol);
    if (!local) return undefined;
    let requestUri = uri ?? d.remoteTarget;
    const routes = [...d.routeSet];
    let next = requestUri;
    if (routes.length > 0) {
      const first = uriOf(routes[0]!);
      const fu = parseLiteUri(first);
      if (fu && fu.params.has('lr')) {
        next = first;
      } else {
        // Strict router: it becomes the request-URI, the remote target the last Route.
        routes.shift();
        routes.push(`<${requestUri}>`);
        requestUri = first;
        next = first;
      }
    }
    const nu = parseLiteUri(next);
    const from = { address: local.address, port: local.port };
    let target: SendTarget = { protocol: d.protocol, address: d.address, port: d.port, connectionId: d.connectionId, local: from };
    if (nu && isIP(nu.host.replace(/^\[|\]$/g, ''))) {
      const proto = this.protocolOf(nu);
      const port = nu.port ?? (proto === 'tls' ? 5061 : 5060);
      const host = nu.host.replace(/^\[|\]$/g, '');
      target = { protocol: proto, address: host, port, connectionId: proto === d.protocol && proto !== 'udp' ? d.connectionId : undefined, local: from };
    }
    const topVia = this.viaFor(local, `z9hG4bK${randomToken()}`);
    const cseqNum = seq ?? ++d.localSeq;
    const out = new OutMessage();
    out.add('via', topVia);
    for (const r of routes) out.add('route', r);
    out.add('max-forwards', '70');
    out.add('from', d.localParty);
    out.add('to', d.remoteParty);
    out.add('call-id', d.callId);
    out.add('cseq', `${cseqNum} ${method}`);
    let hasContact = false;
    for (const [n, v, raw] of extra) { if (n === 'contact') hasContact = true; out.add(n, v, raw); }
    if (!hasContact && (method === 'INVITE' || method === 'SUBSCRIBE' || method === 'REFER')) out.add('contact', this.contactFor(local));
    const bytes = out.render(`${method} ${requestUri} SIP/2.0`, body);
    return { bytes, request: out.asRequest(method, requestUri, body), target, local, seq: cseqNum, topVia, routes, requestUri };
  }

  private protocolOf(u: LiteUri): Protocol {
    const t = u.params.get('transport')?.toLowerCase();
    if (t === 'tcp') return 'tcp';
    if (t === 'tls') return 'tls';
    if (t === 'udp') return 'udp';
    return u.scheme === 'sips' ? 'tls' : 'udp';
  }

  /**
   * Hand a request to the transaction layer and echo it to the app at once (drachtio-server
   * echoes as soon as the stack took the message, so the echo always precedes any response).
   * A failed send reaches the app as the made-up 503 of spec §7.10, after the echo (trace 04
   * #19–#20), through transportError().
   */
  private startClientTxn(o: {
    app: AppConnection | undefined; txnId: string; d: Dialog | undefined; method: string; inDialog: boolean; msgId?: string; silent: boolean;
    built: Built; from?: string; to?: string; callId?: string; dialogId?: string;
  }): void {
    const { built, d } = o;
    let txn: ClientTransaction;
    try {
      txn = this.layer.sendRequest(built.request, built.target, built.bytes);
    } catch (err) {
      if (o.msgId) o.app?.send(nokPayload(o.msgId, `Server error: ${(err as Error).message}`));
      return;
    }
    const ctx: ClientCtx = {
      txn, txnId: o.txnId, method: o.method, app: o.app, silent: o.silent, local: built.local,
      requestUri: built.requestUri, topVia: built.topVia, from: o.from ?? d?.localParty ?? '', to: o.to ?? d?.remoteParty ?? '',
      callId: o.callId ?? d?.callId ?? '', cseqNum: built.seq, routes: built.routes, dialogId: o.dialogId ?? d?.id ?? '', dialog: d,
      inDialog: o.inDialog, canceled: false, acks: undefined,
    };
    txn.appData = ctx;
    this.ctxById.set(ctx.txnId, ctx);
    if (o.method === 'INVITE') this.inviteCtxByDialog.set(ctx.dialogId, ctx);
    if (o.msgId) o.app?.send(requestSentPayload(o.msgId, this.echoMeta(built.local, built.target, built.bytes.length, o.txnId), built.bytes.toString('utf8')));
  }

  private madeUpFailure(ctx: ClientCtx, status: number): void {
    if (ctx.method === 'ACK' || ctx.method === 'CANCEL') return;
    const m = new OutMessage();
    m.add('via', ctx.topVia);
    m.add('from', ctx.from);
    // drachtio-server writes the made-up To without brackets (trace 04 #20, #23).
    let toUri = ctx.to;
    if (!tagOf(toUri)) {
      const gt = toUri.indexOf('>');
      if (toUri.startsWith('<') && gt > 0) toUri = toUri.slice(1, gt) + toUri.slice(gt + 1);
      toUri = `${toUri};tag=${randomToken()}`;
    }
    m.add('to', toUri);
    m.add('call-id', ctx.callId);
    m.add('cseq', `${ctx.cseqNum} ${ctx.method}`);
    const text = m.render(`SIP/2.0 ${status} ${REASONS[status]}`, EMPTY).toString('utf8');
    this.sendToApp(ctx.app, sipFramePayload({
      source: 'network', bytes: 0, protocol: ctx.txn.target.protocol, address: '', port: 0, time: stackTime(this.clock.now()),
      txnId: ctx.txnId, dialogId: ctx.dialogId,
    }, text));
  }

  // form (c): the app CANCELs its INVITE
  private appCancel(app: AppConnection, msgId: string, txnId: string, m: AppMessage): void {
    const inv = this.ctxById.get(txnId);
    if (m.method !== 'CANCEL') {
      app.send(nokPayload(msgId, `only CANCEL may name a transaction id without a dialog id, not ${m.method}`));
      return;
    }
    if (inv && inv.method === 'INVITE' && !inv.canceled && !inv.inDialog && inv.txn.state === 'Accepted' && inv.acks === undefined) {
      // The 2xx is already here but the app has not seen it (spec §7.8 race): the call is
      // released with BYE as soon as the app ACKs that 2xx.
      inv.canceled = true;
      app.send(nokPayload(msgId, 'INVITE already answered: the dialog is released when its 2xx is ACKed'));
      return;
    }
    if (!inv || inv.method !== 'INVITE' || inv.canceled || (inv.txn.state !== 'Calling' && inv.txn.state !== 'Proceeding')) {
      app.send(nokPayload(msgId, `unable to cancel unknown transaction id: ${txnId}`));
      return;
    }
    inv.canceled = true;
    // RFC 3261 §9.1: same Request-URI, Call-ID, From, To (no tag), CSeq number, top Via, Route.
    const out = new OutMessage();
    out.add('via', inv.topVia);
    for (const r of inv.routes) out.add('route', r);
    out.add('max-forwards', '70');
    out.add('from', inv.from);
    out.add('to', inv.to);
    out.add('call-id', inv.callId);
    out.add('cseq', `${inv.cseqNum} CANCEL`);
    const fixed = new Set([...CORE_OWNED, 'contact', 'p-asserted-identity', 'max-forwards']);
    this.addAppHeaders(out, m, fixed);
    const bytes = out.render(`CANCEL ${inv.requestUri} SIP/2.0`, EMPTY);
    // The CANCEL follows the INVITE's connection (RFC 3261 §9.1: same destination).
    const target = inv.txn.sendTarget;
    this.startClientTxn({
      app, txnId: newId(), d: undefined, method: 'CANCEL', inDialog: false, msgId, silent: true,
      built: { bytes, request: out.asRequest('CANCEL', inv.requestUri, EMPTY), target, local: inv.local, seq: inv.cseqNum, topVia: inv.topVia, routes: inv.routes, requestUri: inv.requestUri },
      from: inv.from, to: inv.to, callId: inv.callId, dialogId: '',
    });
  }

  // form (d): a new request outside any dialog
  private async appNewRequest(app: AppConnection, msgId: string, m: AppMessage, routeUrl: string): Promise<void> {
    const method = m.method;
    const ruri = parseLiteUri(m.uri);
    if (!ruri) {
      if (!/^(sips?|tel):/i.test(m.uri)) { app.send(nokPayload(msgId, `invalid request-uri: ${method} ${m.uri} SIP/2.0`)); return; }
    }
    const nextHop = routeUrl ? parseLiteUri(routeUrl) : ruri;
    if (!nextHop) { app.send(nokPayload(msgId, `invalid request-uri: ${method} ${m.uri} SIP/2.0`)); return; }
    const protocol = this.protocolOf(nextHop);
    // The app may name the listener to send from (peergate's B2BUA: the one on the target's side).
    const egress = appHeader(m, EGRESS_HEADER);
    const local = (egress && this.listeners.find((l) => l.protocol === protocol && `${l.address}:${l.port}` === egress.trim())) || this.listenerFor(protocol);
    if (!local) { app.send(nokPayload(msgId, 'requested protocol/transport not available')); return; }
    const ct = this.contentType(m);
    if (!ct.ok) { app.send(nokPayload(msgId, 'missing content-type')); return; }
    let host = nextHop.host.replace(/^\[|\]$/g, '');
    const port = nextHop.port ?? (protocol === 'tls' ? 5061 : 5060);
    if (!isIP(host)) {
      try { host = (await lookup(host, { family: 4 })).address; } catch {
        app.send(nokPayload(msgId, `unable to resolve ${nextHop.host}`));
        return;
      }
    }
    if (this.listeners.some((l) => l.address === host && l.port === port)) {
      app.send(nokPayload(msgId, 'can not send request to myself'));
      return;
    }
    const hp = this.hostPort(local);
    // From: the app's with `localhost` replaced by our host:port, else our own URI; always a tag.
    let from = appHeader(m, 'from');
    if (from) {
      from = from.replace(/@localhost(:\d+)?(?=[>;]|$)/i, `@${hp}`);
      if (!from.includes('<')) {
        const semi = from.indexOf(';');
        from = semi < 0 ? `<${from.trim()}>` : `<${from.slice(0, semi).trim()}>${from.slice(semi)}`;
      }
    } else {
      from = local.protocol === 'udp' ? `<sip:${hp}>` : local.protocol === 'tcp' ? `<sip:${hp};transport=tcp>` : `<sips:${hp};transport=tls>`;
    }
    if (!tagOf(from)) from = `${from};tag=${randomToken()}`;
    let to = appHeader(m, 'to');
    if (!to) {
      // URI parameters land outside the brackets, as drachtio-server writes it (trace 04 #22).
      const semi = m.uri.indexOf(';');
      to = semi < 0 ? `<${m.uri}>` : `<${m.uri.slice(0, semi)}>${m.uri.slice(semi)}`;
    }
    const callId = appHeader(m, 'call-id') ?? newId();
    const appCseq = cseqParts(appHeader(m, 'cseq'));
    const cseqNum = appCseq ? appCseq.num : ++this.cseqCounter;
    const maxFwd = appHeader(m, 'max-forwards') ?? '70';
    if (!leaderSafe(callId) || !leaderSafe(tagOf(from) ?? '')) { app.send(nokPayload(msgId, 'invalid Call-ID or From tag')); return; }
    const dialogId = method === 'INVITE' ? `${callId};from-tag=${tagOf(from)}` : '';
    // Dialog ids must stay unique: an INVITE still pending with the same Call-ID and From tag.
    if (dialogId && this.inviteCtxByDialog.has(dialogId)) {
      app.send(nokPayload(msgId, `Call-ID and From tag already in use by dialog ${dialogId}`));
      return;
    }
    const topVia = this.viaFor(local, `z9hG4bK${randomToken()}`);
    const out = new OutMessage();
    out.add('via', topVia);
    out.add('max-forwards', maxFwd);
    out.add('from', from);
    out.add('to', to);
    out.add('call-id', callId);
    out.add('cseq', `${cseqNum} ${method}`);
    if (!appHeader(m, 'contact') && (method === 'INVITE' || method === 'SUBSCRIBE')) out.add('contact', this.contactFor(local));
    this.addAppHeaders(out, m, new Set([...CORE_OWNED, 'max-forwards']));
    if (ct.value) out.add('content-type', ct.value);
    const bytes = out.render(`${method} ${m.uri} SIP/2.0`, m.body);
    const target: SendTarget = { protocol, address: host, port, local: { address: local.address, port: local.port } };
    this.startClientTxn({
      app, txnId: newId(), d: undefined, method, inDialog: false, msgId, silent: false,
      built: { bytes, request: out.asRequest(method, m.uri, m.body), target, local, seq: cseqNum, topVia, routes: [], requestUri: m.uri },
      from, to, callId, dialogId,
    });
  }
}

export { TLS_IDENTITY_HEADER, headerParam };
