// In-dialog requests of an established call, relayed from one leg to the other: re-INVITE
// (RFC 3261 §14) with a media re-offer, UPDATE (RFC 3311), INFO (RFC 6086), MESSAGE
// (RFC 3428) and NOTIFY (RFC 6665), each with the receiving side's header allowlist
// (topology.ts); a successful re-INVITE or UPDATE is a session refresh (RFC 4028). REFER
// (RFC 3515) is refused: across an interconnect it would let a peer steer our core.
import type Srf from 'drachtio-srf';
import type { Policy } from '../policy/schema.js';
import { applyResourcePriority } from './limits/priority.js';
import { headerReader, type Dialog } from './request-view.js';
import { warningHeaders } from './requests.js';
import { indexOf, trustBetween } from './sides.js';
import { sessionOf, type CallSession } from './session/index.js';
import type { CallLog } from './outcome.js';
import type { Leg, MediaStage, Refusal, Side } from './stages.js';
import { decliningAnswer } from './media/sdp.js';

/** What the relay reads of an established call (established.ts); one record per call. */
export interface RelayCall {
  /** The caller's leg (A) and the called leg (B) and their sides. */
  readonly uas: Dialog;
  readonly uac: Dialog;
  readonly caller: Side;
  readonly callee: Side;
  readonly policy: Policy;
  /** Our call id (rtpengine's call). */
  readonly id: string;
  readonly media: MediaStage | undefined;
  readonly session: CallSession;
  /** The call's log lines (outcome.ts). */
  readonly log: CallLog;
}

/**
 * Relay in-dialog requests both ways for the life of the dialogs. The listeners are shared by
 * every call (drachtio-srf calls them with the dialog as `this`, which finds its call through
 * the session: session/call.ts `sessionOf`): a held call keeps no closure or scope for them
 * (issue #18 item 5).
 */
export function relayInDialog(call: RelayCall): void {
  for (const d of [call.uas, call.uac]) {
    const e = d as unknown as NodeJS.EventEmitter;
    // 'modify' is on every dialog from its start (relayReinvites).
    for (const event of ['info', 'update', 'message', 'notify'] as const) e.on(event, relayOther);
    // REFER across an interconnect would let a peer steer our core: not relayed.
    e.on('refer', refuseRefer);
  }
}

/**
 * drachtio-srf answers a re-INVITE by itself (200 with our last SDP, nothing relayed) when its
 * dialog has no 'modify' listener, and decides that as it reads the request. A re-INVITE read in
 * the same turn as the echo of our 2xx (the caller's ACK and re-INVITE right behind it) meets
 * the dialog before the call flow has wired it. So every dialog gets the relay's 'modify'
 * listener as drachtio-srf makes it (new-dialogs.ts; INFO, UPDATE, MESSAGE wait a turn in
 * drachtio-srf first).
 */
export function relayReinvites(d: Dialog): void {
  (d as unknown as NodeJS.EventEmitter).on('modify', relayModify);
}

/** Turns of 10 ms a re-INVITE waits for its call to be wired (the call flow needs microtasks). */
const UNWIRED_WAITS = 50;

/** The leg `d` of its call: where its requests go and with which sides; undefined once unknown. */
function legOf(d: Dialog): { call: RelayCall; aLeg: Leg; b: Dialog; aSide: Side; bSide: Side } | undefined {
  const call = sessionOf(d)?.owner as RelayCall | undefined;
  // An ended call takes no more media work: an offer now would open a relay session that
  // nothing ends (the call's end has already removed its own).
  if (!call || call.session.isEnded) return undefined;
  return d === call.uas
    ? { call, aLeg: 'A', b: call.uac, aSide: call.caller, bSide: call.callee }
    : { call, aLeg: 'B', b: call.uas, aSide: call.callee, bSide: call.caller };
}

type LegOfCall = NonNullable<ReturnType<typeof legOf>>;
type MediaStep = { ok: true; sdp: string } | { ok: false; refusal: Refusal };

/** One SDP of the call through its media stage: an offer or answer sent by this dialog's side
 *  (`a`) or by the other leg's side (`b`). Unchanged when the call has no media stage. */
function viaMedia(leg: LegOfCall, kind: 'offer' | 'answer', sender: 'a' | 'b', sdp: string): Promise<MediaStep> {
  const { call, aLeg, aSide, bSide } = leg;
  if (!call.media) return Promise.resolve({ ok: true, sdp });
  const fromA = sender === 'a';
  const args = { callId: call.id, sdp, leg: fromA ? aLeg : (aLeg === 'A' ? 'B' : 'A') as Leg, from: fromA ? aSide : bSide, to: fromA ? bSide : aSide, policy: call.policy };
  return kind === 'offer' ? call.media.offer(args) : call.media.answer(args);
}

/** A re-INVITE on one leg, re-originated on the other (with a media re-offer). */
function relayModify(this: Dialog, req: Srf.SrfRequest, res: Srf.SrfResponse, waited = 0): void {
  const leg = legOf(this);
  if (!leg) {
    // Not wired to its call yet (relayReinvites), or no call any more.
    if (waited < UNWIRED_WAITS && (this as unknown as { connected: boolean }).connected) {
      setTimeout(() => relayModify.call(this, req, res, waited + 1), 10);
      return;
    }
    res.send(481);
    return;
  }
  const { call, b } = leg;
  void (async () => {
    if (!req.body) { await relayOfferless(this, leg, res); return; }
    const o = await viaMedia(leg, 'offer', 'a', req.body);
    if (!o.ok) return res.send(o.refusal.status, o.refusal.reason, warningHeaders(o.refusal));
    const answer = await b.modify(o.sdp);
    let back = answer;
    if (answer) {
      const r = await viaMedia(leg, 'answer', 'b', answer);
      if (!r.ok) return res.send(r.refusal.status, r.refusal.reason, warningHeaders(r.refusal));
      back = r.sdp;
    }
    res.send(200, { body: back });
    call.session.refreshed();
  })().catch((err: { status?: number }) => {
    call.log.info({ err: String(err) }, 're-INVITE relay failed');
    if (!res.finalResponseSent) res.send(err.status && err.status >= 400 ? err.status : 500);
  });
}

