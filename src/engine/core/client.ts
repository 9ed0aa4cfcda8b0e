// The UAC side of the core: requests an app (or the core itself) sends, as the transaction
// user of the client transactions.
//   RFC 3261 §8.1.3    responses: 100 is never passed up, the rest goes to the app; no final
//                      response (Timer B/F) or a transport failure (§17.1.4) becomes the made-up
//                      408 / 503 of wire spec §7.10
//   RFC 3261 §13.2.2   INVITE: dialogs from a reliable 1xx (early) and the 2xx (§12.1.2), the ACK
//                      the app sends for a 2xx re-sent for each copy of that 2xx (spec §7.7)
//   RFC 3261 §13.2.2.4 forks: a 2xx from a second fork is ACKed and ended with BYE by the core
//   wire spec §7.10    the BYE the core sends on its own (ACK timeout, CANCEL races) and the
//                      unsolicited BYE frame that tells the app
import type { SipResponse } from '../message/types.js';
import type { InboundPacket, SendTarget } from '../transport/types.js';
import { keepBytes, keptBytes, own, ownOpt, type ClientTransaction, type InboundMeta, type InviteClientTransaction, type Transaction } from '../transaction/index.js';
import { Dialog } from '../dialog/dialog.js';
import type { AppConnection } from '../wire/server.js';
import { nokPayload, requestSentLeader, sipFrameLeader, sipFramePayload, stackTime, newId } from '../wire/leaders.js';
import type { CoreContext } from './context.js';
import { buildInDialog, echoMeta, EMPTY, REASONS, type Built } from './build.js';
import { hdr, hdrAll, parseCSeq, randomToken, tagOf } from './fields.js';
import type { Listener } from './listeners.js';
import { OutMessage } from './outgoing.js';

/** drachtio bookkeeping for a client transaction of the layer: a request an app (or the core) sent.
 *  What changes after creation is not readonly: the dialog, the CANCEL mark, the ACKs, and the
 *  values an INVITE in Accepted (32 s) shares with its dialog (accepted()). */
export interface ClientCtx {
  readonly txn: ClientTransaction;
  readonly txnId: string;
  readonly method: string;
  /** Undefined for requests the server sends on its own (the ACK-timeout BYE, a BYE to an extra fork). */
  readonly app: AppConnection | undefined;
  /** No made-up 408/503 frame on failure (CANCEL, the core's own requests). */
  readonly silent: boolean;
  readonly local: Listener;
  readonly requestUri: string;
  readonly topVia: string;
  from: string;
  readonly to: string;
  callId: string;
  readonly cseqNum: number;
  readonly routes: string[];
  dialogId: string;
  dialog: Dialog | undefined;
  readonly inDialog: boolean;
  canceled: boolean;
  /** ACKs sent for this INVITE's 2xx, one per To-tag: re-sent when that 2xx is retransmitted (spec §7.7). */
  acks: SentAck | undefined;
}

/** An ACK for a 2xx, kept while its INVITE waits in Accepted: usually the only one, so a list
 *  (one per fork) rather than a Map, and the bytes as a one-byte string (transaction/own.ts). */
interface SentAck {
  tag: string;
  text: string;
  target: SendTarget;
  readonly next: SentAck | undefined;
}

/**
 * The `appData` of an INVITE client transaction still in Accepted (RFC 6026 Timer M, 32 s)
 * after its dialog ended: its record is let go (dialogEnded()), and all the transaction still
 * needs of the core is the ACKs to re-send for copies of its 2xx. ≈ 16,000 such INVITEs wait at
 * 500 calls/s; the record with its header copies was ≈ 0.8 KB of each.
 */
interface EndedInvite {
  readonly ended: true;
  readonly acks: SentAck | undefined;
}

/** The app's record of a client transaction, when it still has one (not an EndedInvite). */
function recordOf(txn: ClientTransaction): ClientCtx | undefined {
  const a = txn.appData as ClientCtx | EndedInvite | undefined;
  return a === undefined || (a as EndedInvite).ended === true ? undefined : a as ClientCtx;
}


export interface StartRequest {
  app: AppConnection | undefined;
  txnId: string;
  d: Dialog | undefined;
  method: string;
  inDialog: boolean;
  /** The app's message id: the echo (or a NOK) goes to it. */
  msgId?: string;
  silent: boolean;
  built: Built;
  from?: string;
  to?: string;
  callId?: string;
  dialogId?: string;
}

