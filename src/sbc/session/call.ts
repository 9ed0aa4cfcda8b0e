// One established B2BUA call (both legs up) and every way it ends.
//
// Contract:
// * `start()` attaches to both dialogs. drachtio-srf emits a dialog's 'destroy' synchronously
//   while it parses a BYE, and several wire frames (our 2xx echo, the caller's ACK and BYE) can
//   arrive in one read: a leg may already be gone before anyone could listen. So start() also
//   looks at `connected` and ends such a call at once (issue #16: calls stuck for ever).
// * A call ends exactly once, with a result counted in peergate_calls_total{result}:
//   caller_bye / callee_bye (a side hung up: the other leg gets BYE, carrying that side's
//   Reason when it gave one), or an ending peergate decides (session_expired, max_duration,
//   media_timeout, dialog_gone, shutdown): BYE on both legs with an RFC 3326 Reason header.
// * Every timer of the call is cleared when it ends. The timers are deadlines on the session
//   itself, in the process's one deadline queue (deadlines.ts), not timer objects of its own.
import type { Clock } from './clock.js';
import type { SessionTimerPolicy } from './schema.js';
import { expiryMarginS, type SessionExpires } from './timer.js';
import { deadlinesOf, type Deadline, type DeadlineQueue } from './deadlines.js';

/** What the session needs of a drachtio-srf Dialog. */
export interface LegDialog {
  readonly id: string;
  readonly connected: boolean;
  local: { sdp: string };
  on(event: 'destroy', fn: (this: LegDialog, req?: { get(name: string): string; has(name: string): boolean }) => void): unknown;
  destroy(opts?: { headers: Record<string, string> }): Promise<unknown> | unknown;
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number }>;
  modify(sdp: string): Promise<unknown>;
}

/** Endings peergate decides, with the Reason header (RFC 3326) both legs' BYE carry. */
export const PEERGATE_ENDINGS = {
  session_expired: 'SIP;cause=408;text="Session Expired"',
  max_duration: 'SIP;cause=200;text="Maximum Call Duration"',
  media_timeout: 'SIP;cause=408;text="Media Timeout"',
  dialog_gone: 'SIP;cause=481;text="Dialog Gone On Other Leg"',
  shutdown: 'SIP;cause=503;text="Node Shutting Down"',
  drain: 'SIP;cause=503;text="Node Draining"',
  drain_deadline: 'SIP;cause=503;text="Drain Deadline Reached"',
} as const;
export type PeergateEnding = keyof typeof PEERGATE_ENDINGS;
export type EndResult = 'caller_bye' | 'callee_bye' | PeergateEnding;

export interface CallSessionOptions {
  id: string;
  /** The caller's leg (we are its UAS) and the called leg (we are its UAC). */
  uas: LegDialog;
  uac: LegDialog;
  clock: Clock;
  /** 0 = no limit. */
  maxDurationS: number;
  /** The session timer the sides negotiated end to end (Session-Expires of the callee's 2xx). */
  negotiated: SessionExpires | undefined;
  timerPolicy: SessionTimerPolicy;
  /** Allow header values of each side (to pick UPDATE or re-INVITE for our refreshes). */
  allowA: string | undefined;
  allowB: string | undefined;
  /** Told once, when the call ends, before any BYE is sent (unless an owner is given). */
  onEnd?(result: EndResult): void;
  onRefreshFailed?(leg: 'A' | 'B', err: unknown): void;
}

/** Who hears how the call ends: called as methods (the B2BUA's call record is one). */
export interface SessionOwner {
  /** Told once, when the call ends, before any BYE is sent. */
  onEnd?(result: EndResult): void;
  onRefreshFailed?(leg: 'A' | 'B', err: unknown): void;
}

/** Nothing due (a deadline field). Not Infinity: deadlines stay small integers (V8 Smis, no
 *  boxed double per field and call). */
const NEVER = -1;
// Per-leg bits of `legBits` (leg A: << 0, leg B: << 3).
const REFRESHING = 1; // peergate refreshes this leg (RFC 4028 §10: no timer negotiated)
const IN_FLIGHT = 2;  // a refresh is out
const BY_UPDATE = 4;  // refreshed by UPDATE (else re-INVITE)

/**
 * The call's timers are deadlines (numbers) on this object, and the object is one entry of the
 * process's deadline queue (deadlines.ts): no timer object or closure per call.
 */
