// SIP header helpers for identity: addr-spec extraction, telephone-number canonicalisation
// (RFC 8224 §8.3), and splitting/parsing Identity header values. Regexes are module-level. URI,
// name-addr and telephone-number rules are the SIP grammar's (src/sip/grammar).
import { addrSpecOf, canonicalTelephoneNumber, isTelephoneShaped } from '../../sip/grammar/index.js';

/** The request view the identity stage needs (independent of drachtio-srf). `headers(name)`
 *  returns every value of a header, matching its name case-insensitively. */
export interface IdentityRequest {
  method: string;
  uri: string;
  headers(name: string): string[];
  body: Buffer | string;
  source?: { address: string; port: number; transport?: string };
}

const COMPACT: Record<string, string> = { from: 'f', to: 't', 'call-id': 'i', contact: 'm', identity: 'y', 'identity-info': 'n' };
const USER_PHONE = /;user=phone(?:;|$|\?)/i;
const ANY_WS = /\s+/g;

// Compact form by header name as callers spell it (a few constants): one Map lookup per call
// instead of lower-casing the name and a keyed lookup. null: the header has no compact form.
const compactOf = new Map<string, string | null>();

/** All values of a header, trying the compact form when the long one is absent. */
export function headerValues(req: IdentityRequest, name: string): string[] {
  const v = req.headers(name);
  if (v.length) return v;
  let c = compactOf.get(name);
  if (c === undefined) {
    c = COMPACT[name.toLowerCase()] ?? null;
    if (compactOf.size < 64) compactOf.set(name, c);
  }
  return c ? req.headers(c) : v;
}

export function firstHeader(req: IdentityRequest, name: string): string | undefined {
  return headerValues(req, name)[0];
}

/** The addr-spec (URI) of a name-addr or addr-spec header value, e.g. From/To/Contact (the
 *  SIP grammar's reader). */
export const addrSpec: (value: string) => string = addrSpecOf;

/** The user part of a sip/sips URI or the number of a tel URI (without its parameters). */
export function uriUser(uri: string): { scheme: string; user: string | undefined; userPhone: boolean } {
  const colon = uri.indexOf(':');
  const scheme = colon > 0 ? uri.slice(0, colon).toLowerCase() : '';
  const rest = uri.slice(colon + 1);
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    return { scheme, user: semi < 0 ? rest : rest.slice(0, semi), userPhone: true };
  }
  const at = rest.indexOf('@');
  if (at < 0) return { scheme, user: undefined, userPhone: false };
  const userinfo = rest.slice(0, at);
  const semi = userinfo.indexOf(';');
  const pw = userinfo.indexOf(':');
  let end = userinfo.length;
  if (semi >= 0) end = semi;
  if (pw >= 0 && pw < end) end = pw;
  const userPhone = USER_PHONE.test(rest.slice(at));
  return { scheme, user: safeDecode(userinfo.slice(0, end)), userPhone };
}

function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try { return decodeURIComponent(s); } catch { return s; }
}


/** RFC 8224 §8.3: a telephone number in canonical form (digits only, no '+', no visual
 *  separators), or undefined when the URI's user part is not a telephone number. */
export function canonicalTn(uri: string): string | undefined {
  // uriUser's parse, inline: no result object per call (this runs for From, To and PAI).
  const colon = uri.indexOf(':');
  let user: string;
  if (colon === 3 && (uri.charCodeAt(0) | 32) === 116 /* t */ && (uri.charCodeAt(1) | 32) === 101 /* e */ && (uri.charCodeAt(2) | 32) === 108 /* l */) {
    const semi = uri.indexOf(';', 4);
    user = semi < 0 ? uri.slice(4) : uri.slice(4, semi);
  } else {
    const at = uri.indexOf('@', colon + 1);
    if (at < 0) return undefined;
    let end = at;
    for (let i = colon + 1; i < at; i++) {
      const c = uri.charCodeAt(i);
      if (c === 59 /* ; */ || c === 58 /* : */) { end = i; break; }
    }
    user = safeDecode(uri.slice(colon + 1, end));
    // Without user=phone only a number-shaped user part is a telephone number (RFC 8224 §8.3).
    if (!isTelephoneShaped(user) && (uri.indexOf(';', at) < 0 || !USER_PHONE.test(uri.slice(at)))) return undefined;
  }
  if (!user) return undefined;
  return canonicalTelephoneNumber(user);
}

/** RFC 8224 §8.3 canonical telephone number of a PASSporT claim or URI user part (the SIP
 *  grammar's canonicalTelephoneNumber: no '+', no separators, 1–32 of [0-9#*]; else undefined). */
export const canonicalNumber: (tn: string) => string | undefined = canonicalTelephoneNumber;

