// The UA core behind the drachtio wire protocol (spec §7): it turns network requests into
// `sip` frames for apps, completes the partial messages apps send (§7.4–§7.6), keeps the
// transaction and dialog state drachtio-server keeps, and answers what the server answers
// by itself (100, 481, 487, 503 …). Transactions follow RFC 3261 §17 with timers A–K.
import type { HeaderField, ParseResult, SipMessage, SipRequest, SipResponse } from '../message/types.js';
import type { Clock, Endpoint, InboundPacket, Protocol, SendResult, SendTarget } from '../transport/types.js';
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

export const T1 = 500;
export const T2 = 4000;
export const T4 = 5000;
/** How long the server waits for an app to answer a new request (spec §7.10). */
export const APP_ANSWER_MS = 64_000;

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

/** Server transaction: a request from the network (RFC 3261 §17.2) plus drachtio bookkeeping. */
interface ServerTxn {
  txnId: string;
  key: string;
  method: string;
  app: AppConnection | undefined;
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
  state: 'proceeding' | 'completed' | 'accepted' | 'terminated';
  lastResponse: Buffer | undefined;
  finalStatus: number;
  timer: unknown;
  retrans: unknown;
  interval: number;
  canceled: boolean;
  /** The text passed to the app (for cdr). */
  inviteText?: string;
}

/** Client transaction: a request an app sent (RFC 3261 §17.1). */
interface ClientTxn {
  txnId: string;
  key: string;
  branch: string;
  method: string;
  /** Undefined for requests the server sends on its own (e.g. the ACK-timeout BYE). */
  app: AppConnection | undefined;
  target: SendTarget;
  local: Listener;
  bytes: Buffer;
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
  state: 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';
  timer: unknown;
  retrans: unknown;
  interval: number;
  echoed: boolean;
  queued: string[];
  /** For an INVITE: the app CANCELed it (spec §7.8). */
  canceled: boolean;
  ackBytes: Buffer | undefined;
  /** To-tags of reliable provisionals already passed up, with their RSeq. */
  rseqSeen: Set<string> | undefined;
  /** Whether the 2xx has been passed up once (further copies are absorbed or re-ACKed). */
  twoXxSeen: string | undefined;
}

/** Per-dialog transient state kept outside Dialog to keep established dialogs small. */
interface PendingAck { bytes: Buffer; timer: unknown; interval: number; started: number; txnId: string; target: SendTarget }
interface PendingReliable { bytes: Buffer; rseq: number; timer: unknown; interval: number; started: number; target: SendTarget }

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

