// SIP/SIPS URIs (RFC 3261 §19.1) and tel URIs (RFC 3966): parse by scanning; the few regexes are
// built once at load.
import type { SipUri } from './types.js';
import { HOST, HOST_CHARS_RE, PORT_RE, parseDigits } from './chars.js';

/** Characters allowed in a URI (RFC 3986 reserved + unreserved + '%'), inside a regex class. */
export const URI_CHARS_RE = "A-Za-z0-9\\-_.!~*'()%;/?:@&=+$,\\[\\]#";
// A regex scans a run of them natively, faster than a charCodeAt loop.
const URI_TEXT = new RegExp(`^[${URI_CHARS_RE}]+$`);

/** Whether s[from..to) is non-empty and free of characters that can never occur in a URI
 *  (SP, controls, `<>"`, non-ASCII). */
export function isUriText(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  return URI_TEXT.test(from === 0 && to === s.length ? s : s.slice(from, to));
}

/** Index of the ':' ending a valid URI scheme (ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")), or -1. */
export function schemeEnd(s: string, from = 0): number {
  const first = s.charCodeAt(from) | 0x20;
  if (first < 0x61 || first > 0x7a) return -1;
  for (let i = from + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) return i; // ':'
    const l = c | 0x20;
    if ((l >= 0x61 && l <= 0x7a) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) continue;
    return -1;
  }
  return -1;
}

/** A host: hostname / IPv4 (chars of HOST, not empty) or an IPv6 reference in brackets. */
export function isHost(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  if (s.charCodeAt(from) === 91) {
    // '[' IPv6 ']': hex digits, ':' and '.' (embedded IPv4) only.
    if (s.charCodeAt(to - 1) !== 93 || to - from < 4) return false;
    for (let i = from + 1; i < to - 1; i++) {
      const c = s.charCodeAt(i);
      const l = c | 0x20;
      if (!((c >= 48 && c <= 58) || (l >= 0x61 && l <= 0x66) || c === 46)) return false;
    }
    return true;
  }
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || HOST[c] !== 1) return false;
  }
  return true;
}

// Out-parameters of scanHostPort/scanSipUri (no result object on the hot path; an object, not
// module `let`s, which pay a hole check on every access).
const st = { hostEnd: 0, hostPort: -1, userEnd: -1, passwordColon: -1, hostStart: 0, uriHeaders: false };

/** Validate `host[:port]` in s[from..to) (IPv6 aware); sets st.hostEnd and st.hostPort (-1 if none). */
function scanHostPort(s: string, from: number, to: number): boolean {
  let he: number;
  if (s.charCodeAt(from) === 91) {
    const close = s.indexOf(']', from);
    if (close < 0 || close >= to) return false;
    he = close + 1;
    if (he !== to && s.charCodeAt(he) !== 58) return false;
  } else {
    const colon = s.indexOf(':', from);
    he = colon < 0 || colon >= to ? to : colon;
  }
  if (!isHost(s, from, he)) return false;
  st.hostEnd = he;
  if (he === to) {
    st.hostPort = -1;
    return true;
  }
  st.hostPort = parseDigits(s, he + 1, to, 65535);
  return st.hostPort >= 0;
}

/** Split `host[:port]` (IPv6 aware). Returns null when malformed. */
export function splitHostPort(s: string): { host: string; port?: number } | null {
  if (!scanHostPort(s, 0, s.length)) return null;
  const host = s.slice(0, st.hostEnd);
  return st.hostPort < 0 ? { host } : { host, port: st.hostPort };
}

/** Parse `;name[=value]` pairs of a URI (no whitespace allowed), names lower-cased.
 *  With out === null only validates. */
function parseUriParams(s: string, from: number, to: number, out: Map<string, string> | null): boolean {
  let i = from;
  while (i < to) {
    // s[i] === ';'
    let end = s.indexOf(';', i + 1);
    if (end < 0 || end > to) end = to;
    const eq = s.indexOf('=', i + 1);
    if (eq >= 0 && eq < end) {
      if (eq === i + 1) return false;
      if (out !== null) out.set(s.slice(i + 1, eq).toLowerCase(), s.slice(eq + 1, end));
    } else {
      if (end === i + 1) return false; // empty parameter (";;")
      if (out !== null) out.set(s.slice(i + 1, end).toLowerCase(), '');
    }
    i = end;
  }
  return true;
}