export class ClientSide {
  private readonly ctx: CoreContext;
  /** Client transactions an app may still CANCEL, by wire transaction id. */
  private readonly byId = new Map<string, ClientCtx>();
  /** The latest INVITE client transaction of each dialog id (its ACK is re-sent on 2xx copies). */
  private readonly inviteByDialog = new Map<string, ClientCtx>();
  /** Dialog ids of app INVITEs that failed: an ACK from the app for them gets the spec's NOK. */
  private readonly failedInvites = new Map<string, number>();

  constructor(ctx: CoreContext) {
    this.ctx = ctx;
  }

  /** The client transaction of this wire transaction id (form (c): the app CANCELs it). */
  find(txnId: string): ClientCtx | undefined { return this.byId.get(txnId); }

  /** Whether an INVITE with this dialog id is still pending (dialog ids must stay unique). */
  invitePending(dialogId: string): boolean { return this.inviteByDialog.has(dialogId); }

  /** Whether the INVITE of this dialog id failed (its ACK is the stack's, not the app's). */
  inviteFailed(dialogId: string): boolean { return this.failedInvites.has(dialogId); }

  /** The INVITE transaction whose 2xx created or last refreshed dialog `d`. */
  inviteOf(d: Dialog): ClientCtx | undefined {
    const c = this.inviteByDialog.get(d.id);
    return c && c.cseqNum === d.inviteSeq ? c : undefined;
  }

  /**
   * Hand a request to the transaction layer and echo it to the app at once (drachtio-server
   * echoes as soon as the stack took the message, so the echo always precedes any response).
   * A failed send reaches the app as the made-up 503 of spec §7.10, after the echo (trace 04
   * #19–#20), through transportError().
   */
  start(o: StartRequest): void {
    const { built, d } = o;
    let txn: ClientTransaction;
    try {
      txn = this.ctx.layer.sendRequest(built.request, built.target, built.bytes);
    } catch (err) {
      if (o.msgId) o.app?.send(nokPayload(o.msgId, `Server error: ${(err as Error).message}`));
      return;
    }
    // Kept until the transaction ends (an INVITE: 32 s in Accepted or Timer D): flat copies of
    // what came from the app's text (transaction/own.ts); a dialog's own values already are.
    const c: ClientCtx = {
      txn, txnId: o.txnId, method: o.method, app: o.app, silent: o.silent, local: built.local,
      requestUri: own(built.requestUri), topVia: built.topVia, from: ownOpt(o.from) ?? d?.localParty ?? '', to: ownOpt(o.to) ?? d?.remoteParty ?? '',
      callId: ownOpt(o.callId) ?? d?.callId ?? '', cseqNum: built.seq, routes: built.routes, dialogId: ownOpt(o.dialogId) ?? d?.id ?? '', dialog: d,
      inDialog: o.inDialog, canceled: false, acks: undefined,
    };
    txn.appData = c;
    this.byId.set(c.txnId, c);
    if (o.method === 'INVITE') this.inviteByDialog.set(c.dialogId, c);
    if (o.msgId) o.app?.sendWith(requestSentLeader(o.msgId, echoMeta(built.local, built.target, built.bytes.length, o.txnId)), built.bytes);
  }

  /** The app's ACK for the 2xx of `inv` from the peer with To tag `remoteTag`: kept for copies of that 2xx. */
  rememberAck(inv: ClientCtx, remoteTag: string, bytes: Buffer, target: SendTarget): void {
    // Kept while the INVITE waits in Accepted (32 s): a string of its own, not a pool slab's slice.
    for (let a = inv.acks; a !== undefined; a = a.next) {
      if (a.tag === remoteTag) { a.text = keepBytes(bytes); a.target = target; return; }
    }
    const d = inv.dialog;
    inv.acks = { tag: d !== undefined && d.remoteTag === remoteTag ? d.remoteTag : own(remoteTag), text: keepBytes(bytes), target, next: inv.acks };
  }