/** Split a header value that may hold several comma-joined Identity fields (outside <> and quotes). */
export function splitIdentityValues(values: readonly string[]): readonly string[] {
  // Nearly always one field, trimmed already: the header's own array, not a copy.
  if (values.length === 1) {
    const v = values[0]!;
    if (v.length && v.charCodeAt(0) > 32 && v.charCodeAt(v.length - 1) > 32 && !v.includes(',')) return values;
  }
  const out: string[] = [];
  for (const v of values) {
    if (!v.includes(',')) { const t = v.trim(); if (t) out.push(t); continue; }
    let depth = 0;
    let quoted = false;
    let start = 0;
    for (let i = 0; i < v.length; i++) {
      const c = v[i];
      if (c === '"') quoted = !quoted;
      else if (!quoted && c === '<') depth++;
      else if (!quoted && c === '>') depth--;
      else if (!quoted && depth === 0 && c === ',') { const t = v.slice(start, i).trim(); if (t) out.push(t); start = i + 1; }
    }
    const t = v.slice(start).trim();
    if (t) out.push(t);
  }
  return out;
}

/** `<token>;name=value;name=<uri>` → token and lower-cased parameter map (angle brackets kept off). */
export function parseIdentityValue(value: string): { token: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let i = 0;
  let token: string;
  if (value[0] === '"') {
    // RFC 4474 signed-identity-digest is a quoted string, possibly folded.
    const end = value.indexOf('"', 1);
    token = value.slice(1, end < 0 ? value.length : end).replace(ANY_WS, '');
    i = end < 0 ? value.length : end + 1;
  } else {
    const semi = value.indexOf(';');
    token = value.slice(0, semi < 0 ? value.length : semi).trim();
    i = semi < 0 ? value.length : semi;
  }
  while (i < value.length) {
    if (value[i] !== ';') { i++; continue; }
    i++;
    const eq = value.indexOf('=', i);
    let next = value.indexOf(';', i);
    if (eq < 0 || (next >= 0 && next < eq)) {
      const name = value.slice(i, next < 0 ? value.length : next).trim().toLowerCase();
      if (name) params.set(name, '');
      i = next < 0 ? value.length : next;
      continue;
    }
    const name = value.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (value[j] === ' ') j++;
    let v: string;
    if (value[j] === '<') {
      const gt = value.indexOf('>', j);
      v = value.slice(j + 1, gt < 0 ? value.length : gt);
      next = value.indexOf(';', gt < 0 ? value.length : gt);
    } else if (value[j] === '"') {
      const q = value.indexOf('"', j + 1);
      v = value.slice(j + 1, q < 0 ? value.length : q);
      next = value.indexOf(';', q < 0 ? value.length : q);
    } else {
      v = value.slice(j, next < 0 ? value.length : next).trim();
    }
    params.set(name, v);
    i = next < 0 ? value.length : next;
  }
  return { token, params };
}

const NO_PARAMS: ReadonlyMap<string, string> = new Map();
const PARAMS_CACHE_MAX = 256;
const PARAMS_CACHE_MAX_LEN = 1024;
const paramsCache = new Map<string, ReadonlyMap<string, string>>();
let lastParamsText = '';
let lastParams: ReadonlyMap<string, string> | undefined;

/** parseIdentityValue, with the parameter map memoised by the parameter text (from the first
 *  ';' on) when the token is not quoted: a signer sends the same `;info=<…>;alg=…;ppt=…` on
 *  every PASSporT. Bounded. The map may be shared between calls: read it, do not modify it. */
export function parseIdentityValueShared(value: string): { token: string; params: ReadonlyMap<string, string> } {
  if (value[0] === '"') return parseIdentityValue(value);
  const semi = value.indexOf(';');
  if (semi < 0) return { token: value.trim(), params: NO_PARAMS };
  const token = value.slice(0, semi).trim();
  const text = value.slice(semi);
  // The previous parameter text is compared first: the Map would hash the new string.
  if (lastParams && text === lastParamsText) return { token, params: lastParams };
  let params = paramsCache.get(text);
  if (!params) {
    // Same parameter parse as for the whole value: the token before the ';' does not affect it.
    params = parseIdentityValue(`x${text}`).params;
    if (text.length > PARAMS_CACHE_MAX_LEN) return { token, params };
    if (paramsCache.size >= PARAMS_CACHE_MAX) paramsCache.delete(paramsCache.keys().next().value!);
    paramsCache.set(text, params);
  }
  lastParamsText = text;
  lastParams = params;
  return { token, params };
}

/** The body as a string for RFC 4474's digest (bytes taken as they are: latin1 round-trips). */
export function bodyText(body: Buffer | string): string {
  return typeof body === 'string' ? body : body.toString('utf8');
}