export class CallSession implements Deadline {
  readonly id: string;
  /** Wall clock (ms) when the call was established (media timeout, /admin/calls). */
  readonly startedAt: number;
  private readonly uas: LegDialog;
  private readonly uac: LegDialog;
  /** Who hears how the call ends: the B2BUA's record of the call (relay.ts finds it here). */
  readonly owner: SessionOwner;
  private readonly queue: DeadlineQueue;
  private readonly timerPolicy: SessionTimerPolicy;
  private ended = false;
  /** Reconciliation marks a call whose dialog it found gone, and ends it when still gone next time. */
  goneMark = false;
  /** Set by SessionTable.add: media inactivity check. */
  anchored = false;
  mediaTimeoutS = 0;
  /** The table the call is in (it leaves it when it ends). */
  table: { remove(id: string): void } | undefined;
  /** Queue entry (deadlines.ts). */
  dueAt = NEVER;
  slot = -1;
  /** Maximum duration, the negotiated timer's expiry, our next refresh of leg A / B (queue time). */
  private maxAt = NEVER;
  private expireAt = NEVER;
  private refreshAAt = NEVER;
  private refreshBAt = NEVER;
  /** The negotiated interval (s); 0: none. */
  private readonly watchS: number;
  private readonly maxDurationS: number;
  private legBits: number;

  constructor(o: CallSessionOptions, owner: SessionOwner = o) {
    this.id = o.id;
    this.startedAt = o.clock.now();
    this.uas = o.uas;
    this.uac = o.uac;
    this.owner = owner;
    this.queue = deadlinesOf(o.clock);
    this.timerPolicy = o.timerPolicy;
    this.watchS = o.negotiated?.intervalS ?? 0;
    this.maxDurationS = o.maxDurationS;
    const update = o.timerPolicy.refresh === 'update';
    this.legBits = (update && allowsUpdate(o.allowA) ? BY_UPDATE : 0) | (update && allowsUpdate(o.allowB) ? BY_UPDATE << 3 : 0);
  }

  get isEnded(): boolean { return this.ended; }
  get legs(): { uas: LegDialog; uac: LegDialog } { return { uas: this.uas, uac: this.uac }; }

  start(): void {
    const { uas, uac } = this;
    // One shared listener for every call: drachtio-srf calls it with the dialog as `this`.
    sessionsOf.set(uas, this);
    sessionsOf.set(uac, this);
    uas.on('destroy', onLegDestroyed);
    uac.on('destroy', onLegDestroyed);
    // A BYE parsed in the same read as our 2xx echo destroyed the leg before we listened.
    if (!uas.connected) { this.hungUp('caller_bye', uac, undefined); return; }
    if (!uac.connected) { this.hungUp('callee_bye', uas, undefined); return; }
    const now = this.queue.now();
    if (this.maxDurationS > 0) this.maxAt = now + this.maxDurationS * 1000;
    if (this.watchS > 0) {
      this.expireAt = now + watchMs(this.watchS);
    } else if (this.timerPolicy.refresh !== 'off') {
      // RFC 4028 §7.4: a leg without an SDP of ours can only be refreshed by UPDATE.
      if (!uas.local.sdp) this.legBits |= BY_UPDATE;
      if (!uac.local.sdp) this.legBits |= BY_UPDATE << 3;
      this.legBits |= REFRESHING | (REFRESHING << 3);
      this.refreshAAt = this.refreshBAt = now + this.timerPolicy.expires_s * 500;
    }
    this.schedule();
  }

  /** A re-INVITE or UPDATE crossed the call and was answered 2xx: both legs are alive and refreshed. */
  refreshed(): void {
    if (this.ended) return;
    const now = this.queue.now();
    if (this.expireAt !== NEVER) this.expireAt = now + watchMs(this.watchS);
    const next = now + this.timerPolicy.expires_s * 500;
    // A refresh of ours in flight re-arms that leg when it is answered.
    if ((this.legBits & (REFRESHING | IN_FLIGHT)) === REFRESHING) this.refreshAAt = next;
    if (((this.legBits >> 3) & (REFRESHING | IN_FLIGHT)) === REFRESHING) this.refreshBAt = next;
    this.schedule();
  }

  /** End the call from our side: BYE with a Reason on every leg still up; resolves when both are sent. */
  end(result: PeergateEnding): Promise<void> {
    if (!this.finish(result)) return Promise.resolve();
    const headers = { Reason: PEERGATE_ENDINGS[result] };
    return Promise.all([bye(this.uas, headers), bye(this.uac, headers)]).then(() => undefined);
  }

  /** The queue's call (deadlines.ts): whatever is due by `now`. */
  due(now: number): void {
    if (this.ended) return;
    if (this.maxAt !== NEVER && this.maxAt <= now) { void this.end('max_duration'); return; }
    if (this.expireAt !== NEVER && this.expireAt <= now) { void this.end('session_expired'); return; }
    if (this.refreshAAt !== NEVER && this.refreshAAt <= now) this.refresh(0);
    if (this.refreshBAt !== NEVER && this.refreshBAt <= now) this.refresh(3);
    this.schedule();
  }

