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
// * Every timer of the call is cleared when it ends.
import type { Clock } from './clock.js';
import type { SessionTimerPolicy } from './schema.js';
import { SessionTimer, Refresher, type SessionExpires } from './timer.js';

/** What the session needs of a drachtio-srf Dialog. */
export interface LegDialog {
  readonly id: string;
  readonly connected: boolean;
  local: { sdp: string };
  on(event: 'destroy', fn: (req?: { get(name: string): string; has(name: string): boolean }) => void): unknown;
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
  /** Told once, when the call ends, before any BYE is sent. */
  onEnd(result: EndResult): void;
  onRefreshFailed?(leg: 'A' | 'B', err: unknown): void;
}

export class CallSession {
  readonly id: string;
  readonly startedAt: number;
  private ended = false;
  private maxTimer: unknown;
  private watch: SessionTimer | undefined;
  private readonly refreshers: Refresher[] = [];
  /** Reconciliation marks a call whose dialog it found gone, and ends it when still gone next time. */
  goneMark = false;

  constructor(private readonly o: CallSessionOptions) {
    this.id = o.id;
    this.startedAt = o.clock.now();
  }

  get isEnded(): boolean { return this.ended; }
  get legs(): { uas: LegDialog; uac: LegDialog } { return { uas: this.o.uas, uac: this.o.uac }; }

  start(): void {
    const { uas, uac, clock } = this.o;
    uas.on('destroy', (req) => this.hungUp('caller_bye', uac, req));
    uac.on('destroy', (req) => this.hungUp('callee_bye', uas, req));
    // A BYE parsed in the same read as our 2xx echo destroyed the leg before we listened.
    if (!uas.connected) { this.hungUp('caller_bye', uac, undefined); return; }
    if (!uac.connected) { this.hungUp('callee_bye', uas, undefined); return; }
    if (this.o.maxDurationS > 0) this.maxTimer = clock.setTimeout(() => this.end('max_duration'), this.o.maxDurationS * 1000);
    if (this.o.negotiated) {
      this.watch = new SessionTimer(clock, this.o.negotiated.intervalS, () => this.end('session_expired'));
    } else if (this.o.timerPolicy.refresh !== 'off') {
      this.refreshers.push(this.refresher('A', uas, this.o.allowA), this.refresher('B', uac, this.o.allowB));
    }
  }

  /** A re-INVITE or UPDATE crossed the call and was answered 2xx: both legs are alive and refreshed. */
  refreshed(): void {
    this.watch?.refreshed();
    for (const r of this.refreshers) r.refreshed();
  }

  /** End the call from our side: BYE with a Reason on every leg still up; resolves when both are sent. */
  end(result: PeergateEnding): Promise<void> {
    if (!this.finish(result)) return Promise.resolve();
    const headers = { Reason: PEERGATE_ENDINGS[result] };
    return Promise.all([bye(this.o.uas, headers), bye(this.o.uac, headers)]).then(() => undefined);
  }

  private hungUp(result: 'caller_bye' | 'callee_bye', other: LegDialog, req: { get(name: string): string; has(name: string): boolean } | undefined): void {
    if (!this.finish(result)) return;
    let reason: string | undefined;
    try { reason = req?.has('Reason') ? req.get('Reason') : undefined; } catch { /* no Reason */ }
    bye(other, reason ? { Reason: reason } : undefined);
  }

  private finish(result: EndResult): boolean {
    if (this.ended) return false;
    this.ended = true;
    if (this.maxTimer !== undefined) this.o.clock.clearTimeout(this.maxTimer);
    this.watch?.stop();
    for (const r of this.refreshers) r.stop();
    this.o.onEnd(result);
    return true;
  }

  private refresher(leg: 'A' | 'B', d: LegDialog, allow: string | undefined): Refresher {
    const useUpdate = this.o.timerPolicy.refresh === 'update' && allowsUpdate(allow) || !d.local.sdp;
    const send = async (): Promise<void> => {
      if (!d.connected) throw Object.assign(new Error('dialog gone'), { status: 481 });
      if (useUpdate) {
        const res = await d.request({ method: 'UPDATE' });
        if (res.status >= 300) throw Object.assign(new Error(`UPDATE answered ${res.status}`), { status: res.status });
      } else {
        // RFC 4028 §7.4: a refresh re-INVITE offers the same session description again.
        await d.modify(d.local.sdp);
      }
    };
    return new Refresher(this.o.clock, this.o.timerPolicy.expires_s, send, (err) => {
      this.o.onRefreshFailed?.(leg, err);
      this.end('session_expired');
    });
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
