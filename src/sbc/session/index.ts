// Call lifetime for the B2BUA (issue #16): an established call becomes a CallSession in the
// SessionTable, with the policy's maximum duration, session timers and media timeout for the
// peer on the far side. b2bua.ts calls `establish()` once both legs are up.
import type { Policy, Peer } from '../../policy/schema.js';
import { CallSession, sessionOf, type EndResult, type LegDialog, type SessionOwner } from './call.js';
import type { Clock } from './clock.js';
import { SessionTable, type MediaActivity } from './table.js';
import { parseSessionExpires, intervalTooSmall } from './timer.js';

export { CallSession, SessionTable, intervalTooSmall, sessionOf };
export type { EndResult, LegDialog, SessionOwner };
export { PEERGATE_ENDINGS, type PeergateEnding } from './call.js';
export { systemClock, type Clock } from './clock.js';
export type { MediaActivity } from './table.js';

type HeaderSource = { get(name: string): string; has(name: string): boolean } | undefined;

function header(m: HeaderSource, name: string): string | undefined {
  try { return m?.has(name) ? m.get(name) : undefined; } catch { return undefined; }
}

/** The B2BUA's table of established calls, swept every `sessions.reconcile_interval_s` of the running policy. */
export function sessionTable(
  clock: Clock, policy: () => Policy, dialogExists: ((id: string) => boolean) | undefined,
  media: { activity?(callId: string): Promise<MediaActivity> } | undefined,
): SessionTable {
  const table = new SessionTable({
    clock,
    ...(dialogExists ? { dialogExists } : {}),
    ...(media?.activity ? { mediaActivity: (id: string) => media.activity!(id) } : {}),
  });
  table.start(() => policy().sessions.reconcile_interval_s);
  return table;
}

/** The values that apply to a call with `peer` (undefined: core to core), per-peer overrides first. */
export function sessionLimits(policy: Policy, peer: Peer | undefined): { maxDurationS: number; mediaTimeoutS: number } {
  const g = policy.sessions;
  return {
    maxDurationS: peer?.sessions.max_duration_s ?? g.max_duration_s,
    mediaTimeoutS: peer?.sessions.media_timeout_s ?? g.media_timeout_s,
  };
}

export interface EstablishArgs {
  id: string;
  uas: LegDialog & { req?: HeaderSource };
  uac: LegDialog & { res?: HeaderSource };
  policy: Policy;
  /** The peer on the far side of the interconnect (undefined: core to core). */
  peer: Peer | undefined;
  anchored: boolean;
  clock: Clock;
  /** Told how the call ends (methods, called on it: no closure per call). */
  owner: SessionOwner;
}

/** Make the call a session, start its timers and add it to `table` (unless it already ended). */
export function establish(table: SessionTable, a: EstablishArgs): CallSession {
  const limits = sessionLimits(a.policy, a.peer);
  const call = new CallSession({
    id: a.id, uas: a.uas, uac: a.uac, clock: a.clock, maxDurationS: limits.maxDurationS,
    // The callee's 2xx carries the interval both sides agreed on (RFC 4028 §9).
    negotiated: parseSessionExpires(header(a.uac.res, 'Session-Expires') ?? header(a.uac.res, 'x')),
    timerPolicy: a.policy.sessions.session_timer,
    // Read once here; the session keeps only whether each side allows UPDATE.
    allowA: header(a.uas.req, 'Allow'), allowB: header(a.uac.res, 'Allow'),
  }, a.owner);
  table.add(call, { anchored: a.anchored, timeoutS: limits.mediaTimeoutS });
  call.start();
  return call;
}
