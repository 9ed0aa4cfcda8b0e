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
import type { CallSession } from './session/index.js';
import type { CallLog } from './outcome.js';
import type { Leg, MediaStage, Side } from './stages.js';

export interface RelayArgs {
  /** The caller's leg (A) and the called leg (B) and their sides. */
  uas: Dialog;
  uac: Dialog;
  caller: Side;
  callee: Side;
  policy: Policy;
  /** Our call id (rtpengine's call). */
  callId: string;
  media?: MediaStage;
  session: CallSession;
  /** The call's log lines (outcome.ts). */
  log: CallLog;
}

/** Relay in-dialog requests both ways for the life of the dialogs. */
export function relayInDialog(a: RelayArgs): void {
  relayOneWay(a.uas, a.uac, 'A', a.caller, a.callee, a);
  relayOneWay(a.uac, a.uas, 'B', a.callee, a.caller, a);
}

/** Requests arriving on `a` are re-originated on `b` with the receiving side's allowlist. */
function relayOneWay(a: Dialog, b: Dialog, aLeg: Leg, aSide: Side, bSide: Side, ctx: RelayArgs): void {
  const { policy, callId, media, session, log } = ctx;
  const allow = indexOf(policy).allowlist(bSide);
  const trust = trustBetween(aSide, bSide);
  a.on('modify', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
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
      session.refreshed();
    })().catch((err: { status?: number }) => {
      log.info({ err: String(err) }, 're-INVITE relay failed');
      if (!res.finalResponseSent) res.send(err.status && err.status >= 400 ? err.status : 500);
    });
  });
  // One listener for the four methods (it reads the method off the request): one closure per
  // leg rather than four, as it lives as long as the call (issue #18 item 5).
  const relayOther = (req: Srf.SrfRequest, res: Srf.SrfResponse): void => {
    const method = req.method;
    const get = headerReader(req);
    const headers = applyResourcePriority(allow.requestHeaders(get, trust), aSide, get('Resource-Priority'));
    const ct = get('Content-Type');
    if (ct && req.body) headers['Content-Type'] = ct;
    (b.request({ method, headers, body: req.body } as unknown as Srf.SrfRequest) as Promise<Srf.SrfResponse>)
      .then((r) => {
        res.send(r.status, r.reason, { headers: allow.requestHeaders(headerReader(r), trust, 'response'), ...(r.body ? { body: r.body } : {}) });
        if (method === 'UPDATE' && r.status >= 200 && r.status < 300) session.refreshed();
      })
      .catch((err: unknown) => { log.info({ err: String(err), method }, 'in-dialog relay failed'); if (!res.finalResponseSent) res.send(500); });
  };
  for (const event of ['info', 'update', 'message', 'notify'] as const) (a as unknown as NodeJS.EventEmitter).on(event, relayOther);
  // REFER across an interconnect would let a peer steer our core: not relayed.
  a.on('refer', refuseRefer);
}

function refuseRefer(_req: Srf.SrfRequest, res: Srf.SrfResponse): void {
  res.send(403, 'REFER Not Allowed', {});
}
