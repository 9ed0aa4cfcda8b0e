// RFC 4028 session timers, as the B2BUA applies them to an established call.
//
// Contract:
// * The sides negotiate end to end: Session-Expires and Min-SE cross the B2BUA (topology
//   allowlist), so the interval in the callee's 2xx is the one both sides agreed on, and the
//   refresher (`uac` = caller, `uas` = callee) sends its refreshes through us.
// * `SessionTimer` watches such a call: every successful refresh (re-INVITE or UPDATE answered
//   2xx, in either direction) re-arms it; when none comes, it fires BEFORE the session expires
//   by min(32 s, interval/3), as RFC 4028 §10 says the side that did not refresh must, and the
//   call is ended with BYE on both legs.
// * When the sides negotiated nothing, peergate refreshes each leg itself every interval/2 (the
//   refresher's schedule of RFC 4028 §10) per policy: a refresh that fails (no answer, 408, 481)
//   means that side is gone, so `Refresher` reports it and the call is ended.
// * A request asking for less than our Min-SE is refused with 422 and our Min-SE (§6).
import type { Clock } from './clock.js';

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

/** Watches a negotiated session timer: fires when the session would expire with no refresh. */
export class SessionTimer {
  private handle: unknown;
  private stopped = false;

  constructor(private readonly clock: Clock, private intervalS: number, private readonly onExpire: () => void) {
    this.arm();
  }

  /** A refresh succeeded (2xx to a re-INVITE or UPDATE); `intervalS` when it changed the interval. */
  refreshed(intervalS?: number): void {
    if (this.stopped) return;
    if (intervalS !== undefined && intervalS > 0) this.intervalS = intervalS;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
  }

  private arm(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    const ms = (this.intervalS - expiryMarginS(this.intervalS)) * 1000;
    this.handle = this.clock.setTimeout(() => { if (!this.stopped) { this.stopped = true; this.onExpire(); } }, ms);
  }
}

/**
 * peergate as the refresher of one leg whose side negotiated no timer: every interval/2 it
 * sends `refresh()` (UPDATE or re-INVITE); a refresh that fails ends the call through `onDead`.
 * Refreshes that the call itself carries (any relayed re-INVITE/UPDATE answered 2xx) push the
 * next one back, so an active call costs no extra requests.
 */
export class Refresher {
  private handle: unknown;
  private stopped = false;
  private inFlight = false;

  constructor(
    private readonly clock: Clock,
    private readonly intervalS: number,
    private readonly refresh: () => Promise<void>,
    private readonly onDead: (err: unknown) => void,
  ) {
    this.arm();
  }

  /** The leg was just refreshed by a relayed request: the next refresh is a full half-interval away. */
  refreshed(): void {
    if (!this.stopped && !this.inFlight) this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
  }

  private arm(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = this.clock.setTimeout(() => this.fire(), (this.intervalS / 2) * 1000);
  }

  private fire(): void {
    if (this.stopped) return;
    this.inFlight = true;
    this.refresh().then(() => {
      this.inFlight = false;
      if (!this.stopped) this.arm();
    }, (err: unknown) => {
      this.inFlight = false;
      if (this.stopped) return;
      // 491 (glare) or a 5xx other than 503 leaves the session up (RFC 4028 §10 treats only a
      // missing answer, 408 and 481 as the session being gone): try again next half-interval.
      const status = (err as { status?: number } | undefined)?.status;
      if (status !== undefined && status !== 408 && status !== 481) { this.arm(); return; }
      this.stopped = true;
      this.onDead(err);
    });
  }
}