  /** TransactionUser.response: the first copy of a response to a request an app (or the core) sent. */
  response(txn: ClientTransaction, res: SipResponse, meta: InboundMeta): void {
    const pkt = meta as InboundPacket;
    const c = recordOf(txn);
    if (!c) {
      // Only a 2xx from another fork reaches an INVITE in Accepted (the layer absorbs the rest).
      const ended = txn.appData as EndedInvite | undefined;
      if (ended !== undefined && res.status >= 200 && res.status < 300) this.releaseForkAfterEnd(txn as InviteClientTransaction, ended, res, pkt);
      return;
    }
    const status = res.status;
    const isInvite = c.method === 'INVITE';
    if (c.method === 'CANCEL') return; // responses to a CANCEL are not passed up (spec §5.2)
    if (status < 200) {
      if (status === 100) return; // never passed up (trace 05 #38)
      if (isInvite && hdr(res, 'rseq') !== undefined && tagOf(hdr(res, 'to'))) this.dialogFrom(c, res, pkt, false);
      this.pass(c, pkt);
      return;
    }
    if (isInvite && status < 300) {
      const d = c.dialog;
      if (!c.inDialog && d && d.state === 'confirmed' && tagOf(hdr(res, 'to')) !== d.remoteTag) {
        this.releaseExtraFork(c, res, pkt);
        return;
      }
      this.dialogFrom(c, res, pkt, true);
      this.pass(c, pkt);
      this.ctx.calls?.answered('uac', pkt.data.toString('utf8'));
      this.accepted(c);
      return;
    }
    if (isInvite) {
      // Non-2xx: the layer has ACKed it (§17.1.1.3), as drachtio-server does (spec §7.7).
      if (c.dialog && !c.inDialog) { this.ctx.dialogs.remove(c.dialog); c.dialog = undefined; }
      if (!c.inDialog) this.rememberFailed(c.dialogId);
      this.pass(c, pkt);
      this.ctx.calls?.ended('network', c.canceled ? 'call-canceled' : 'call-rejected', pkt.data.toString('utf8'));
      return;
    }
    if (c.method === 'BYE' && c.dialog) this.ctx.dialogs.remove(c.dialog);
    this.pass(c, pkt);
    // Answered: only an INVITE can be CANCELed by its id, and nothing else reads this record
    // while the transaction waits out Timer K, so it goes now.
    if (this.byId.get(c.txnId) === c) this.byId.delete(c.txnId);
    txn.appData = undefined;
  }

  /**
   * The INVITE got its 2xx and waits 64*T1 in Accepted (RFC 6026; ≈ 16,000 at 500 calls/s):
   * the values its dialog also holds are shared with the dialog instead of kept twice. Not the
   * dialog id: `inviteByDialog` holds the record's own copy as its key, which outlives the
   * dialog (a call that ended still waits out Timer M): sharing the dialog's would keep two.
   */
  private accepted(c: ClientCtx): void {
    const d = c.dialog;
    if (d === undefined) return;
    if (c.callId === d.callId) c.callId = d.callId;
    if (c.from === d.localParty) c.from = d.localParty;
  }

  /**
   * Dialog `d` ended (§12.3). Its INVITE may wait in Accepted for 32 s more (RFC 6026), in which
   * the core must still re-send the ACK for each copy of a 2xx, and ACK and end a 2xx from
   * another fork. Neither needs the app's record (the fork's values come from its 2xx), so the
   * record and the ended dialog go now; the transaction keeps the ACKs (EndedInvite).
   */
  dialogEnded(d: Dialog): void {
    const c = this.inviteByDialog.get(d.id);
    if (c === undefined || c.dialog !== d || c.txn.state !== 'Accepted') return;
    c.dialog = undefined;
    // A tag shared with the dialog is a slice of its To value (≈ 75 B), which would then stay.
    for (let a = c.acks; a !== undefined; a = a.next) a.tag = own(a.tag);
    const ended: EndedInvite = { ended: true, acks: c.acks };
    c.txn.appData = ended;
    this.forget(c);
  }

  /** TransactionUser.retransmitted2xx: a 2xx to an INVITE seen again: re-send the ACK sent for it (spec §7.7). */
  retransmitted2xx(txn: InviteClientTransaction, res: SipResponse): void {
    const c = txn.appData as ClientCtx | EndedInvite | undefined;
    const tag = tagOf(hdr(res, 'to')) ?? '';
    for (let a = c?.acks; a !== undefined; a = a.next) {
      if (a.tag === tag) { this.ctx.send(a.target, keptBytes(a.text)); return; }
    }
  }

