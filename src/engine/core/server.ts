// The UAS side of the core: what happens to a request from the network before and after the
// app sees it.
//   RFC 3261 §8.2      new requests: checked (400 when a response can be routed), routed to an
//                      app (wire spec §7.1: 503 when none), passed up with the stamped top Via;
//                      unknown methods (§8.2.1) go to the app that routed them or `*`
//   RFC 3261 §12.2.2   requests within a dialog: 481 without one, §12.2.2's 500 for a CSeq
//                      lower than the remote one (the app never sees it), target refresh
//   RFC 3261 §9.2      CANCEL: 200 to it and 487 to the INVITE; 481 when nothing to cancel
//   RFC 6404 §2.3.2.1  a request within a dialog, or a CANCEL, from another source than the
//                      peer that owns the dialog (or sent the INVITE) gets 481, as if there
//                      were no such dialog: a third party learns nothing, the call goes on
//   wire spec §7.1, §7.8, §7.10  drachtio's own answers (100, 481, 491, 503), BYE frames
// The responses an app sends are rendered by AppCommands (form (a)); the INVITE's timers after
// a 2xx or reliable 1xx are InviteServer's.
import type { HeaderField, SipRequest } from '../message/types.js';
import type { Endpoint, InboundPacket, SendTarget } from '../transport/types.js';
import type { InboundMeta, ServerTransaction } from '../transaction/index.js';
import type { Dialog, RequestOrigin } from '../dialog/dialog.js';
import { normalizeAddress } from '../shield/index.js';
import type { AppConnection, WireServer } from '../wire/server.js';
import { sipFramePayload, stackTime, newId } from '../wire/leaders.js';
import type { CoreContext } from './context.js';
import { EMPTY, REASONS } from './build.js';
import { KNOWN_METHODS, hasOptionTag, hdr, hdrAll, leaderSafe, parseRequestCSeq, randomToken, splitCommaList, tagOf } from './fields.js';
import { appView, stampedTopVia, withHeader } from '../message/app-view.js';
import { ADMISSION_HEADER } from '../../sip/admission-header.js';
import { formatTlsIdentity } from '../../sip/tls-identity.js';
import type { InviteServer } from './invite-server.js';
import { OutMessage } from './outgoing.js';

/** Methods an app can route outside a dialog (spec §7.1). */
const ROUTED = new Set(['INVITE', 'REGISTER', 'MESSAGE', 'OPTIONS', 'INFO', 'NOTIFY', 'SUBSCRIBE', 'PUBLISH']);
/** Requests that refresh the remote target (§12.2, RFC 3311, RFC 6665, RFC 3515). */
const TARGET_REFRESH = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

/** drachtio bookkeeping for a server transaction of the layer (its `appData`). What changes
 *  after creation is not readonly: the app, our To tag, the dialog, the CANCEL mark. Released
 *  with the 2xx to an INVITE: the transaction then keeps only the dialog (accepted()). */
export interface ServerCtx {
  readonly txn: ServerTransaction;
  /** Wire protocol transaction id; empty for a CANCEL (never addressed by the app). */
  readonly txnId: string;
  readonly method: string;
  app: AppConnection | undefined;
  /** The request's Vias with the top one stamped (received/rport): responses echo these. */
  vias: string[];
  from: string;
  to: string;
  callId: string;
  cseq: string;
  readonly cseqNum: number;
  recordRoute: string[];
  contact: string | undefined;
  readonly supports100rel: boolean;
  readonly source: Endpoint;
  readonly connectionId: string | undefined;
  readonly local: Endpoint;
  readonly bytes: number;
  toTag: string | undefined;
  dialogId: string;
  dialog: Dialog | undefined;
  canceled: boolean;
  /** The text passed to the app (for call events). */
  inviteText?: string;
  /** The X-Peergate-Admission value the INVITE went to its app with (wire.preAdmission). */
  preAdmitted: string | undefined;
}

/** What the overload gate reads of a new INVITE, and all a refusal (503) needs: the request's
 *  Vias with the top one stamped (the gate may put RFC 7339 feedback in it) and the headers a
 *  response copies (RFC 3261 §8.2.6.2). */
export interface NewInvite {
  readonly txn: ServerTransaction;
  vias: string[];
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly cseq: string;
  /** It waited in the priority ingress past its target (overload/ingress.ts): refuse it. */
  readonly overdue: boolean;
}

/** The header values every request the core accepts must carry, checked once per new request. */
interface RequestHead {
  vias: string[]; from: string; to: string; callId: string; cseq: string; cseqNum: number;
  fromTag: string | undefined; toTag: string | undefined;
}