  /** Leg `d` was destroyed by drachtio-srf (a BYE from its side). */
  legDestroyed(d: LegDialog, req: ByeRequest | undefined): void {
    if (d === this.uas) this.hungUp('caller_bye', this.uac, req);
    else this.hungUp('callee_bye', this.uas, req);
  }

  private schedule(): void {
    if (this.ended) return;
    const next = earlier(earlier(this.maxAt, this.expireAt), earlier(this.refreshAAt, this.refreshBAt));
    if (next === NEVER) this.queue.delete(this);
    else if (next !== this.dueAt || this.slot < 0) this.queue.set(this, next);
  }

  private hungUp(result: 'caller_bye' | 'callee_bye', other: LegDialog, req: ByeRequest | undefined): void {
    if (!this.finish(result)) return;
    let reason: string | undefined;
    try { reason = req?.has('Reason') ? req.get('Reason') : undefined; } catch { /* no Reason */ }
    bye(other, reason ? { Reason: reason } : undefined);
  }

  private finish(result: EndResult): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.queue.delete(this);
    this.maxAt = this.expireAt = this.refreshAAt = this.refreshBAt = NEVER;
    this.table?.remove(this.id);
    this.owner.onEnd?.(result);
    return true;
  }

  /** peergate refreshes one leg (shift 0: A, 3: B): UPDATE or re-INVITE, then every interval/2. */
  private refresh(shift: 0 | 3): void {
    if (shift === 0) this.refreshAAt = NEVER; else this.refreshBAt = NEVER;
    this.legBits |= IN_FLIGHT << shift;
    const d = shift === 0 ? this.uas : this.uac;
    sendRefresh(d, ((this.legBits >> shift) & BY_UPDATE) !== 0).then(() => {
      this.legBits &= ~(IN_FLIGHT << shift);
      this.rearm(shift);
    }, (err: unknown) => {
      this.legBits &= ~(IN_FLIGHT << shift);
      if (this.ended) return;
      // 491 (glare) or a 5xx other than 503 leaves the session up (RFC 4028 §10 treats only a
      // missing answer, 408 and 481 as the session being gone): try again next half-interval.
      const status = (err as { status?: number } | undefined)?.status;
      if (status !== undefined && status !== 408 && status !== 481) { this.rearm(shift); return; }
      this.owner.onRefreshFailed?.(shift === 0 ? 'A' : 'B', err);
      void this.end('session_expired');
    });
  }

  private rearm(shift: 0 | 3): void {
    if (this.ended) return;
    const next = this.queue.now() + this.timerPolicy.expires_s * 500;
    if (shift === 0) this.refreshAAt = next; else this.refreshBAt = next;
    this.schedule();
  }
}

type ByeRequest = { get(name: string): string; has(name: string): boolean };

/** Which call each leg belongs to, for the listeners all calls share ('destroy' here, the relay's). */
const sessionsOf = new WeakMap<object, CallSession>();

/** The session a leg's dialog belongs to (set by start()). */
export function sessionOf(dialog: object): CallSession | undefined {
  return sessionsOf.get(dialog);
}

function onLegDestroyed(this: LegDialog, req?: ByeRequest): void {
  sessionsOf.get(this)?.legDestroyed(this, req);
}

function earlier(a: number, b: number): number {
  return a === NEVER ? b : b === NEVER || a < b ? a : b;
}

/** RFC 4028 §10: the side that did not refresh ends the session min(32 s, interval/3) before it expires. */
function watchMs(intervalS: number): number {
  return Math.ceil((intervalS - expiryMarginS(intervalS)) * 1000);
}

async function sendRefresh(d: LegDialog, useUpdate: boolean): Promise<void> {
  if (!d.connected) throw Object.assign(new Error('dialog gone'), { status: 481 });
  if (useUpdate) {
    const res = await d.request({ method: 'UPDATE' });
    if (res.status >= 300) throw Object.assign(new Error(`UPDATE answered ${res.status}`), { status: res.status });
  } else {
    // RFC 4028 §7.4: a refresh re-INVITE offers the same session description again.
    await d.modify(d.local.sdp);
  }
}

function bye(d: LegDialog, headers: Record<string, string> | undefined): Promise<unknown> | undefined {
  if (!d.connected) return undefined;
  try {
    const p = d.destroy(headers ? { headers } : undefined);
    if (p instanceof Promise) return p.catch(() => undefined);
  } catch { /* the engine connection is gone: the engine ends its dialogs itself */ }
  return undefined;
}

/** Whether an Allow header value lists UPDATE (an absent Allow says nothing: RFC 3261 §20.5). */
export function allowsUpdate(allow: string | undefined): boolean {
  if (!allow) return false;
  return allow.split(',').some((m) => m.trim().toUpperCase() === 'UPDATE');
}