  /** Timer B/F (§17.1.1.2, §17.1.2.2) or a transport error (§17.1.4): a made-up 408 or 503. */
  failed(txn: Transaction, status: 408 | 503): void {
    if (txn.kind !== 'ict' && txn.kind !== 'nict') return;
    const c = recordOf(txn);
    if (!c) return;
    if (status === 408) this.ctx.count.clientTimeouts++;
    if (c.dialog && !c.inDialog && c.dialog.state === 'early') this.ctx.dialogs.remove(c.dialog);
    if (c.method === 'INVITE' && !c.inDialog) this.rememberFailed(c.dialogId);
    if (!c.silent) this.madeUpFailure(c, status);
  }

  /** TransactionUser.terminated for a client transaction. */
  terminated(txn: ClientTransaction): void {
    const c = recordOf(txn);
    if (c) this.forget(c);
  }

  /** The record leaves the core's indexes (its transaction ended, or needs it no more). */
  private forget(c: ClientCtx): void {
    if (this.byId.get(c.txnId) === c) this.byId.delete(c.txnId);
    if (this.inviteByDialog.get(c.dialogId) === c) this.inviteByDialog.delete(c.dialogId);
  }

  /** BYE the server sends by itself, plus the unsolicited BYE frame for the app (spec §7.10). */
  byeOnOwn(d: Dialog, reason: string, app: AppConnection | undefined): void {
    const built = buildInDialog(this.ctx.listeners, d, 'BYE', undefined, [['reason', reason, 'Reason']], EMPTY);
    this.ctx.dialogs.remove(d);
    if (!built) return;
    this.start({ app, txnId: newId(), built, d, method: 'BYE', inDialog: true, silent: true });
    const l = built.local;
    this.ctx.sendToAppWith(app, sipFrameLeader({
      source: 'application', bytes: built.bytes.length, protocol: l.protocol, address: l.address, port: l.port,
      time: stackTime(this.ctx.clock.now()), txnId: 'unsolicited', dialogId: d.id,
    }), built.bytes);
  }

  private madeUpFailure(c: ClientCtx, status: 408 | 503): void {
    if (c.method === 'ACK' || c.method === 'CANCEL') return;
    const m = new OutMessage();
    m.add('via', c.topVia);
    m.add('from', c.from);
    // drachtio-server writes the made-up To without brackets (trace 04 #20, #23).
    let toUri = c.to;
    if (!tagOf(toUri)) {
      const gt = toUri.indexOf('>');
      if (toUri.startsWith('<') && gt > 0) toUri = toUri.slice(1, gt) + toUri.slice(gt + 1);
      toUri = `${toUri};tag=${randomToken()}`;
    }
    m.add('to', toUri);
    m.add('call-id', c.callId);
    m.add('cseq', `${c.cseqNum} ${c.method}`);
    const text = m.render(`SIP/2.0 ${status} ${REASONS[status]}`, EMPTY).toString('utf8');
    this.ctx.sendToApp(c.app, sipFramePayload({
      source: 'network', bytes: 0, protocol: c.txn.target.protocol, address: '', port: 0, time: stackTime(this.ctx.clock.now()),
      txnId: c.txnId, dialogId: c.dialogId,
    }, text));
  }

  /**
   * A 2xx from a second fork of our INVITE (§13.2.2.4): the app has its dialog with the first,
   * so the core ACKs this one and ends it with BYE itself; the app never hears of it.
   */
  private releaseExtraFork(c: ClientCtx, res: SipResponse, pkt: InboundPacket): void {
    const fork = Dialog.asUac({
      callId: c.callId, from: c.from, cseq: c.cseqNum, requestUri: c.requestUri,
      to: hdr(res, 'to') ?? c.to, contact: hdr(res, 'contact'), recordRoute: hdrAll(res, 'record-route'),
    }, this.bindingOf(c.txn, c.local, pkt));
    const ack = this.ackAndEndFork(fork, c.cseqNum);
    if (ack) this.rememberAck(c, fork.remoteTag, ack.bytes, ack.target);
  }

