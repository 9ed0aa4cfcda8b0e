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
import type { Leg, MediaStage, Side } from './stages.js';

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
    e.on('modify', relayModify);
    for (const event of ['info', 'update', 'message', 'notify'] as const) e.on(event, relayOther);
    // REFER across an interconnect would let a peer steer our core: not relayed.
    e.on('refer', refuseRefer);
  }
}

/** The leg `d` of its call: where its requests go and with which sides; undefined once unknown. */
function legOf(d: Dialog): { call: RelayCall; aLeg: Leg; b: Dialog; aSide: Side; bSide: Side } | undefined {
  const call = sessionOf(d)?.owner as RelayCall | undefined;
  if (!call) return undefined;
  return d === call.uas
    ? { call, aLeg: 'A', b: call.uac, aSide: call.caller, bSide: call.callee }
    : { call, aLeg: 'B', b: call.uas, aSide: call.callee, bSide: call.caller };
}

/** A re-INVITE on one leg, re-originated on the other (with a media re-offer). */
function relayModify(this: Dialog, req: Srf.SrfRequest, res: Srf.SrfResponse): void {
  const leg = legOf(this);
  if (!leg) { res.send(481); return; }
  const { call, aLeg, b, aSide, bSide } = leg;
  const { policy, id: callId, media } = call;
  void (async () => {
    let sdp = req.body;
    if (media && sdp) {
      const o = await media.offer({ callId, sdp, leg: aLeg, from: aSide, to: bSide, policy });
      if (!o.ok) return res.send(o.refusal.status, o.refusal.reason, warningHeaders(o.refusal));
      sdp = o.sdp;
    }
    const answer = await b.modify(sdp);
    let back = answer;
    if (media && answer) {
      const r = await media.answer({ callId, sdp: answer, leg: aLeg === 'A' ? 'B' : 'A', from: bSide, to: aSide, policy });
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

/** INFO, UPDATE, MESSAGE, NOTIFY: one listener for the four (it reads the method off the request). */
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
  if (ct && req.body) headers['Content-Type'] = ct;
  (b.request({ method, headers, body: req.body } as unknown as Srf.SrfRequest) as Promise<Srf.SrfResponse>)
    .then((r) => {
      res.send(r.status, r.reason, { headers: allow.requestHeaders(headerReader(r), trust, 'response'), ...(r.body ? { body: r.body } : {}) });
      if (method === 'UPDATE' && r.status >= 200 && r.status < 300) call.session.refreshed();
    })
    .catch((err: unknown) => { call.log.info({ err: String(err), method }, 'in-dialog relay failed'); if (!res.finalResponseSent) res.send(500); });
}

function refuseRefer(_req: Srf.SrfRequest, res: Srf.SrfResponse): void {
  res.send(403, 'REFER Not Allowed', {});
}