export class UaCore implements WireHandler {
  private readonly onMalformed: UaCoreOptions['onMalformed'];
  readonly dialogs = new DialogStore();
  readonly counters: CoreCounters = {
    requestsIn: 0, responsesIn: 0, parseErrors: 0, badRequests: 0, retransmissionsAbsorbed: 0,
    forgedResponses: 0, unroutedRequests: 0, framesToApps: 0, sendFailures: 0, clientTimeouts: 0,
  };
  private readonly stxByKey = new Map<string, ServerTxn>();
  private readonly stxById = new Map<string, ServerTxn>();
  private readonly ctxByKey = new Map<string, ClientTxn>();
  private readonly ctxById = new Map<string, ClientTxn>();
  private readonly pendingAcks = new Map<string, PendingAck>();
  private readonly pendingReliable = new Map<string, PendingReliable>();
  /** Dialog ids of app INVITEs that failed: an ACK from the app for them gets the spec's NOK. */
  private readonly failedInvites = new Map<string, number>();
  private readonly apps = new Map<number, AppConnection>();
  /** The latest INVITE client transaction of each dialog id (its ACK is re-sent on 2xx copies). */
  private readonly inviteCtxByDialog = new Map<string, ClientTxn>();
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
    opts.wire.setHandler(this);
  }

  /** Stop every timer (engine shutdown). */
  close(): void {
    this.closed = true;
    for (const t of this.stxByKey.values()) this.clearStx(t);
    for (const t of this.ctxByKey.values()) this.clearCtx(t);
    for (const p of this.pendingAcks.values()) this.clock.clearTimeout(p.timer);
    for (const p of this.pendingReliable.values()) this.clock.clearTimeout(p.timer);
  }

  stats(): { dialogs: number; serverTransactions: number; clientTransactions: number } {
    return { dialogs: this.dialogs.size, serverTransactions: this.stxByKey.size, clientTransactions: this.ctxByKey.size };
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
    this.counters.framesToApps++;
    app.send(payload);
  }

  private clearStx(t: ServerTxn): void {
    if (t.timer !== undefined) { this.clock.clearTimeout(t.timer); t.timer = undefined; }
    if (t.retrans !== undefined) { this.clock.clearTimeout(t.retrans); t.retrans = undefined; }
  }

  private clearCtx(t: ClientTxn): void {
    if (t.timer !== undefined) { this.clock.clearTimeout(t.timer); t.timer = undefined; }
    if (t.retrans !== undefined) { this.clock.clearTimeout(t.retrans); t.retrans = undefined; }
  }

  private dropStx(t: ServerTxn): void {
    this.clearStx(t);
    t.state = 'terminated';
    if (this.stxByKey.get(t.key) === t) this.stxByKey.delete(t.key);
    if (this.stxById.get(t.txnId) === t) this.stxById.delete(t.txnId);
  }

  private dropCtx(t: ClientTxn): void {
    this.clearCtx(t);
    t.state = 'terminated';
    if (this.ctxByKey.get(t.key) === t) this.ctxByKey.delete(t.key);
    if (this.ctxById.get(t.txnId) === t) this.ctxById.delete(t.txnId);
    if (t.method === 'INVITE' && this.inviteCtxByDialog.get(t.dialogId) === t) this.inviteCtxByDialog.delete(t.dialogId);
  }

  private emitCdr(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', extra: string | undefined, sip: string): void {
    if (!this.cdrs) return;
    const app = this.wire.pickApp(`cdr:${kind}`);
    if (app) this.sendToApp(app, cdrPayload(kind, source, extra, sip));
  }

  // ------------------------------------------------------------------ network side

  /** Entry point for every packet the transport layer accepted. */
  onPacket(pkt: InboundPacket): void {
    if (this.closed) return;
    const res = this.parse(pkt.data);
    if (!res.ok) {
      this.counters.parseErrors++;
      this.onMalformed?.(pkt.source, res.error);
      // Invalid requests get 400 when a response can be routed back; responses are dropped.
      if (res.kind === 'request') this.replyStateless(pkt, res.headers, res.status || 400, res.status === 400 || !res.status ? 'Bad Request' : res.error);
      return;
    }
    if (res.message.kind === 'request') this.onRequest(pkt, res.message);
    else this.onResponse(pkt, res.message);
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
    this.counters.badRequests++;
    const m = new OutMessage();
    for (const v of vias) m.add('via', v);
    if (from) m.add('from', from);
    if (to) m.add('to', tagOf(to) ? to : `${to};tag=${randomToken()}`);
    if (callId) m.add('call-id', callId);
    if (cseq) m.add('cseq', cseq);
    const safeReason = reason.replace(/[\r\n]/g, ' ').slice(0, 120);
    void this.transport.send(this.replyTarget(pkt), m.render(`SIP/2.0 ${status} ${safeReason}`, Buffer.alloc(0)));
  }

  private replyTarget(pkt: InboundPacket): SendTarget {
    return { protocol: pkt.source.protocol, address: pkt.source.address, port: pkt.source.port, connectionId: pkt.connectionId, local: pkt.local };
  }

  private onRequest(pkt: InboundPacket, req: SipRequest): void {
    this.counters.requestsIn++;
    const vias = hdrAll(req, 'via');
    const from = hdr(req, 'from');
    const to = hdr(req, 'to');
    const callId = hdr(req, 'call-id');
    const cseqV = hdr(req, 'cseq');
    const cseq = cseqParts(cseqV);
    const top = vias[0] ? parseViaValue(vias[0]) : undefined;
    const fromTag = tagOf(from);
    if (!top || !from || !to || !callId || !cseq || cseq.method !== req.method || !leaderSafe(callId)
      || (fromTag !== undefined && !leaderSafe(fromTag)) || !leaderSafe(req.uri)) {
      this.replyStateless(pkt, req.headers, 400, 'Bad Request');
      return;
    }
    const toTag = tagOf(to);
    if (toTag !== undefined && !leaderSafe(toTag)) { this.replyStateless(pkt, req.headers, 400, 'Bad Request'); return; }
    const method = req.method;
    const branch = top.branch ?? '';
    const sentBy = `${top.host}:${top.port ?? ''}`;
    // RFC 3261 §17.2.3 matching; pre-3261 branches fall back to Call-ID/CSeq/From-tag.
    const base = branch.startsWith('z9hG4bK') ? `${branch}\n${sentBy}` : `${callId}\n${cseq.num}\n${fromTag ?? ''}\n${sentBy}`;
    const key = `${base}\n${method === 'ACK' ? 'INVITE' : method}`;

    const existing = this.stxByKey.get(key);
    if (existing) {
      if (method === 'ACK') {
        // ACK for a non-2xx final: absorbed (spec §7.7); it ends Timer G retransmissions.
        if (existing.state === 'completed') {
          this.clearStx(existing);
          existing.state = 'terminated';
          // Timer I: keep absorbing ACK copies for T4 on unreliable transports.
          existing.timer = this.clock.setTimeout(() => this.dropStx(existing), existing.source.protocol === 'udp' ? T4 : 0);
          return;
        }
        if (existing.state === 'terminated') return;
        // An ACK with the INVITE's branch for a 2xx falls through to dialog handling.
      } else {
        this.counters.retransmissionsAbsorbed++;
        if (existing.lastResponse && existing.state !== 'accepted') void this.transport.send(this.replyTargetOf(existing), existing.lastResponse);
        return;
      }
    }

    const rw = rewriteInbound(pkt.data.toString('utf8'), pkt.source.address, pkt.source.port, top.host,
      pkt.tls ? identityHeaderValue(pkt.tls) : undefined);
    if (!rw) { this.replyStateless(pkt, req.headers, 400, 'Bad Request'); return; }
    const stampedVias = [rw.topVia, ...vias.slice(1)];

    if (method === 'ACK') { this.onAck(pkt, req, rw.text, callId, toTag); return; }
    if (method === 'CANCEL') { this.onCancel(pkt, rw.text, `${base}\nINVITE`, stampedVias, from, to, callId, cseqV!); return; }

    const stx: ServerTxn = {
      txnId: newId(), key, method, app: undefined, vias: stampedVias, from, to, callId, cseq: cseqV!,
      recordRoute: hdrAll(req, 'record-route'), contact: hdr(req, 'contact'),
      supports100rel: hasOptionTag([...hdrAll(req, 'supported'), ...hdrAll(req, 'require')], '100rel'),
      source: pkt.source, connectionId: pkt.connectionId, local: pkt.local, bytes: pkt.data.length,
      toTag, dialogId: '', dialog: undefined, state: 'proceeding', lastResponse: undefined, finalStatus: 0,
      timer: undefined, retrans: undefined, interval: T1, canceled: false,
    };

    if (toTag !== undefined) {
      // Inside a dialog (RFC 3261 §12.2.2).
      if (method === 'INVITE') this.respond(stx, 100);
      const d = this.dialogs.findByLocal(callId, toTag);
      const app = d ? this.apps.get(d.appId) : undefined;
      if (!d || !app || app.closed) {
        if (d && method === 'BYE') this.destroyDialog(d);
        this.respond(stx, 481);
        this.finishStx(stx);
        return;
      }
      stx.app = app;
      stx.dialog = d;
      stx.dialogId = d.id;
      if (method === 'INVITE' || method === 'UPDATE' || method === 'SUBSCRIBE' || method === 'NOTIFY' || method === 'REFER') {
        const c = stx.contact;
        if (c) d.remoteTarget = uriOf(splitCommas(c)[0] ?? c);
      }
      if (cseq.num > d.remoteSeq) d.remoteSeq = cseq.num;
      if (method === 'PRACK') this.onPrack(d, req);
      this.track(stx);
      // An in-dialog request the app never answers is dropped after 64*T1 (spec §7.10).
      stx.timer = this.clock.setTimeout(() => { if (stx.state === 'proceeding') this.dropStx(stx); }, 64 * T1);
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
      if (method === 'BYE' || method === 'UPDATE') { this.respond(stx, 481); this.finishStx(stx); }
      // REFER, PRACK, … outside a dialog: no response at all (trace 02 #20).
      return;
    }
    if (method === 'INVITE') {
      this.respond(stx, 100);
      // A late copy of an INVITE whose dialog already exists (spec §7.1).
      const d = fromTag ? this.dialogs.get(`${callId};from-tag=${fromTag}`) : undefined;
      if (d && d.role === 'uas' && d.state === 'confirmed') { this.respond(stx, 491); this.finishStx(stx); return; }
    }
    if (this.cdrs && method === 'INVITE') this.emitCdr('attempt', 'network', undefined, rw.text);
    const app = this.wire.pickApp(method);
    if (!app) {
      this.counters.unroutedRequests++;
      const resp = this.respond(stx, 503);
      if (this.cdrs && method === 'INVITE' && resp) this.emitCdr('stop', 'application', 'call-rejected', resp.toString('utf8'));
      this.finishStx(stx);
      return;
    }
    stx.app = app;
    this.apps.set(app.id, app);
    if (this.cdrs && method === 'INVITE') stx.inviteText = rw.text;
    this.track(stx);
    // The app has 64 s to answer; then the request is forgotten silently (spec §7.10).
    stx.timer = this.clock.setTimeout(() => { if (stx.state === 'proceeding') this.dropStx(stx); }, APP_ANSWER_MS);
    this.sendToApp(app, sipFramePayload({
      source: 'network', bytes: stx.bytes, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.clock.now()), txnId: stx.txnId, dialogId: '',
      receivedOn: { address: pkt.local.address, port: pkt.local.port },
    }, rw.text));
  }

  private track(stx: ServerTxn): void {
    this.stxByKey.set(stx.key, stx);
    this.stxById.set(stx.txnId, stx);
  }

  private replyTargetOf(stx: ServerTxn): SendTarget {
    // Responses go to the source address and port (rport is always stamped), on the same connection.
    return { protocol: stx.source.protocol, address: stx.source.address, port: stx.source.port, connectionId: stx.connectionId, local: stx.local };
  }

  /** Send a response the server makes up itself (100, 481, 487, 503 …). Returns the bytes. */
  private respond(stx: ServerTxn, status: number, toTag?: string): Buffer | undefined {
    const m = new OutMessage();
    for (const v of stx.vias) m.add('via', v);
    m.add('from', stx.from);
    let to = stx.to;
    if (status > 100 && !tagOf(to)) to = `${to};tag=${toTag ?? stx.toTag ?? randomToken()}`;
    m.add('to', to);
    m.add('call-id', stx.callId);
    m.add('cseq', stx.cseq);
    const bytes = m.render(`SIP/2.0 ${status} ${REASONS[status] ?? 'Unknown'}`, Buffer.alloc(0));
    void this.transport.send(this.replyTargetOf(stx), bytes);
    if (status >= 200) { stx.lastResponse = bytes; stx.finalStatus = status; }
    return bytes;
  }

  /** After a final response the server sent itself: keep absorbing retransmissions a while. */
  private finishStx(stx: ServerTxn): void {
    this.clearStx(stx);
    if (this.stxById.get(stx.txnId) === stx) this.stxById.delete(stx.txnId);
    const udp = stx.source.protocol === 'udp';
    if (stx.method === 'INVITE' && stx.lastResponse && stx.finalStatus >= 300) {
      // Timer G / H: retransmit the non-2xx final until the ACK comes (RFC 3261 §17.2.1).
      stx.state = 'completed';
      this.stxByKey.set(stx.key, stx);
      if (udp) this.scheduleG(stx, T1);
      stx.timer = this.clock.setTimeout(() => this.dropStx(stx), 64 * T1);
      return;
    }
    stx.state = 'completed';
    this.stxByKey.set(stx.key, stx);
    // Timer J: 64*T1 on UDP, immediately on reliable transports.
    stx.timer = this.clock.setTimeout(() => this.dropStx(stx), udp ? 64 * T1 : 0);
  }

  private scheduleG(stx: ServerTxn, interval: number): void {
    stx.retrans = this.clock.setTimeout(() => {
      if (stx.state !== 'completed' || !stx.lastResponse) return;
      void this.transport.send(this.replyTargetOf(stx), stx.lastResponse);
      this.scheduleG(stx, Math.min(interval * 2, T2));
    }, interval);
  }

  private onAck(pkt: InboundPacket, req: SipRequest, text: string, callId: string, toTag: string | undefined): void {
    if (!toTag) return;
    const d = this.dialogs.findByLocal(callId, toTag);
    if (!d) return;
    const pending = this.pendingAcks.get(d.id);
    const cseq = cseqParts(hdr(req, 'cseq'));
    let txnId: string;
    if (pending) {
      this.clock.clearTimeout(pending.timer);
      this.pendingAcks.delete(d.id);
      txnId = pending.txnId;
    } else {
      // A copy of an ACK already delivered is absorbed.
      if (cseq && cseq.num === d.lastAckSeq) { this.counters.retransmissionsAbsorbed++; return; }
      txnId = newId();
    }
    if (cseq) d.lastAckSeq = cseq.num;
    const app = this.apps.get(d.appId);
    this.sendToApp(app, sipFramePayload({
      source: 'network', bytes: pkt.data.length, protocol: '', address: pkt.source.address, port: pkt.source.port,
      time: stackTime(this.clock.now()), txnId, dialogId: d.id,
    }, text));
  }

  private onCancel(pkt: InboundPacket, text: string, inviteKey: string, vias: string[], from: string, to: string, callId: string, cseq: string): void {
    const cancelTxn: ServerTxn = {
      txnId: '', key: '', method: 'CANCEL', app: undefined, vias, from, to, callId, cseq, recordRoute: [], contact: undefined,
      supports100rel: false, source: pkt.source, connectionId: pkt.connectionId, local: pkt.local, bytes: pkt.data.length,
      toTag: undefined, dialogId: '', dialog: undefined, state: 'completed', lastResponse: undefined, finalStatus: 0, timer: undefined,
      retrans: undefined, interval: T1, canceled: false,
    };
    const inv = this.stxByKey.get(inviteKey);
    if (!inv || inv.state !== 'proceeding' || inv.canceled) {
      // Nothing to cancel (spec §7.8).
      this.respond(cancelTxn, 481);
      const d = inv?.state === 'accepted' ? inv.dialog : undefined;
      if (d && this.pendingAcks.has(d.id)) {
        // CANCEL after our 2xx but before its ACK: the caller gave up, so end the call (spec §7.8).
        void this.sendByeOnOwn(d, 'SIP ;cause=200 ;text="CANCEL after 200 OK"', this.apps.get(d.appId));
      }
      return;
    }
    inv.canceled = true;
    const provisional = inv.toTag !== undefined;
    this.respond(cancelTxn, 200, inv.toTag);
    this.respond(inv, 487, inv.toTag);
    const dialogId = inv.dialogId;
    if (inv.dialog) { this.destroyDialog(inv.dialog); inv.dialog = undefined; }
    this.cancelReliable(dialogId);
    // Later responses from the app get NOK (spec §7.8).
    this.stxById.delete(inv.txnId);
    this.finishStx(inv);
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
    this.clock.clearTimeout(p.timer);
    this.pendingReliable.delete(dialogId);
  }

  private destroyDialog(d: Dialog): void {
    this.dialogs.remove(d);
    const p = this.pendingAcks.get(d.id);
    if (p) { this.clock.clearTimeout(p.timer); this.pendingAcks.delete(d.id); }
    this.cancelReliable(d.id);
  }

  // ------------------------------------------------------------------ responses from the network

  private onResponse(pkt: InboundPacket, res: SipResponse): void {
    this.counters.responsesIn++;
    const top = hdrAll(res, 'via')[0];
    const via = top ? parseViaValue(top) : undefined;
    const cseq = cseqParts(hdr(res, 'cseq'));
    if (!via?.branch || !cseq) { this.counters.forgedResponses++; return; }
    const ctx = this.ctxByKey.get(`${via.branch}\n${cseq.method}`);
    if (!ctx) { this.counters.forgedResponses++; return; }
    // Strict matching (RFC 6404 §2.3.2.2): the response must come from where the request went.
    if (ctx.target.protocol === 'udp') {
      if (pkt.source.protocol !== 'udp' || pkt.source.address !== ctx.target.address || pkt.source.port !== ctx.target.port) {
        this.counters.forgedResponses++;
        return;
      }
    } else if (ctx.target.connectionId !== undefined
      ? pkt.connectionId !== ctx.target.connectionId
      // The send has not told us the connection yet: it must be the one to that address:port.
      : pkt.connectionId === undefined || pkt.source.address !== ctx.target.address || pkt.source.port !== ctx.target.port) {
      this.counters.forgedResponses++;
      return;
    }
    const status = res.status;
    const isInvite = ctx.method === 'INVITE';
    const toTag = tagOf(hdr(res, 'to'));

    if (ctx.state === 'completed' || ctx.state === 'terminated') {
      // Retransmitted final: re-ACK a non-2xx (RFC 3261 §17.1.1.2), absorb the rest.
      this.counters.retransmissionsAbsorbed++;
      if (isInvite && status >= 300 && ctx.ackBytes) void this.transport.send(ctx.target, ctx.ackBytes);
      return;
    }
    if (ctx.state === 'accepted') {
      // 2xx retransmission after the app ACKed: the server re-sends that ACK itself (spec §7.7).
      this.counters.retransmissionsAbsorbed++;
      if (status >= 200 && status < 300 && ctx.ackBytes) void this.transport.send(ctx.target, ctx.ackBytes);
      return;
    }

    if (status < 200) {
      // Any provisional stops request retransmission for INVITE (Timer A); non-INVITE keeps T2.
      if (ctx.state === 'calling') {
        ctx.state = 'proceeding';
        if (isInvite && ctx.retrans !== undefined) { this.clock.clearTimeout(ctx.retrans); ctx.retrans = undefined; }
      }
      if (status === 100) return; // never passed up (trace 05 #38)
      if (ctx.method === 'CANCEL') return;
      const rseqV = hdr(res, 'rseq');
      if (isInvite && rseqV !== undefined && toTag) {
        const k = `${toTag}\n${rseqV.trim()}`;
        ctx.rseqSeen ??= new Set();
        if (ctx.rseqSeen.has(k)) { this.counters.retransmissionsAbsorbed++; return; }
        ctx.rseqSeen.add(k);
        this.uacDialogFrom(ctx, res, pkt, 'early');
      }
      this.passResponse(ctx, pkt, res);
      return;
    }

    // Final response.
    this.clearCtx(ctx);
    if (ctx.method === 'CANCEL') {
      // The 200 to a CANCEL the app sent is not passed up (spec §5.2).
      ctx.state = 'completed';
      ctx.timer = this.clock.setTimeout(() => this.dropCtx(ctx), ctx.target.protocol === 'udp' ? T4 : 0);
      return;
    }
    if (isInvite && status < 300) {
      ctx.state = 'accepted';
      ctx.twoXxSeen = toTag;
      this.uacDialogFrom(ctx, res, pkt, 'confirmed');
      // RFC 6026 Timer M: keep matching 2xx retransmissions for 64*T1.
      ctx.timer = this.clock.setTimeout(() => this.dropCtx(ctx), 64 * T1);
      this.passResponse(ctx, pkt, res);
      if (this.cdrs) this.emitCdr('start', 'network', 'uac', pkt.data.toString('utf8'));
      return;
    }
    if (isInvite) {
      // Non-2xx: the server ACKs it itself (spec §7.7), same branch (RFC 3261 §17.1.1.3).
      ctx.state = 'completed';
      ctx.ackBytes = this.buildNon2xxAck(ctx, hdr(res, 'to') ?? ctx.to);
      void this.transport.send(ctx.target, ctx.ackBytes);
      if (ctx.dialog) { this.destroyDialog(ctx.dialog); ctx.dialog = undefined; }
      this.rememberFailed(ctx.dialogId);
      ctx.timer = this.clock.setTimeout(() => this.dropCtx(ctx), ctx.target.protocol === 'udp' ? 64 * T1 : 0);
      this.passResponse(ctx, pkt, res);
      if (this.cdrs) this.emitCdr('stop', 'network', ctx.canceled ? 'call-canceled' : 'call-rejected', pkt.data.toString('utf8'));
      return;
    }
    ctx.state = 'completed';
    ctx.timer = this.clock.setTimeout(() => this.dropCtx(ctx), ctx.target.protocol === 'udp' ? T4 : 0);
    if (ctx.method === 'BYE' && ctx.dialog) { this.destroyDialog(ctx.dialog); }
    this.passResponse(ctx, pkt, res);
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

  private passResponse(ctx: ClientTxn, pkt: InboundPacket, res: SipResponse): void {
    void res;
    const payload = sipFramePayload({
      source: 'network', bytes: pkt.data.length, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.clock.now()), txnId: ctx.txnId, dialogId: ctx.dialogId,
    }, pkt.data.toString('utf8'));
    if (!ctx.echoed) { ctx.queued.push(payload); return; }
    this.sendToApp(ctx.app, payload);
  }

  /** Create or update the UAC dialog from a 2xx or reliable 1xx (RFC 3261 §12.1.2). */
  private uacDialogFrom(ctx: ClientTxn, res: SipResponse, pkt: InboundPacket, state: 'early' | 'confirmed'): void {
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
        localParty: ctx.from, remoteParty: to, remoteTarget: target, localSeq: ctx.cseqNum, protocol: ctx.target.protocol,
        address: ctx.target.address, port: ctx.target.port, connectionId: pkt.connectionId ?? ctx.target.connectionId,
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

  private buildNon2xxAck(ctx: ClientTxn, to: string): Buffer {
    const m = new OutMessage();
    m.add('via', ctx.topVia);
    for (const r of ctx.routes) m.add('route', r);
    m.add('max-forwards', '70');
    m.add('from', ctx.from);
    m.add('to', to);
    m.add('call-id', ctx.callId);
    m.add('cseq', `${ctx.cseqNum} ACK`);
    return m.render(`ACK ${ctx.requestUri} SIP/2.0`, Buffer.alloc(0));
  }

  // ------------------------------------------------------------------ app side (wire)

  onAppGone(app: AppConnection): void {
    // Requests still waiting for this app get 503; its dialogs answer 481 from now on (spec §7.1).
    for (const stx of [...this.stxById.values()]) {
      if (stx.app !== app || stx.state !== 'proceeding') continue;
      if (stx.method === 'INVITE' && stx.dialog) this.destroyDialog(stx.dialog);
      this.respond(stx, 503);
      this.finishStx(stx);
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
    if (dialogId) { void this.appInDialog(app, msgId, dialogId, parsed); return; }
    if (txnId) { this.appCancel(app, msgId, txnId, parsed); return; }
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
    if (!stx || stx.state !== 'proceeding' || stx.canceled) {
      app.send(nokPayload(msgId, 'Response not sent due to unknown transaction'));
      return;
    }
    const ct = this.contentType(m);
    if (!ct.ok) { app.send(nokPayload(msgId, stx.dialog ? 'Server error: missing content-type' : 'missing content-type')); return; }
    const status = m.status;
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

    const target = this.replyTargetOf(stx);
    if (status >= 200) {
      this.clearStx(stx);
      this.stxById.delete(stx.txnId);
    }
    // The echo goes out at once, before anything the network answers to this response (an ACK,
    // a BYE) can be framed: drachtio-srf builds the dialog from it (spec §8).
    if (target.connectionId !== undefined && this.transport.hasConnection && !this.transport.hasConnection(target.connectionId)) {
      app.send(nokPayload(msgId, 'transport for response has been shutdown or closed'));
    } else {
      app.send(responseSentPayload(msgId, {
        bytes: bytes.length, protocol: isInvite ? stx.source.protocol : '', address: stx.source.address, port: stx.source.port,
        txnId: stx.txnId, dialogId: stx.dialogId,
      }, bytes.toString('utf8')));
    }
    void this.transport.send(target, bytes).then((r) => { if (!r.ok) this.counters.sendFailures++; });

    const d = stx.dialog;
    if (status > 100 && status < 200) {
      if (reliable && d) this.startReliable(d, stx, bytes, rseq);
      return;
    }
    if (status >= 200 && status < 300) {
      if (isInvite && d) {
        d.state = 'confirmed';
        stx.state = 'accepted';
        stx.lastResponse = undefined;
        this.cancelReliable(d.id);
        this.startPendingAck(d, stx, bytes, target);
        // RFC 6026 Timer L: absorb INVITE retransmissions for 64*T1.
        stx.timer = this.clock.setTimeout(() => this.dropStx(stx), 64 * T1);
        if (this.cdrs) this.emitCdr('start', 'application', 'uas', bytes.toString('utf8'));
        return;
      }
      stx.lastResponse = bytes;
      this.finishStx(stx);
      return;
    }
    // Non-2xx final.
    stx.lastResponse = bytes;
    if (isInvite && d && initialInvite) { this.destroyDialog(d); stx.dialog = undefined; }
    if (isInvite && this.cdrs && initialInvite) this.emitCdr('stop', 'application', 'call-rejected', bytes.toString('utf8'));
    this.finishStx(stx);
  }

  private nextRseq(stx: ServerTxn): number {
    const d = stx.dialog;
    if (d && d.rseq > 0) return ++d.rseq;
    return 1 + Math.floor(Math.random() * 0x7fffffff);
  }

  /** Retransmit a reliable provisional until PRACKed (RFC 3262 §3). */
  private startReliable(d: Dialog, stx: ServerTxn, bytes: Buffer, rseq: number): void {
    this.cancelReliable(d.id);
    d.rseq = rseq;
    if (stx.source.protocol !== 'udp') return;
    const p: PendingReliable = { bytes, rseq, timer: undefined, interval: T1, started: this.clock.now(), target: this.replyTargetOf(stx) };
    const tick = () => {
      if (this.clock.now() - p.started >= 64 * T1) { this.pendingReliable.delete(d.id); return; }
      void this.transport.send(p.target, p.bytes);
      p.interval = Math.min(p.interval * 2, T2);
      p.timer = this.clock.setTimeout(tick, p.interval);
    };
    p.timer = this.clock.setTimeout(tick, T1);
    this.pendingReliable.set(d.id, p);
  }

  /** 2xx retransmission until ACK (RFC 3261 §13.3.1.4); after 64*T1: BYE + unsolicited BYE frame. */
  private startPendingAck(d: Dialog, stx: ServerTxn, bytes: Buffer, target: SendTarget): void {
    const p: PendingAck = { bytes, timer: undefined, interval: T1, started: this.clock.now(), txnId: stx.txnId, target };
    const udp = target.protocol === 'udp';
    const tick = () => {
      if (this.pendingAcks.get(d.id) !== p) return;
      if (this.clock.now() - p.started >= 64 * T1) {
        this.pendingAcks.delete(d.id);
        this.ackTimeout(d);
        return;
      }
      if (udp) void this.transport.send(p.target, p.bytes);
      p.interval = Math.min(p.interval * 2, T2);
      const remaining = 64 * T1 - (this.clock.now() - p.started);
      p.timer = this.clock.setTimeout(tick, udp ? Math.min(p.interval, remaining) : remaining);
    };
    p.timer = this.clock.setTimeout(tick, udp ? T1 : 64 * T1);
    this.pendingAcks.set(d.id, p);
  }

  private ackTimeout(d: Dialog): void {
    const app = this.apps.get(d.appId);
    void this.sendByeOnOwn(d, 'SIP;cause=200;text="ACK timeout"', app);
  }

  /** BYE the server sends by itself, plus the unsolicited BYE frame for the app (spec §7.10). */
  private async sendByeOnOwn(d: Dialog, reason: string, app: AppConnection | undefined): Promise<void> {
    const built = this.buildInDialog(d, 'BYE', undefined, [['reason', reason, 'Reason']], Buffer.alloc(0));
    this.destroyDialog(d);
    if (!built) return;
    this.startClientTxn({
      app, txnId: newId(), built, d,
      method: 'BYE', inDialog: true, send: this.transport.send(built.target, built.bytes), silent: true,
    });
    const l = built.local;
    this.sendToApp(app, sipFramePayload({
      source: 'application', bytes: built.bytes.length, protocol: l.protocol, address: l.address, port: l.port,
      time: stackTime(this.clock.now()), txnId: 'unsolicited', dialogId: d.id,
    }, built.bytes.toString('utf8')));
  }

  // form (b): a request inside a dialog
  private async appInDialog(app: AppConnection, msgId: string, dialogId: string, m: AppMessage): Promise<void> {
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
    if (method === 'ACK') {
      seq = d.inviteSeq;
      const inv = this.findInviteCtx(d);
      if (inv && inv.state === 'completed') {
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
      if (p) { this.clock.clearTimeout(p.timer); this.pendingAcks.delete(d.id); }
      this.cancelReliable(d.id);
    }
    if (method === 'ACK') {
      // ACK is not a transaction; remember it to answer 2xx retransmissions (spec §7.7).
      const inv = this.findInviteCtx(d);
      if (inv) inv.ackBytes = built.bytes;
      app.send(requestSentPayload(msgId, this.echoMeta(built.local, built.target, built.bytes.length, txnId), built.bytes.toString('utf8')));
      void this.transport.send(built.target, built.bytes).then((r) => { if (!r.ok) this.counters.sendFailures++; });
      return;
    }
    this.startClientTxn({ app, txnId, built, d, method, inDialog: true, send: this.transport.send(built.target, built.bytes), msgId });
  }

  private findInviteCtx(d: Dialog): ClientTxn | undefined {
    const c = this.inviteCtxByDialog.get(d.id);
    return c && c.cseqNum === d.inviteSeq && c.state !== 'terminated' ? c : undefined;
  }

  /** Echo meta (spec §4.5): over UDP our own address, over TCP/TLS the remote end. */
  private echoMeta(local: Listener, target: SendTarget, bytes: number, txnId: string): { bytes: number; protocol: string; address: string; port: number; txnId: string } {
    if (target.protocol === 'udp') return { bytes, protocol: 'udp', address: local.address, port: local.port, txnId };
    return { bytes, protocol: target.protocol, address: target.address, port: target.port, txnId };
  }


  /** Build a request inside a dialog (RFC 3261 §12.2.1.1 with route set and loose routing). */
  private buildInDialog(d: Dialog, method: string, uri: string | undefined, extra: Array<[string, string, string]>, body: Buffer, seq?: number):
    { bytes: Buffer; target: SendTarget; local: Listener; seq: number; topVia: string; routes: string[]; requestUri: string; branch: string } | undefined {
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
    const branch = `z9hG4bK${randomToken()}`;
    const topVia = this.viaFor(local, branch);
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
    return { bytes, target, local, seq: cseqNum, topVia, routes, requestUri, branch };
  }

  private protocolOf(u: LiteUri): Protocol {
    const t = u.params.get('transport')?.toLowerCase();
    if (t === 'tcp') return 'tcp';
    if (t === 'tls') return 'tls';
    if (t === 'udp') return 'udp';
    return u.scheme === 'sips' ? 'tls' : 'udp';
  }

  /** Register a client transaction for a request being handed to the transport, echo it to the
   *  app at once (drachtio-server echoes as soon as the stack took the message, so the echo always
   *  precedes any response), and arm the timers once the send completed. A failed send gets the
   *  made-up 503 of spec §7.10 after the echo, as in trace 04 #19–#20. */
  private startClientTxn(o: {
    app: AppConnection | undefined; txnId: string; d: Dialog | undefined; method: string; inDialog: boolean; send: Promise<SendResult>; msgId?: string; silent?: boolean;
    built: { bytes: Buffer; target: SendTarget; local: Listener; seq: number; topVia: string; routes: string[]; requestUri: string; branch: string };
    from?: string; to?: string; callId?: string; dialogId?: string;
  }): ClientTxn {
    const { built, d } = o;
    const target: SendTarget = { ...built.target };
    const ctx: ClientTxn = {
      txnId: o.txnId, key: `${built.branch}\n${o.method}`, branch: built.branch, method: o.method, app: o.app, target, local: built.local,
      bytes: built.bytes, requestUri: built.requestUri, topVia: built.topVia, from: o.from ?? d?.localParty ?? '', to: o.to ?? d?.remoteParty ?? '',
      callId: o.callId ?? d?.callId ?? '', cseqNum: built.seq, routes: built.routes, dialogId: o.dialogId ?? d?.id ?? '', dialog: d,
      inDialog: o.inDialog, state: 'calling', timer: undefined, retrans: undefined, interval: T1, echoed: true, queued: [],
      canceled: false, ackBytes: undefined, rseqSeen: undefined, twoXxSeen: undefined,
    };
    this.ctxByKey.set(ctx.key, ctx);
    this.ctxById.set(ctx.txnId, ctx);
    if (o.method === 'INVITE') this.inviteCtxByDialog.set(ctx.dialogId, ctx);
    if (o.msgId) o.app?.send(requestSentPayload(o.msgId, this.echoMeta(built.local, target, built.bytes.length, o.txnId), built.bytes.toString('utf8')));
    const isInvite = o.method === 'INVITE';
    void o.send.then((r) => {
      if (!r.ok) {
        this.counters.sendFailures++;
        this.dropCtx(ctx);
        if (isInvite && !o.inDialog) this.rememberFailed(ctx.dialogId);
        if (!o.silent) this.madeUpFailure(ctx, 503);
        return;
      }
      if (r.connectionId) ctx.target.connectionId = r.connectionId;
      if (ctx.state !== 'calling' && ctx.state !== 'proceeding') return; // already answered
      if (ctx.target.protocol === 'udp' && ctx.retrans === undefined && (ctx.state === 'calling' || !isInvite)) this.scheduleRetrans(ctx, ctx.state === 'calling' ? T1 : T2);
      // Timer B / F.
      ctx.timer = this.clock.setTimeout(() => {
        if (ctx.state === 'calling' || ctx.state === 'proceeding') {
          this.counters.clientTimeouts++;
          this.dropCtx(ctx);
          if (ctx.dialog && !ctx.inDialog && ctx.dialog.state === 'early') this.destroyDialog(ctx.dialog);
          if (isInvite && !ctx.inDialog) this.rememberFailed(ctx.dialogId);
          if (!o.silent) this.madeUpFailure(ctx, 408);
        }
      }, 64 * T1);
    });
    return ctx;
  }

  private scheduleRetrans(ctx: ClientTxn, interval: number): void {
    ctx.retrans = this.clock.setTimeout(() => {
      ctx.retrans = undefined;
      if (ctx.state === 'calling' || (ctx.state === 'proceeding' && ctx.method !== 'INVITE')) {
        void this.transport.send(ctx.target, ctx.bytes);
        // Timer A doubles without cap; Timer E caps at T2 (and is T2 once proceeding).
        const nextI = ctx.method === 'INVITE' ? interval * 2 : ctx.state === 'proceeding' ? T2 : Math.min(interval * 2, T2);
        this.scheduleRetrans(ctx, nextI);
      }
    }, interval);
  }

  private madeUpFailure(ctx: ClientTxn, status: number): void {
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
    const text = m.render(`SIP/2.0 ${status} ${REASONS[status]}`, Buffer.alloc(0)).toString('utf8');
    const payload = sipFramePayload({
      source: 'network', bytes: 0, protocol: ctx.target.protocol, address: '', port: 0, time: stackTime(this.clock.now()),
      txnId: ctx.txnId, dialogId: ctx.dialogId,
    }, text);
    if (!ctx.echoed) { ctx.queued.push(payload); return; }
    this.sendToApp(ctx.app, payload);
  }

  // form (c): the app CANCELs its INVITE
  private appCancel(app: AppConnection, msgId: string, txnId: string, m: AppMessage): void {
    const inv = this.ctxById.get(txnId);
    if (m.method !== 'CANCEL') {
      app.send(nokPayload(msgId, `only CANCEL may name a transaction id without a dialog id, not ${m.method}`));
      return;
    }
    if (!inv || inv.method !== 'INVITE' || (inv.state !== 'calling' && inv.state !== 'proceeding')) {
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
    const bytes = out.render(`CANCEL ${inv.requestUri} SIP/2.0`, Buffer.alloc(0));
    this.startClientTxn({
      app, txnId: newId(), d: undefined, method: 'CANCEL', inDialog: false, send: this.transport.send(inv.target, bytes), msgId, silent: true,
      built: { bytes, target: inv.target, local: inv.local, seq: inv.cseqNum, topVia: inv.topVia, routes: inv.routes, requestUri: inv.requestUri, branch: inv.branch },
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
    const branch = `z9hG4bK${randomToken()}`;
    const topVia = this.viaFor(local, branch);
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
    const txnId = newId();
    const isInvite = method === 'INVITE';
    this.startClientTxn({
      app, txnId, d: undefined, method, inDialog: false, send: this.transport.send(target, bytes), msgId,
      built: { bytes, target, local, seq: cseqNum, topVia, routes: [], requestUri: m.uri, branch },
      from, to, callId, dialogId: isInvite ? `${callId};from-tag=${tagOf(from)}` : '',
    });
  }
}

export { TLS_IDENTITY_HEADER, headerParam };
