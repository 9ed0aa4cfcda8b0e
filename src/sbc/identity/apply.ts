// Carrying the verification result toward the core: the ATIS-1000074 `verstat` parameter on
// P-Asserted-Identity (or From), and keeping or stripping the Identity header per policy.
import type { IdentityResult, Verstat } from './verify.js';
import type { PeerIdentity } from './schema.js';
import { firstHeader, headerValues, type IdentityRequest } from './sipfields.js';

const VERSTAT_PARAM = /;verstat=[^;@?>]*/gi;

function uriWithVerstat(uri: string, verstat: Verstat): string {
  const colon = uri.indexOf(':');
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme === 'tel') return `${uri.replace(VERSTAT_PARAM, '')};verstat=${verstat}`;
  const at = uri.indexOf('@');
  if (at > colon) {
    // sip:+12025550100;verstat=TN-Validation-Passed@host;user=phone: the telephone-subscriber
    // parameters live in the user part (RFC 3966 inside RFC 3261 user).
    const user = uri.slice(colon + 1, at).replace(VERSTAT_PARAM, '');
    const host = uri.slice(at).replace(VERSTAT_PARAM, '');
    return `${uri.slice(0, colon + 1)}${user};verstat=${verstat}${host}`;
  }
  return `${uri.replace(VERSTAT_PARAM, '')};verstat=${verstat}`;
}

/** A name-addr/addr-spec header value with its URI carrying `verstat` (any earlier verstat,
 *  which a peer could have forged, is removed). */
export function withVerstat(value: string, verstat: Verstat): string {
  const lt = value.indexOf('<');
  const gt = lt >= 0 ? value.indexOf('>', lt) : -1;
  if (lt >= 0 && gt > lt) return `${value.slice(0, lt + 1)}${uriWithVerstat(value.slice(lt + 1, gt), verstat)}${value.slice(gt)}`;
  const semi = value.indexOf(';');
  const uri = (semi < 0 ? value : value.slice(0, semi)).trim();
  return `<${uriWithVerstat(uri, verstat)}>${semi < 0 ? '' : value.slice(semi)}`;
}

/** Remove any verstat parameter (used on values that come from peers, whatever the result). */
export function withoutVerstat(value: string): string {
  return value.replace(VERSTAT_PARAM, '');
}

export interface HeaderEdits {
  /** Headers to set (replacing any value the request had). */
  set: Record<string, string>;
  /** Headers to remove from what goes toward the core. */
  remove: string[];
}

/** What the B2BUA should change on the request it sends toward the core.
 *  `from` is the From value it is about to send (it may have rewritten it); `trustPai` is
 *  the peer's RFC 3325 trust (topology.trust_pai): an untrusted peer's own PAI is never
 *  re-asserted, only the number the verification proved. */
export function outwardHeaders(req: IdentityRequest, result: IdentityResult, policy: PeerIdentity, from?: string, trustPai = false): HeaderEdits {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  if (policy.mode !== 'off') {
    const pai = trustPai ? firstHeader(req, 'P-Asserted-Identity') : undefined;
    if (policy.verstat_on === 'pai') {
      if (pai) set['P-Asserted-Identity'] = withVerstat(pai, result.verstat);
      // A tel URI carries the verified number without the peer's host (topology hiding).
      else if (result.verdict === 'pass' && result.origTn) set['P-Asserted-Identity'] = `<tel:+${result.origTn};verstat=${result.verstat}>`;
    } else {
      const f = from ?? firstHeader(req, 'From');
      if (f) set['From'] = withVerstat(f, result.verstat);
      if (pai) set['P-Asserted-Identity'] = withoutVerstat(pai);
    }
  }
  if (policy.inbound_header === 'strip' || policy.mode === 'off') {
    remove.push('Identity', 'Identity-Info');
  } else if (result.identity) {
    set['Identity'] = result.identity;
    if (result.standard === 'rfc4474') {
      const info = firstHeader(req, 'Identity-Info');
      const date = firstHeader(req, 'Date');
      if (info) set['Identity-Info'] = info;
      if (date) set['Date'] = date;
    }
  } else {
    const all = headerValues(req, 'Identity');
    if (all.length) set['Identity'] = all.join(', ');
  }
  return { set, remove };
}