/** Validate a sip:/sips: URI from `from` (just after "sip:"); fills params/headers when given. */
function scanSipUri(text: string, from: number, params: Map<string, string> | null, headers: Map<string, string> | null): boolean {
  let rest = from;
  // userinfo ends at the first '@' ('@' is not allowed unescaped in user, host or params).
  const at = text.indexOf('@', rest);
  st.userEnd = at;
  st.passwordColon = -1;
  if (at >= 0) {
    const pw = text.indexOf(':', rest);
    if (pw >= 0 && pw < at) st.passwordColon = pw;
    if ((st.passwordColon >= 0 ? st.passwordColon : at) === rest) return false; // empty user
    rest = at + 1;
  }
  st.hostStart = rest;
  const q = text.indexOf('?', rest);
  const end = q < 0 ? text.length : q;
  let semi = text.indexOf(';', rest);
  if (semi < 0 || semi > end) semi = end;
  if (!scanHostPort(text, rest, semi)) return false;
  if (semi < end && !parseUriParams(text, semi, end, params)) return false;
  st.uriHeaders = q >= 0;
  if (q >= 0) {
    let i = q + 1;
    while (i <= text.length) {
      let amp = text.indexOf('&', i);
      if (amp < 0) amp = text.length;
      const eq = text.indexOf('=', i);
      if (eq < 0 || eq > amp || eq === i) return false;
      if (headers !== null) headers.set(text.slice(i, eq), text.slice(eq + 1, amp));
      i = amp + 1;
    }
  }
  return true;
}

export const URI_OK = 0;
export const URI_INVALID = 1;
export const URI_WITH_HEADERS = 2;
export const URI_OTHER_SCHEME = 3;

// The usual sip:/sips: URI (`sip:user@host:port;param=value;flag`, no `?headers`), checked in one
// regex: whatever it matches, the scan below classifies as URI_OK. No '@' outside the userinfo,
// which ends at the first '@'; the user does not start with ':' (an empty user); ports <= 65535.
const USER_CHARS_RE = "A-Za-z0-9\\-_.!~*'()%+&=$,";
const SIP_URI_FAST = new RegExp(
  `^sips?:(?:[${USER_CHARS_RE}][${USER_CHARS_RE}:]*@)?[${HOST_CHARS_RE}]+(?::${PORT_RE})?` +
    `(?:;[A-Za-z0-9\\-_.!~*'()%+]+(?:=[A-Za-z0-9\\-_.!~*'()%+:/&$,=]*)?)*$`,
);

/** Classify text without building a SipUri (hot path): URI_OK for a well-formed sip:/sips:/tel:
 *  URI, URI_WITH_HEADERS when it is well-formed but carries `?headers`, URI_OTHER_SCHEME for
 *  well-formed URI text of another scheme, URI_INVALID otherwise. */
export function checkUri(text: string): number {
  if (SIP_URI_FAST.test(text)) return URI_OK;
  const colon = schemeEnd(text);
  if (colon < 0 || !isUriText(text, colon + 1)) return URI_INVALID;
  const c0 = text.charCodeAt(0) | 0x20;
  const c1 = text.charCodeAt(1) | 0x20;
  const c2 = text.charCodeAt(2) | 0x20;
  if (colon === 3 && c0 === 0x74 && c1 === 0x65 && c2 === 0x6c) return parseTel(text, colon + 1) !== null ? URI_OK : URI_INVALID;
  const sip = c0 === 0x73 && c1 === 0x69 && c2 === 0x70;
  if (!sip || (colon !== 3 && !(colon === 4 && (text.charCodeAt(3) | 0x20) === 0x73))) return URI_OTHER_SCHEME;
  if (!scanSipUri(text, colon + 1, null, null)) return URI_INVALID;
  return st.uriHeaders ? URI_WITH_HEADERS : URI_OK;
}

/** Whether text is a well-formed sip:, sips: or tel: URI (`allowHeaders` false also rejects
 *  `?headers`, which a Request-URI may not carry). */
export function isValidUri(text: string, allowHeaders = true): boolean {
  const c = checkUri(text);
  return c === URI_OK || (allowHeaders && c === URI_WITH_HEADERS);
}

