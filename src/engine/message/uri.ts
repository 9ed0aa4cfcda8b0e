// SIP/SIPS URIs (RFC 3261 §19.1) and tel URIs (RFC 3966): parse by scanning, no regex per call.
import type { SipUri } from './types.js';
import { HOST, URIC, parseDigits } from './chars.js';

/** Whether `s` is free of characters that can never occur in a URI (SP, controls, `<>"`, non-ASCII). */
export function isUriText(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || URIC[c] !== 1) return false;
  }
  return true;
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
export function isHost(s: string): boolean {
  if (s.length === 0) return false;
  if (s.charCodeAt(0) === 91) {
    // '[' IPv6 ']': hex digits, ':' and '.' (embedded IPv4) only.
    if (s.charCodeAt(s.length - 1) !== 93 || s.length < 4) return false;
    for (let i = 1; i < s.length - 1; i++) {
      const c = s.charCodeAt(i);
      const l = c | 0x20;
      if (!((c >= 48 && c <= 58) || (l >= 0x61 && l <= 0x66) || c === 46)) return false;
    }
    return true;
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || HOST[c] !== 1) return false;
  }
  return true;
}

/** Split `host[:port]` (IPv6 aware). Returns null when malformed. */
export function splitHostPort(s: string): { host: string; port?: number } | null {
  let hostEnd: number;
  if (s.charCodeAt(0) === 91) {
    const close = s.indexOf(']');
    if (close < 0) return null;
    hostEnd = close + 1;
    if (hostEnd !== s.length && s.charCodeAt(hostEnd) !== 58) return null;
  } else {
    const colon = s.indexOf(':');
    hostEnd = colon < 0 ? s.length : colon;
  }
  const host = s.slice(0, hostEnd);
  if (!isHost(host)) return null;
  if (hostEnd === s.length) return { host };
  const port = parseDigits(s, hostEnd + 1, s.length, 65535);
  if (port < 0) return null;
  return { host, port };
}

/** Parse `;name[=value]` pairs of a URI (no whitespace allowed), names lower-cased. */
function parseUriParams(s: string, from: number, to: number, out: Map<string, string>): boolean {
  let i = from;
  while (i < to) {
    // s[i] === ';'
    let end = s.indexOf(';', i + 1);
    if (end < 0 || end > to) end = to;
    const eq = s.indexOf('=', i + 1);
    if (eq >= 0 && eq < end) {
      if (eq === i + 1) return false;
      out.set(s.slice(i + 1, eq).toLowerCase(), s.slice(eq + 1, end));
    } else {
      if (end === i + 1) return false; // empty parameter (";;")
      out.set(s.slice(i + 1, end).toLowerCase(), '');
    }
    i = end;
  }
  return true;
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
  let rest = colon + 1;
  let user: string | undefined;
  let password: string | undefined;
  // userinfo ends at the first '@' ('@' is not allowed unescaped in user, host or params).
  const at = text.indexOf('@', rest);
  if (at >= 0) {
    const userinfo = text.slice(rest, at);
    const pw = userinfo.indexOf(':');
    if (pw >= 0) {
      user = userinfo.slice(0, pw);
      password = userinfo.slice(pw + 1);
    } else user = userinfo;
    if (user.length === 0) return null;
    rest = at + 1;
  }
  const q = text.indexOf('?', rest);
  const end = q < 0 ? text.length : q;
  let semi = text.indexOf(';', rest);
  if (semi < 0 || semi > end) semi = end;
  const hp = splitHostPort(text.slice(rest, semi));
  if (hp === null) return null;
  if (semi < end && !parseUriParams(text, semi, end, params)) return null;
  if (q >= 0) {
    let i = q + 1;
    while (i <= text.length) {
      let amp = text.indexOf('&', i);
      if (amp < 0) amp = text.length;
      const eq = text.indexOf('=', i);
      if (eq < 0 || eq > amp || eq === i) return null;
      headers.set(text.slice(i, eq), text.slice(eq + 1, amp));
      i = amp + 1;
    }
  }
  const uri: SipUri = { scheme: scheme as 'sip' | 'sips', host: hp.host, params, headers };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (hp.port !== undefined) uri.port = hp.port;
  return uri;
}

function parseTel(text: string, from: number): SipUri | null {
  let semi = text.indexOf(';', from);
  if (semi < 0) semi = text.length;
  const number = text.slice(from, semi);
  if (number.length === 0) return null;
  // global-number-digits / local-number-digits: digits, hex, '*', '#', '+', visual separators.
  for (let i = 0; i < number.length; i++) {
    const c = number.charCodeAt(i);
    const l = c | 0x20;
    const ok =
      (c >= 48 && c <= 57) || (l >= 0x61 && l <= 0x66) || c === 42 || c === 35 || c === 43 || c === 45 || c === 46 || c === 40 || c === 41;
    if (!ok) return null;
  }
  const params = new Map<string, string>();
  if (semi < text.length && !parseUriParams(text, semi, text.length, params)) return null;
  return { scheme: 'tel', user: number, host: '', params, headers: new Map() };
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