function requestHead(req: SipRequest): RequestHead | undefined {
  const vias = hdrAll(req, 'via');
  const from = hdr(req, 'from');
  const to = hdr(req, 'to');
  const callId = hdr(req, 'call-id');
  const cseqV = hdr(req, 'cseq');
  const cseq = cseqV === undefined ? null : parseRequestCSeq(cseqV);
  // The top Via is read by appView (request(): 400 when it cannot be).
  if (!vias[0] || !from || !to || !callId || !cseq || cseq.method !== req.method || !leaderSafe(callId) || !leaderSafe(req.uri)) return undefined;
  const fromTag = tagOf(from);
  const toTag = tagOf(to);
  if ((fromTag !== undefined && !leaderSafe(fromTag)) || (toTag !== undefined && !leaderSafe(toTag))) return undefined;
  return { vias, from, to, callId, cseq: cseqV!, cseqNum: cseq.seq, fromTag, toTag };
}

/** Where a request came from, as a dialog's binding compares it. */
export function originOf(pkt: InboundPacket): RequestOrigin {
  return { protocol: pkt.source.protocol, address: pkt.source.address, connectionId: pkt.connectionId };
}

/** A CANCEL must come the way its INVITE came (the same rule as Dialog.acceptsFrom). */
function sameOrigin(source: Pick<Endpoint, 'protocol' | 'address'>, connectionId: string | undefined, pkt: InboundPacket): boolean {
  if (pkt.source.protocol !== source.protocol) return false;
  if (source.protocol !== 'udp' && connectionId !== undefined) return pkt.connectionId === connectionId;
  return normalizeAddress(pkt.source.address) === normalizeAddress(source.address);
}

/** The INVITE's record while it can be answered or cancelled; in Accepted (after accepted()),
 *  its dialog's id only (or undefined). */
function inviteRecord(ist: ServerTransaction | undefined): { stx: ServerCtx | undefined; dialogId: string | undefined } {
  if (ist === undefined) return { stx: undefined, dialogId: undefined };
  if (ist.state === 'Accepted') return { stx: undefined, dialogId: ist.appData as string | undefined };
  return { stx: ist.appData as ServerCtx | undefined, dialogId: undefined };
}

export function replyTarget(pkt: InboundMeta): SendTarget {
  return { protocol: pkt.source.protocol, address: pkt.source.address, port: pkt.source.port, connectionId: pkt.connectionId, local: pkt.local };
}

export class ServerSide {
  private readonly ctx: CoreContext;
  private readonly wire: WireServer;
  private readonly invites: InviteServer;
  /** BYE the core sends on its own in a dialog (CANCEL after our 2xx). */
  private readonly byeOnOwn: (d: Dialog, reason: string) => void;
  /** Server transactions an app may still answer, by wire transaction id. */
  private readonly byId = new Map<string, ServerCtx>();

  constructor(ctx: CoreContext, wire: WireServer, invites: InviteServer, byeOnOwn: (d: Dialog, reason: string) => void) {
    this.ctx = ctx;
    this.wire = wire;
    this.invites = invites;
    this.byeOnOwn = byeOnOwn;
  }

  /** The server transaction an app answers with this wire transaction id. */
  find(txnId: string): ServerCtx | undefined { return this.byId.get(txnId); }

  /** The request got its final response: the app can no longer address it. */
  finished(stx: ServerCtx): void {
    this.byId.delete(stx.txnId);
    stx.inviteText = undefined;
  }

  /**
   * The INVITE was answered 2xx: its transaction waits 64*T1 in Accepted (RFC 6026; ≈ 16,000 at
   * 500 calls/s), where only a CANCEL still looks at it (cancel(): the sender's origin, which is
   * the transaction's target, and the dialog to end if it is still up). So its appData becomes
   * the dialog's id alone (a string the dialog shares): this record, with its header values, and
   * the dialog once it ends are not kept alive by it.
   */
  accepted(stx: ServerCtx): void {
    stx.txn.appData = stx.dialog?.id;
  }

