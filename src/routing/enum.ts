// ENUM (RFC 6116) as the SPEERMINT lookup function: the called E.164 number → the SIP URIs
// its E2U+sip NAPTR records name, in order; then the route's allowlist decides which peer,
// if any, may receive each of them (an answer never routes to a host the policy does not name).
//
// Contract: lookupEnum(locator, number, cfg, dnssec) never throws:
//   { ok: true, targets: [{peer, uri}] }  (empty: no usable answer)
//   { ok: false, reason }                 (dnssec: answer not validated; dns_error)
// Non-terminal NAPTR rules (empty flags, RFC 6116 §3.2.1) are not followed.
import type { Locator } from './rfc3263.js';
import type { Dnssec, EnumConfig } from './schema.js';
import { compileNaptrRegexp, applyNaptrRegexp } from './naptr-regexp.js';
import { orderNaptr } from './srv.js';
import { parseTargetUri } from './rfc3263.js';
import { counter } from '../ops/metrics.js';

const E164 = /^\+[0-9]{1,15}$/;
const MAX_ANSWERS_USED = 16;

/** ENUM answers not used: bad_regexp, not_sip, not_allowed, no_match. */
export const enumRejectedTotal = counter('peergate_enum_rejected_total', 'ENUM NAPTR answers not used, by reason', ['reason']);
export const enumLookupsTotal = counter('peergate_enum_lookups_total', 'ENUM lookups by result', ['result']);

/** `+4420794600` under e164.arpa → `0.0.6.4.9.7.0.2.4.4.e164.arpa` (RFC 6116 §2.4). */
export function enumDomain(e164: string, suffix: string): string | undefined {
  if (!E164.test(e164)) return undefined;
  return `${[...e164.slice(1)].reverse().join('.')}.${suffix.replace(/\.$/, '')}`;
}

/** Does `host` match `pattern` (`d` exactly, `*.d` any name strictly under d)? */
export function domainAllowed(host: string, pattern: string): boolean {
  const h = host.toLowerCase();
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  return h === p;
}

export interface EnumTarget { peer: string; uri: string }

export async function lookupEnum(locator: Locator, e164: string, cfg: EnumConfig, dnssec: Dnssec): Promise<{ ok: true; targets: EnumTarget[] } | { ok: false; reason: 'dnssec' | 'dns_error' }> {
  if (!E164.test(e164)) { enumLookupsTotal.inc({ result: 'not_e164' }); return { ok: true, targets: [] }; }
  for (const suffix of cfg.suffixes) {
    const name = enumDomain(e164, suffix)!;
    const r = await locator.cached(name, 'NAPTR', dnssec !== 'off');
    if (!r.ok) { enumLookupsTotal.inc({ result: 'dns_error' }); return { ok: false, reason: 'dns_error' }; }
    if (dnssec === 'required' && !r.authenticated) { enumLookupsTotal.inc({ result: 'dnssec' }); return { ok: false, reason: 'dnssec' }; }
    const sip = orderNaptr(r.records.filter((n) => /^e2u\+sip$/i.test(n.services) && n.flags.toLowerCase() === 'u')).slice(0, MAX_ANSWERS_USED);
    // No E2U+sip record under this suffix: the next tree may know the number (RFC 6116 §3.4).
    if (sip.length === 0) continue;
    const targets: EnumTarget[] = [];
    for (const n of sip) {
      const sub = compileNaptrRegexp(n.regexp);
      if (typeof sub === 'string') { enumRejectedTotal.inc({ reason: 'bad_regexp' }); continue; }
      const uri = applyNaptrRegexp(sub, e164);
      if (uri === undefined) { enumRejectedTotal.inc({ reason: 'no_match' }); continue; }
      const t = parseTargetUri(uri);
      if (!t) { enumRejectedTotal.inc({ reason: 'not_sip' }); continue; }
      const peer = Object.entries(cfg.allow).find(([, domains]) => domains.some((d) => domainAllowed(t.host, d)))?.[0];
      if (!peer) { enumRejectedTotal.inc({ reason: 'not_allowed' }); continue; }
      targets.push({ peer, uri });
    }
    enumLookupsTotal.inc({ result: targets.length > 0 ? 'routed' : 'unusable' });
    return { ok: true, targets };
  }
  enumLookupsTotal.inc({ result: 'not_found' });
  return { ok: true, targets: [] };
}
