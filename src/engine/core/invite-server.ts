// The UAS core's INVITE duties after the response leaves (the transaction layer handles the
// rest of RFC 3261 §17.2.1 and RFC 6026's Accepted state):
//   RFC 3261 §13.3.1.4  the 2xx is retransmitted by the core until its ACK (T1 doubling to T2)
//                       and, with no ACK in 64*T1, the dialog is ended with BYE (wire spec §7.10)
//   RFC 3261 §13.2.2.4 / RFC 6026 §8.1  the ACK for a 2xx is not a transaction: it reaches the
//                       app with the INVITE's transaction id (spec §3); copies are absorbed
//   RFC 3262 §3, §7.1   reliable provisionals: RSeq, retransmission (UDP) until the PRACK
// Its state is per dialog and stops when the dialog ends (DialogStore observer → dialogEnded).
import type { SipRequest } from '../message/types.js';
import type { InboundPacket, SendTarget } from '../transport/types.js';
import { TwoXxRetransmitter, type InboundMeta } from '../transaction/index.js';
import type { Dialog } from '../dialog/dialog.js';
import { sipFramePayload, stackTime, newId } from '../wire/leaders.js';
import type { CoreContext } from './context.js';
import { hdr, hdrAll, parseRequestCSeq, parseVia, tagOf } from './fields.js';
import { appView } from '../message/app-view.js';
import { formatTlsIdentity } from '../../sip/tls-identity.js';

interface PendingAck { retransmitter: TwoXxRetransmitter; txnId: string }
interface PendingReliable { retransmitter: TwoXxRetransmitter; rseq: number }

export class InviteServer {
  private readonly ctx: CoreContext;
  /** No ACK for our 2xx within 64*T1: the caller ends the dialog with BYE. */
  private readonly onAckTimeout: (d: Dialog) => void;
  private readonly pendingAcks = new Map<string, PendingAck>();
  private readonly pendingReliable = new Map<string, PendingReliable>();

  constructor(ctx: CoreContext, onAckTimeout: (d: Dialog) => void) {
    this.ctx = ctx;
    this.onAckTimeout = onAckTimeout;
  }

  /** RFC 3262 §7.1: RSeq of the next reliable provisional (random start, then one more). */
  nextRseq(d: Dialog | undefined): number {
    const random = (): number => 1 + Math.floor(Math.random() * 0x7fffffff);
    return d ? d.nextRseq(random) : random();
  }

  /** A reliable provisional went out: retransmit it until PRACKed (RFC 3262 §3), over UDP only. */
  reliableSent(d: Dialog, target: SendTarget, bytes: Buffer, rseq: number): void {
    this.stopReliable(d.id);
    if (target.protocol !== 'udp') return;
    const retransmitter = new TwoXxRetransmitter({
      clock: this.ctx.clock, T1: this.ctx.layer.timers.T1, T2: this.ctx.layer.timers.T2,
      retransmit: () => this.ctx.send(target, bytes),
      giveUp: () => { if (this.pendingReliable.get(d.id)?.retransmitter === retransmitter) this.pendingReliable.delete(d.id); },
    });
    this.pendingReliable.set(d.id, { retransmitter, rseq });
    retransmitter.start();
  }

  /** A PRACK in dialog `d` (RFC 3262 §3): its RAck names the provisional it acknowledges. */
  prack(d: Dialog, req: SipRequest): void {
    const rack = hdr(req, 'rack');
    const p = this.pendingReliable.get(d.id);
    if (!rack || !p) return;
    const rseq = Number(rack.trim().split(/\s+/)[0]);
    if (rseq === p.rseq) this.stopReliable(d.id);
  }

  /** The app's 2xx to an INVITE went out (§13.3.1.4): retransmit it until the ACK; over a
   *  direct TCP/TLS hop only the 64*T1 give-up runs. */
  answered(d: Dialog, txnId: string, bytes: Buffer, target: SendTarget): void {
    this.stopReliable(d.id);
    const retransmitter = new TwoXxRetransmitter({
      clock: this.ctx.clock, T1: this.ctx.layer.timers.T1, T2: this.ctx.layer.timers.T2, noRetransmit: target.protocol !== 'udp',
      retransmit: () => this.ctx.send(target, bytes),
      giveUp: () => {
        if (this.pendingAcks.get(d.id)?.retransmitter !== retransmitter) return;
        this.pendingAcks.delete(d.id);
        this.onAckTimeout(d);
      },
    });
    this.pendingAcks.set(d.id, { retransmitter, txnId });
    retransmitter.start();
  }

  /** Whether our 2xx in this dialog still waits for its ACK. */
  awaitingAck(dialogId: string): boolean {
    return this.pendingAcks.has(dialogId);
  }

  /** TransactionUser.ack: the ACK for a 2xx (§13.2.2.4), passed to the app that owns the dialog. */
  ack(req: SipRequest, meta: InboundMeta): void {
    const pkt = meta as InboundPacket;
    const callId = hdr(req, 'call-id');
    const toTag = tagOf(hdr(req, 'to'));
    const top = hdrAll(req, 'via')[0];
    const via = top ? parseVia(top) : null;
    if (!callId || !toTag || !via) return;
    const d = this.ctx.dialogs.findByLocal(callId, toTag);
    if (!d) return;
    // An ACK from another source than the dialog's peer neither stops our 2xx nor reaches the app.
    if (!d.acceptsFrom({ protocol: pkt.source.protocol, address: pkt.source.address, connectionId: pkt.connectionId })) {
      this.ctx.foreign(pkt, 'ACK');
      return;
    }
    const cseqV = hdr(req, 'cseq');
    const seq = cseqV === undefined ? undefined : parseRequestCSeq(cseqV)?.seq;
    const pending = this.pendingAcks.get(d.id);
    if (pending) {
      pending.retransmitter.stop();
      this.pendingAcks.delete(d.id);
    }
    // A copy of an ACK already delivered is absorbed.
    if (!d.noteAck(seq, pending !== undefined)) { this.ctx.count.retransmissionsAbsorbed++; return; }
    const txnId = pending ? pending.txnId : newId();
    const rw = appView(req, pkt.data.toString('utf8'), pkt.source.address, pkt.source.port,
      pkt.tls ? formatTlsIdentity(pkt.tls) : undefined);
    if (!rw) return;
    this.ctx.sendToApp(this.ctx.app(d.binding.appId), sipFramePayload({
      source: 'network', bytes: pkt.data.length, protocol: '', address: pkt.source.address, port: pkt.source.port,
      time: stackTime(this.ctx.clock.now()), txnId, dialogId: d.id,
    }, rw.text));
  }

  /** Stop retransmitting a reliable provisional of this dialog (PRACK, final response, CANCEL). */
  stopReliable(dialogId: string): void {
    const p = this.pendingReliable.get(dialogId);
    if (!p) return;
    p.retransmitter.stop();
    this.pendingReliable.delete(dialogId);
  }

  /** The dialog ended (§12.3): nothing of it is retransmitted any more. */
  dialogEnded(d: Dialog): void {
    const p = this.pendingAcks.get(d.id);
    if (p) { p.retransmitter.stop(); this.pendingAcks.delete(d.id); }
    this.stopReliable(d.id);
  }

  /** Stop every timer (engine shutdown). */
  close(): void {
    for (const p of this.pendingAcks.values()) p.retransmitter.stop();
    for (const p of this.pendingReliable.values()) p.retransmitter.stop();
  }
}