  /** A response built only from recovered headers (no transaction), e.g. 400 to garbage. */
  replyStateless(pkt: InboundPacket, headers: HeaderField[], status: number, reason: string): void {
    const vias: string[] = [];
    let from: string | undefined, to: string | undefined, callId: string | undefined, cseq: string | undefined;
    for (const h of headers) {
      if (h.name === 'via') vias.push(...splitCommaList(h.value));
      else if (h.name === 'from') from ??= h.value;
      else if (h.name === 'to') to ??= h.value;
      else if (h.name === 'call-id') callId ??= h.value;
      else if (h.name === 'cseq') cseq ??= h.value;
    }
    if (vias.length === 0) return;
    this.ctx.count.badRequests++;
    const m = new OutMessage();
    for (const v of vias) m.add('via', v);
    if (from) m.add('from', from);
    if (to) m.add('to', tagOf(to) ? to : `${to};tag=${randomToken()}`);
    if (callId) m.add('call-id', callId);
    if (cseq) m.add('cseq', cseq);
    const safeReason = reason.replace(/[\r\n]/g, ' ').slice(0, 120);
    this.ctx.send(replyTarget(pkt), m.render(`SIP/2.0 ${status} ${safeReason}`, EMPTY));
  }

  /** TransactionUser.request: a new request made a server transaction (§17.2). */
  request(txn: ServerTransaction, req: SipRequest, meta: InboundMeta): void {
    const pkt = meta as InboundPacket;
    const head = requestHead(req);
    const method = req.method;
    // Overload control sees a new INVITE before anything is made for the app (its text, a wire
    // id, the core's record): at 3× overload two of three INVITEs end here, and what they cost
    // comes out of the calls admitted. A top Via that does not parse goes on to the 400 below.
    let fedVia: string | undefined;
    const admission = this.wire.admission;
    if (admission !== undefined && head !== undefined && method === 'INVITE' && head.toTag === undefined) {
      const top = stampedTopVia(head.vias[0]!, pkt.source.address, pkt.source.port);
      if (top !== undefined) {
        head.vias[0] = top;
        const invite: NewInvite = { txn, vias: head.vias, from: head.from, to: head.to, callId: head.callId, cseq: head.cseq, overdue: pkt.overdue === true };
        if (admission.shed(invite, req)) return;
        // RFC 7339 feedback the gate put in the top Via, for every response to come.
        if (invite.vias[0] !== top) fedVia = invite.vias[0];
      }
    }
    const rw = head && appView(req, pkt.data.toString('utf8'), pkt.source.address, pkt.source.port,
      pkt.tls ? formatTlsIdentity(pkt.tls) : undefined);
    if (!head || !rw) {
      this.replyStateless(pkt, req.headers, 400, 'Bad Request');
      txn.terminate();
      return;
    }
    const stx: ServerCtx = {
      txn, txnId: method === 'CANCEL' ? '' : newId(), method, app: undefined, vias: [fedVia ?? rw.topVia, ...head.vias.slice(1)],
      from: head.from, to: head.to, callId: head.callId, cseq: head.cseq, cseqNum: head.cseqNum,
      recordRoute: hdrAll(req, 'record-route'), contact: hdr(req, 'contact'),
      supports100rel: hasOptionTag([...hdrAll(req, 'supported'), ...hdrAll(req, 'require')], '100rel'),
      source: pkt.source, connectionId: pkt.connectionId, local: pkt.local, bytes: pkt.data.length,
      toTag: head.toTag, dialogId: '', dialog: undefined, canceled: false, preAdmitted: undefined,
    };
    txn.appData = stx;
    if (method === 'CANCEL') this.cancel(stx, req, pkt, rw.text);
    else if (head.toTag !== undefined) this.inDialog(stx, req, pkt, rw.text, head.toTag);
    else this.outOfDialog(stx, req, pkt, rw.text, head.fromTag);
  }