/** Parse a sip:, sips: or tel: URI. Returns null for other schemes or malformed text.
 *  `user` and `password` stay escaped as written (compare with `unescapeUri`). */
export function parseUri(text: string): SipUri | null {
  if (typeof text !== 'string') return null;
  const colon = schemeEnd(text);
  if (colon < 0 || !isUriText(text, colon + 1)) return null;
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'tel') return parseTel(text, colon + 1);
  if (scheme !== 'sip' && scheme !== 'sips') return null;
  const params = new Map<string, string>();
  const headers = new Map<string, string>();
  if (!scanSipUri(text, colon + 1, params, headers)) return null;
  const uri: SipUri = { scheme: scheme as 'sip' | 'sips', host: text.slice(st.hostStart, st.hostEnd), params, headers };
  if (st.userEnd >= 0) {
    if (st.passwordColon >= 0) {
      uri.user = text.slice(colon + 1, st.passwordColon);
      uri.password = text.slice(st.passwordColon + 1, st.userEnd);
    } else uri.user = text.slice(colon + 1, st.userEnd);
  }
  if (st.hostPort >= 0) uri.port = st.hostPort;
  return uri;
}

function parseTel(text: string, from: number): SipUri | null {
  let semi = text.indexOf(';', from);
  if (semi < 0) semi = text.length;
  if (semi === from) return null;
  // global-number-digits / local-number-digits: digits, hex, '*', '#', '+', visual separators.
  for (let i = from; i < semi; i++) {
    const c = text.charCodeAt(i);
    const l = c | 0x20;
    const ok =
      (c >= 48 && c <= 57) || (l >= 0x61 && l <= 0x66) || c === 42 || c === 35 || c === 43 || c === 45 || c === 46 || c === 40 || c === 41;
    if (!ok) return null;
  }
  const params = new Map<string, string>();
  if (semi < text.length && !parseUriParams(text, semi, text.length, params)) return null;
  return { scheme: 'tel', user: text.slice(from, semi), host: '', params, headers: new Map() };
}

export function formatUri(uri: SipUri): string {
  let s: string;
  if (uri.scheme === 'tel') {
    s = `tel:${uri.user ?? ''}`;
  } else {
    s = `${uri.scheme}:`;
    if (uri.user !== undefined) s += uri.password !== undefined ? `${uri.user}:${uri.password}@` : `${uri.user}@`;
    s += uri.host;
    if (uri.port !== undefined) s += `:${uri.port}`;
  }
  for (const [k, v] of uri.params) s += v === '' ? `;${k}` : `;${k}=${v}`;
  if (uri.headers.size > 0) {
    let first = true;
    for (const [k, v] of uri.headers) {
      s += `${first ? '?' : '&'}${k}=${v}`;
      first = false;
    }
  }
  return s;
}

/** Decode %HH escapes (RFC 3261 §19.1.2); invalid escapes are left as written (RFC 4475 §3.1.1.5). */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 37 && i + 2 < s.length && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      out += s[i];
      i++;
    }
  }
  return out;
}

function isHex(c: number): boolean {
  const l = c | 0x20;
  return (c >= 48 && c <= 57) || (l >= 0x61 && l <= 0x66);
}

/** The host of a sip:/sips: URI without port or IPv6 brackets (`sip:a@[2001:db8::1]:5060` →
 *  `2001:db8::1`); '' for a tel: URI, another scheme or malformed text. What routing compares a
 *  route's `domain` with. */
export function uriHost(uri: string): string {
  const u = parseUri(uri);
  if (u === null || u.scheme === 'tel') return '';
  const h = u.host;
  return h.charCodeAt(0) === 91 ? h.slice(1, -1) : h;
}

/** `host[:port]` of a sip:/sips: URI as written (brackets kept), or '' (tel, other, malformed). */
export function uriHostPort(uri: string): string {
  const u = parseUri(uri);
  if (u === null || u.scheme === 'tel') return '';
  return u.port === undefined ? u.host : `${u.host}:${u.port}`;
}

/** The user of a sip:/sips: URI (before any password) or the number of a tel: URI, still
 *  escaped as written; undefined when there is none or the URI is not sip/sips/tel. */
export function uriUser(uri: string): string | undefined {
  return parseUri(uri)?.user;
}