  /**
   * The same for a 2xx from another fork after the dialog of the first one ended (EndedInvite):
   * Call-ID, From and CSeq are the 2xx's own copies of ours (§8.2.6.2; the layer took it only
   * from where the INVITE went), and its Contact is the fork's target (§13.3.1.4: a 2xx
   * without one cannot be ACKed in its dialog, and is dropped).
   */
  private releaseForkAfterEnd(txn: InviteClientTransaction, ended: EndedInvite, res: SipResponse, pkt: InboundPacket): void {
    const callId = hdr(res, 'call-id');
    const from = hdr(res, 'from');
    const to = hdr(res, 'to');
    const contact = hdr(res, 'contact');
    const cseq = parseCSeq(hdr(res, 'cseq') ?? '');
    const local = this.ctx.listeners.forProtocol(txn.target.protocol, txn.target.local);
    if (!callId || !from || !to || !contact || !cseq || !local) return;
    const fork = Dialog.asUac({ callId, from, cseq: cseq.seq, requestUri: '', to, contact, recordRoute: hdrAll(res, 'record-route') }, this.bindingOf(txn, local, pkt));
    const ack = this.ackAndEndFork(fork, cseq.seq);
    if (ack) txn.appData = { ended: true, acks: { tag: fork.remoteTag, text: keepBytes(ack.bytes), target: ack.target, next: ended.acks } } satisfies EndedInvite;
  }

  /** ACK a fork's 2xx and end its dialog with BYE (§13.2.2.4); returns the ACK to keep. */
  private ackAndEndFork(fork: Dialog, cseqNum: number): Built | undefined {
    const ack = buildInDialog(this.ctx.listeners, fork, 'ACK', undefined, [], EMPTY, cseqNum);
    if (!ack) return undefined;
    this.ctx.send(ack.target, ack.bytes);
    const bye = buildInDialog(this.ctx.listeners, fork, 'BYE', undefined, [['reason', 'SIP;cause=200;text="Call completed elsewhere"', 'Reason']], EMPTY);
    if (bye) this.start({ app: undefined, txnId: newId(), built: bye, d: undefined, method: 'BYE', inDialog: true, silent: true });
    this.ctx.count.extraForksReleased++;
    return ack;
  }

  private bindingOf(txn: ClientTransaction, local: Listener, pkt: InboundPacket, appId = 0) {
    const t = txn.target;
    return {
      protocol: t.protocol, address: t.address, port: t.port, connectionId: pkt.connectionId ?? txn.connectionId,
      localKey: this.ctx.listeners.key(local), appId,
    };
  }

  private rememberFailed(dialogId: string): void {
    if (!dialogId) return;
    const now = this.ctx.clock.now();
    this.failedInvites.set(dialogId, now);
    // Bounded: forget entries older than 64*T1 (32 s by default) whenever the map grows.
    if (this.failedInvites.size > 1000) {
      for (const [k, t] of this.failedInvites) if (now - t > 64 * this.ctx.layer.timers.T1) this.failedInvites.delete(k);
    }
  }

  private pass(c: ClientCtx, pkt: InboundPacket): void {
    this.ctx.sendToAppWith(c.app, sipFrameLeader({
      source: 'network', bytes: pkt.data.length, protocol: pkt.source.protocol, address: pkt.source.address,
      port: pkt.source.port, time: stackTime(this.ctx.clock.now()), txnId: c.txnId, dialogId: c.dialogId,
    }), pkt.data);
  }

  /** Create or update the UAC dialog from a 2xx or reliable 1xx (§12.1.2); a re-INVITE's
   *  response refreshes the remote target only (§12.2.1.2). */
  private dialogFrom(c: ClientCtx, res: SipResponse, pkt: InboundPacket, confirm: boolean): void {
    if (c.inDialog) {
      c.dialog?.refreshTarget(hdr(res, 'contact'));
      return;
    }
    const r = { to: hdr(res, 'to') ?? c.to, contact: hdr(res, 'contact'), recordRoute: hdrAll(res, 'record-route'), requestUri: c.requestUri };
    let d = c.dialog;
    if (!d) {
      d = Dialog.asUac({ callId: c.callId, from: c.from, cseq: c.cseqNum, ...r }, this.bindingOf(c.txn, c.local, pkt, c.app?.id ?? 0));
      c.dialog = d;
      if (c.app) this.ctx.rememberApp(c.app);
      this.ctx.dialogs.add(d);
    } else {
      d.updateFromResponse(r, false);
    }
    if (confirm) d.confirm();
  }
}
