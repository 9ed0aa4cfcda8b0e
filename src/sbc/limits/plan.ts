// What one call's admission asks of the store (RFC 6404 §4.9), worked out in one place for the
// two that ask it: the B2BUA's limits stage (index.ts, over the store or its IPC client) and the
// primary's pre-admission of an INVITE (src/app/preadmit.ts, on the memory store, synchronously).
import type { AdmitResult, RateSpec, SessionScope } from '../../store/types.js';
import type { GlobalLimits, PeerLimits } from './schema.js';
import { flat } from '../../flat-string.js';
import type { PreAdmittedReason } from '../../sip/admission-header.js';

/** The limits that apply to one request: its peer's (absent for core) and the global ones. */
export interface AppliedLimits {
  peer?: Partial<PeerLimits>;
  global?: Partial<GlobalLimits>;
}

/** The scope names sessions count against (also what admin/metrics read back). */
export const GLOBAL_SCOPE = 'global';
export const peerScope = (peerId: string): string => `peer:${peerId}`;

export interface AdmissionPlan {
  /** The peer's call rate (undefined: none, or a call from the core). */
  rate: RateSpec | undefined;
  /** A priority call's own bucket, tried when `rate` refuses (cps × reserved share). */
  reserved: RateSpec | undefined;
  /** One slot in each, all or none; a priority call's limits raised by the reserved share. */
  scopes: SessionScope[];
  /** Retry-After of a session-limit refusal. */
  retryAfterS: number;
}

export type PlannedRefusal = { reason: PreAdmittedReason; retryAfterS: number };

const scopeNames = new Map<string, string>();

/** The scope name of a peer's sessions, one string per peer (not one per call). */
export function peerScopeName(peerId: string): string {
  let name = scopeNames.get(peerId);
  if (name === undefined) { name = flat(peerScope(peerId)); scopeNames.set(peerId, name); }
  return name;
}

/**
 * Call rate first (cheap to refuse a flood), then one slot in every session scope. A `priority`
 * call may go past each limit by the reserved share (RFC 6404 §4.9), and past the peer's call
 * rate on a bucket of its own. Sessions are counted per peer even without a limit, so the count
 * is there when one is set.
 */
export function admissionPlan(peerId: string | undefined, limits: AppliedLimits, priority: boolean): AdmissionPlan {
  const peer = limits.peer;
  const global = limits.global;
  const share = priority ? global?.priority?.reserved_share ?? 0 : 0;
  const raise = (limit: number | undefined): number | undefined => (limit === undefined || share <= 0 ? limit : limit + Math.max(1, Math.ceil(limit * share)));
  const rate = peerId !== undefined && peer?.cps !== undefined
    ? { key: `cps:${peerId}`, ratePerS: peer.cps, burst: peer.burst ?? Math.max(1, Math.ceil(peer.cps)) }
    : undefined;
  const reserved = rate && share > 0
    ? { key: `cps-priority:${peerId}`, ratePerS: rate.ratePerS * share, burst: Math.max(1, Math.ceil(rate.burst * share)) }
    : undefined;
  const scopes: SessionScope[] = [];
  if (peerId !== undefined) scopes.push({ scope: peerScopeName(peerId), limit: raise(peer?.sessions) });
  scopes.push({ scope: GLOBAL_SCOPE, limit: raise(global?.sessions) });
  return { rate, reserved, scopes, retryAfterS: global?.retry_after_s ?? 5 };
}

/** Whether a first admit refused on the call rate only and the reserved bucket is to be tried. */
export function tryReserved(plan: AdmissionPlan, r: AdmitResult): plan is AdmissionPlan & { reserved: RateSpec } {
  return !r.ok && r.rateLimited && plan.reserved !== undefined;
}

/** The store's answer as a refusal (undefined: admitted). */
export function refusalOf(plan: AdmissionPlan, r: AdmitResult): PlannedRefusal | undefined {
  if (r.ok) return undefined;
  if (r.rateLimited) return { reason: 'cps', retryAfterS: Math.max(1, Math.ceil(r.retryAfterMs / 1000)) };
  return { reason: r.scope === GLOBAL_SCOPE ? 'global_sessions' : 'sessions', retryAfterS: plan.retryAfterS };
}

/** A slot's ttl: the policy's, else the default (a worker's keepAlive refreshes at a third of it). */
export function sessionTtlMs(global: Partial<GlobalLimits> | undefined, defaultMs: number): number {
  return global?.session_ttl_s !== undefined ? global.session_ttl_s * 1000 : defaultMs;
}