type ModifyNoAck = (sdp: string, opts: { noAck: true }, cb: (err: unknown, sdp?: string, ack?: (sdp: string) => void) => void) => void;

/**
 * A re-INVITE without an offer (RFC 3261 §14.1): the other leg's 2xx offers and the
 * originator's ACK answers. Both go through the media stage as any offer and answer do, and
 * the other leg's 2xx is ACKed with the originator's answer; until that answer comes the other
 * leg waits for its ACK. An originator that never ACKs (64×T1), or a call that ends first, gets
 * the other leg ACKed with every stream declined (§13.2.2.4: a valid answer).
 */
async function relayOfferless(d: Dialog, leg: LegOfCall, res: Srf.SrfResponse): Promise<void> {
  const { call, b } = leg;
  const { offer, ack } = await new Promise<{ offer: string; ack: (sdp: string) => void }>((resolve, reject) => {
    (b.modify as unknown as ModifyNoAck).call(b, '', { noAck: true }, (err, sdp, ackFn) => {
      if (err) reject(err as Error);
      else resolve({ offer: sdp ?? '', ack: ackFn ?? (() => undefined) });
    });
  });
  const declined = decliningAnswer(offer) ?? '';
  // The call may have ended while the other leg answered.
  if (call.session.isEnded) { ack(declined); res.send(481); return; }
  const o = offer ? await viaMedia(leg, 'offer', 'b', offer) : undefined;
  if (o && !o.ok) { ack(declined); res.send(o.refusal.status, o.refusal.reason, warningHeaders(o.refusal)); return; }
  if (!o) { ack(''); res.send(488, 'Not Acceptable Here', {}); return; }
  // The originator's answer comes in its ACK (drachtio-srf emits 'ack' on the dialog); listen
  // before the 2xx goes out.
  const e = d as unknown as NodeJS.EventEmitter;
  const answer = await new Promise<string | undefined>((resolve) => {
    const done = (body: string | undefined): void => { clearTimeout(timer); e.off('ack', onAck); e.off('destroy', onEnd); resolve(body); };
    const onAck = (r: Srf.SrfRequest): void => done(r.body || undefined);
    const onEnd = (): void => done(undefined);
    const timer = setTimeout(onEnd, 64 * call.policy.engine.sip_timers.t1_ms);
    e.on('ack', onAck);
    e.once('destroy', onEnd);
    res.send(200, { body: o.sdp });
  });
  const a = answer === undefined ? undefined : await viaMedia(leg, 'answer', 'a', answer);
  ack(a?.ok ? a.sdp : declined);
  if (answer !== undefined) call.session.refreshed();
}

/** INFO, UPDATE, MESSAGE, NOTIFY: one listener for the four (it reads the method off the request).
 *  An UPDATE with an offer (RFC 3311) takes the media stage both ways, as a re-INVITE does: its
 *  SDP must not reach the other side around the relay (or around the SRTP policy). */
function relayOther(this: Dialog, req: Srf.SrfRequest, res: Srf.SrfResponse): void {
  const leg = legOf(this);
  if (!leg) { res.send(481); return; }
  const { call, b, aSide, bSide } = leg;
  const allow = indexOf(call.policy).allowlist(bSide);
  const trust = trustBetween(aSide, bSide);
  const method = req.method;
  const get = headerReader(req);
  const headers = applyResourcePriority(allow.requestHeaders(get, trust), aSide, get('Resource-Priority'));
  const ct = get('Content-Type');
  const offers = method === 'UPDATE' && !!req.body;
  void (async () => {
    let body = req.body;
    if (offers) {
      const o = await viaMedia(leg, 'offer', 'a', body);
      if (!o.ok) return res.send(o.refusal.status, o.refusal.reason, warningHeaders(o.refusal));
      body = o.sdp;
    }
    if (ct && body) headers['Content-Type'] = ct;
    const r = await (b.request({ method, headers, body } as unknown as Srf.SrfRequest) as Promise<Srf.SrfResponse>);
    let back = r.body;
    if (offers && back && r.status >= 200 && r.status < 300) {
      const a = await viaMedia(leg, 'answer', 'b', back);
      if (!a.ok) return res.send(a.refusal.status, a.refusal.reason, warningHeaders(a.refusal));
      back = a.sdp;
    }
    res.send(r.status, r.reason, { headers: allow.requestHeaders(headerReader(r), trust, 'response'), ...(back ? { body: back } : {}) });
    if (method === 'UPDATE' && r.status >= 200 && r.status < 300) call.session.refreshed();
  })().catch((err: unknown) => { call.log.info({ err: String(err), method }, 'in-dialog relay failed'); if (!res.finalResponseSent) res.send(500); });
}

function refuseRefer(_req: Srf.SrfRequest, res: Srf.SrfResponse): void {
  res.send(403, 'REFER Not Allowed', {});
}