  /** §12.2.2: a request with a To tag. */
  private inDialog(stx: ServerCtx, req: SipRequest, pkt: InboundPacket, text: string, toTag: string): void {
    const method = stx.method;
    const d = this.ctx.dialogs.findByLocal(stx.callId, toTag);
    if (d && !d.acceptsFrom(originOf(pkt))) {
      this.refuseForeign(stx, pkt);
      return;
    }
    if (method === 'INVITE') this.trying(stx);
    const app = d ? this.ctx.app(d.binding.appId) : undefined;
    if (!d || !app || app.closed) {
      if (d && method === 'BYE') this.ctx.dialogs.remove(d);
      this.respond(stx, 481);
      return;
    }
    // Out of order (lower CSeq than the last request of the peer): 500, the app never sees it.
    if (d.receiveCSeq(stx.cseqNum) === 'out-of-order') {
      this.respond(stx, 500);
      return;
    }
    stx.app = app;
    stx.dialog = d;
    stx.dialogId = d.id;
    if (TARGET_REFRESH.has(method)) d.refreshTarget(stx.contact);
    if (method === 'PRACK') this.invites.prack(d, req);
    this.byId.set(stx.txnId, stx);
    const frameDialogId = d.id;
    if (method === 'BYE') {
      // The dialog is gone once the BYE arrives (trace 03 #13: its response echo has no dialog id).
      this.ctx.dialogs.remove(d);
      stx.dialogId = '';
      stx.dialog = undefined;
      this.ctx.calls?.ended('network', 'normal-release', text);
    }
    this.ctx.sendToApp(app, sipFramePayload({
      source: 'network', bytes: stx.bytes, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.ctx.clock.now()), txnId: stx.txnId, dialogId: frameDialogId,
    }, text));
  }

  /** §8.2: a request without a To tag, routed to an app by method (spec §7.1). */
  private outOfDialog(stx: ServerCtx, req: SipRequest, pkt: InboundPacket, text: string, fromTag: string | undefined): void {
    const method = stx.method;
    // A method the core does not know (RFC 3261 §8.2.1): the app answers it (501, or silence for
    // an unknown source); it goes to an app that routed it, else to one that routed `*`.
    const unknown = !KNOWN_METHODS.has(method);
    if (!ROUTED.has(method) && !unknown) {
      if (method === 'BYE' || method === 'UPDATE') this.respond(stx, 481);
      // REFER, PRACK, … outside a dialog: no response at all (trace 02 #20).
      else stx.txn.terminate();
      return;
    }
    if (method === 'INVITE') {
      this.trying(stx);
      // A late copy of an INVITE whose dialog already exists (spec §7.1).
      const d = fromTag ? this.ctx.dialogs.get(`${stx.callId};from-tag=${fromTag}`) : undefined;
      if (d && d.role === 'uas' && d.state === 'confirmed') { this.respond(stx, 491); return; }
      this.ctx.calls?.attempt(text);
    }
    const app = unknown ? this.wire.pickApp(method) ?? this.wire.pickApp('*') : this.wire.pickApp(method);
    if (!app && unknown) {
      // No app takes unknown methods: no response, as before apps could take them.
      stx.txn.terminate();
      return;
    }
    if (!app) {
      this.ctx.count.unroutedRequests++;
      const resp = this.respond(stx, 503);
      if (method === 'INVITE' && resp) this.ctx.calls?.ended('application', 'call-rejected', resp.toString('utf8'));
      return;
    }
    stx.app = app;
    this.ctx.rememberApp(app);
    if (this.ctx.calls && method === 'INVITE') stx.inviteText = text;
    // Limits decided here, for the app this INVITE goes to (src/app/preadmit.ts): the app is
    // spared a round trip to the node's store; the decision rides in the text it gets.
    const pre = method === 'INVITE' ? this.wire.preAdmission : undefined;
    if (pre !== undefined) {
      const value = pre.admit(req, pkt, app);
      if (value !== undefined) { text = withHeader(text, ADMISSION_HEADER, value); stx.preAdmitted = value; }
    }
    // An app that never answers: the layer forgets the request after 64 s (spec §7.10).
    this.byId.set(stx.txnId, stx);
    this.ctx.sendToApp(app, sipFramePayload({
      source: 'network', bytes: stx.bytes, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.ctx.clock.now()), txnId: stx.txnId, dialogId: '',
      receivedOn: { address: pkt.local.address, port: pkt.local.port },
    }, text));
  }

  /**
   * drachtio's 100 Trying for an INVITE (wire spec §7.1), at the pace RFC 3261 §17.2.1 allows:
   * only if nothing else was sent `timers.trying` ms after the INVITE (engine option
   * timers.trying; 0: at once, as drachtio-server). The transaction calls back sendTrying().
   */
  private trying(stx: ServerCtx): void {
    if (stx.txn.kind === 'ist') stx.txn.deferTrying();
  }

  /** TransactionUser.trying: the deferred 100 is due (the transaction still sent nothing). */
  sendTrying(txn: ServerTransaction): void {
    // In Proceeding appData is the ServerCtx (Accepted keeps only the dialog's id, a string).
    const stx = txn.appData as ServerCtx | string | undefined;
    if (typeof stx === 'object') this.respond(stx, 100);
  }

  /** Send a response the server makes up itself (100, 481, 487, 500, 503 …). Returns the bytes. */
  respond(stx: ServerCtx, status: number, toTag?: string): Buffer | undefined {
    const m = new OutMessage();
    for (const v of stx.vias) m.add('via', v);
    m.add('from', stx.from);
    let to = stx.to;
    if (status > 100 && !tagOf(to)) to = `${to};tag=${toTag ?? stx.toTag ?? randomToken()}`;
    m.add('to', to);
    m.add('call-id', stx.callId);
    m.add('cseq', stx.cseq);
    const bytes = m.render(`SIP/2.0 ${status} ${REASONS[status] ?? 'Unknown'}`, EMPTY);
    if (status >= 200) this.byId.delete(stx.txnId);
    if (status === 100 && stx.txn.kind === 'ist') return stx.txn.sendOwnTrying(bytes) ? bytes : undefined;
    return stx.txn.respondRaw(status, bytes) ? bytes : undefined;
  }

  /**
   * 481 to a request that claimed another peer's dialog or INVITE. Its transaction is dropped
   * at once: the owner's own request may carry the same branch (a CANCEL always does) and must
   * not be taken for a retransmission of the forgery.
   */
  private refuseForeign(stx: ServerCtx, pkt: InboundPacket): void {
    this.ctx.foreign(pkt, stx.method);
    this.respond(stx, 481);
    stx.txn.terminate();
  }

  /** §9.2 with drachtio's matrix (spec §7.8). */
  private cancel(cancel: ServerCtx, req: SipRequest, pkt: InboundPacket, text: string): void {
    const ist = this.ctx.layer.findInviteServerTransaction(req);
    const { stx: inv, dialogId: acceptedDialogId } = inviteRecord(ist);
    // Only the sender of the INVITE may cancel it: same connection, or same UDP host (in
    // Accepted, the INVITE's transaction still answers there: its target is that origin).
    const foreign = inv ? !sameOrigin(inv.source, inv.connectionId, pkt)
      : ist?.state === 'Accepted' && !sameOrigin(ist.target, ist.target.connectionId, pkt);
    if (foreign) {
      this.refuseForeign(cancel, pkt);
      return;
    }
    if (!ist || !inv || ist.state !== 'Proceeding' || inv.canceled) {
      // Nothing to cancel (spec §7.8).
      this.respond(cancel, 481);
      const d = acceptedDialogId !== undefined ? this.ctx.dialogs.get(acceptedDialogId) : undefined;
      // CANCEL after our 2xx but before its ACK: the caller gave up, so end the call (spec §7.8).
      if (d && this.invites.awaitingAck(d.id)) this.byeOnOwn(d, 'SIP ;cause=200 ;text="CANCEL after 200 OK"');
      return;
    }
    inv.canceled = true;
    const provisional = inv.toTag !== undefined;
    this.respond(cancel, 200, inv.toTag);
    this.respond(inv, 487, inv.toTag);
    const dialogId = inv.dialogId;
    if (inv.dialog) { this.ctx.dialogs.remove(inv.dialog); inv.dialog = undefined; }
    this.invites.stopReliable(dialogId);
    if (inv.inviteText !== undefined) this.ctx.calls?.ended('network', 'call-canceled', inv.inviteText);
    this.ctx.sendToApp(inv.app, sipFramePayload({
      source: 'network', bytes: provisional ? inv.bytes : pkt.data.length, protocol: pkt.source.protocol,
      address: pkt.source.address, port: pkt.source.port, time: stackTime(this.ctx.clock.now()), txnId: inv.txnId,
      dialogId: provisional ? dialogId : '',
    }, text));
  }

  /** The app is gone: requests still waiting for it get 503, the dialogs of its INVITEs end (spec §7.1). */
  appGone(app: AppConnection): void {
    for (const stx of [...this.byId.values()]) {
      if (stx.app !== app) continue;
      if (stx.method === 'INVITE' && stx.dialog) this.ctx.dialogs.remove(stx.dialog);
      // A worker's connection gone with the INVITE unanswered: its pre-admitted slot must not wait
      // for that worker (alive, its keepAlive would keep the slot forever).
      if (stx.preAdmitted !== undefined) this.wire.preAdmission?.abandoned(stx.preAdmitted);
      this.respond(stx, 503);
    }
  }

  /** TransactionUser.terminated for a server transaction (its appData: see inviteRecord()). */
  terminated(txn: ServerTransaction): void {
    if (typeof txn.appData === 'string') return; // an INVITE that was in Accepted (accepted())
    const stx = txn.appData as ServerCtx | undefined;
    if (stx && this.byId.get(stx.txnId) === stx) this.byId.delete(stx.txnId);
  }
}
