// RFC 4028 session timers, as the B2BUA applies them to an established call.
//
// Contract:
// * The sides negotiate end to end: Session-Expires and Min-SE cross the B2BUA (topology
//   allowlist), so the interval in the callee's 2xx is the one both sides agreed on, and the
//   refresher (`uac` = caller, `uas` = callee) sends its refreshes through us.
// * CallSession (call.ts) watches such a call: every successful refresh (re-INVITE or UPDATE
//   answered 2xx, in either direction) pushes its deadline back; when none comes, the call ends
//   BEFORE the session expires by min(32 s, interval/3) (`expiryMarginS`), as RFC 4028 §10 says
//   the side that did not refresh must, with BYE on both legs.
// * When the sides negotiated nothing, peergate refreshes each leg itself every interval/2 (the
//   refresher's schedule of RFC 4028 §10) per policy: a refresh that fails (no answer, 408, 481)
//   means that side is gone and the call is ended (call.ts); 491 or another 5xx is tried again
//   next half-interval.
// * A request asking for less than our Min-SE is refused with 422 and our Min-SE (§6).

/** Session-Expires (RFC 4028 §4): `1800;refresher=uac`. */
export interface SessionExpires { intervalS: number; refresher: 'uac' | 'uas' | undefined }

/** Parse a Session-Expires (or its compact form `x`) value; undefined when absent or malformed. */
export function parseSessionExpires(v: string | undefined): SessionExpires | undefined {
  if (!v) return undefined;
  const [delta, ...params] = v.split(';');
  const intervalS = Number(delta!.trim());
  if (!Number.isInteger(intervalS) || intervalS <= 0) return undefined;
  let refresher: SessionExpires['refresher'];
  for (const p of params) {
    const [k, val] = p.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'refresher' && (val === 'uac' || val === 'uas')) refresher = val;
  }
  return { intervalS, refresher };
}

/** Min-SE (RFC 4028 §5): a delta-seconds value, undefined when absent or malformed. */
export function parseMinSe(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const n = Number(v.split(';')[0]!.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * RFC 4028 §6: a request whose Session-Expires is below our Min-SE is answered 422 carrying
 * our Min-SE. Returns the 422 headers, or undefined when the request is acceptable.
 */
export function intervalTooSmall(sessionExpires: string | undefined, minSeS: number): { status: 422; reason: string; headers: Record<string, string> } | undefined {
  const se = parseSessionExpires(sessionExpires);
  if (!se || se.intervalS >= minSeS) return undefined;
  return { status: 422, reason: 'Session Interval Too Small', headers: { 'Min-SE': String(minSeS) } };
}

/** RFC 4028 §10: the side that does not refresh ends the session this long before it expires. */
export function expiryMarginS(intervalS: number): number {
  return Math.min(32, intervalS / 3);
}
