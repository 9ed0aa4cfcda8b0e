// The few header values the transaction layer needs (RFC 3261 §17.1.3, §17.2.3): top Via
// branch and sent-by, CSeq, tags. Hand-written scanners: these run for every message, so no
// per-call regexes and only the substrings actually needed are allocated.
import type { HeaderField, SipMessage } from '../message/types.js';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this magic cookie. */
export const MAGIC_COOKIE = 'z9hG4bK';

const WS_RUN = /\s+/g;

export interface TopVia {
  /** branch parameter as received ('' when absent). */
  branch: string;
  /** sent-by (host[:port]), host lower-cased, whitespace removed. */
  sentBy: string;
  /** Transport token, upper-case (`UDP`, `TCP`, `TLS`, …). */
  transport: string;
  /** The header field itself (the whole top Via value, used by the RFC 2543 fallback). */
  field: HeaderField;
}

export function firstHeader(msg: SipMessage, name: string): HeaderField | undefined {
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i]!;
    if (h.name === name) return h;
  }
  return undefined;
}

export function headerValue(msg: SipMessage, name: string): string | undefined {
  return firstHeader(msg, name)?.value;
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** Parses `SIP/2.0/UDP host:port;branch=…;…` (one Via value). undefined when malformed. */
export function parseVia(field: HeaderField): TopVia | undefined {
  const v = field.value;
  const n = v.length;
  // sent-protocol: three tokens separated by '/', with optional LWS around the slashes.
  let slashes = 0;
  let i = 0;
  for (; i < n && slashes < 2; i++) if (v.charCodeAt(i) === 47) slashes++;
  if (slashes < 2) return undefined;
  while (i < n && isWs(v.charCodeAt(i))) i++;
  const tStart = i;
  while (i < n && !isWs(v.charCodeAt(i)) && v.charCodeAt(i) !== 59) i++;
  if (i === tStart) return undefined;
  let transport = v.slice(tStart, i);
  if (hasLower(transport)) transport = transport.toUpperCase();
  while (i < n && isWs(v.charCodeAt(i))) i++;
  const sStart = i;
  while (i < n && v.charCodeAt(i) !== 59) i++;
  let end = i;
  while (end > sStart && isWs(v.charCodeAt(end - 1))) end--;
  if (end === sStart) return undefined;
  let sentBy = v.slice(sStart, end);
  // SWS is allowed around the ':' of sent-by; it is rare, so only then pay for the removal.
  if (sentBy.indexOf(' ') >= 0 || sentBy.indexOf('\t') >= 0) sentBy = sentBy.replace(WS_RUN, '');
  if (hasUpper(sentBy)) sentBy = sentBy.toLowerCase();
  const branch = branchParam(v, i);
  return { branch, sentBy, transport, field };
}

/**
 * Only the branch of the top Via ('' when absent, undefined when there is no Via): all a
 * response needs for client-transaction matching (RFC 3261 §17.1.3), without the other slices.
 */
export function topViaBranch(msg: SipMessage): string | undefined {
  const f = firstHeader(msg, 'via');
  if (f === undefined) return undefined;
  return branchParam(f.value, 0);
}

/**
 * The branch parameter of a Via value. Fast path: a literal `;branch=` found by the native
 * indexOf when no quoted string could hide a fake one; otherwise the general scanner.
 */
function branchParam(v: string, from: number): string {
  if (v.indexOf('"') < 0) {
    const at = v.indexOf(';branch=', from);
    if (at >= 0) {
      const start = at + 8;
      let end = start;
      const n = v.length;
      while (end < n) {
        const c = v.charCodeAt(end);
        if (c === 59 || c === 32 || c === 9 || c === 44) break;
        end++;
      }
      return v.slice(start, end);
    }
  }
  const semi = v.indexOf(';', from);
  if (semi < 0) return '';
  return paramValue(v, semi, 'branch') ?? '';
}

/** The first Via of a message, parsed. */
export function topVia(msg: SipMessage): TopVia | undefined {
  const f = firstHeader(msg, 'via');
  return f === undefined ? undefined : parseVia(f);
}

/**
 * Value of the `;name=value` parameter in `s` at or after `from` (name compared
 * case-insensitively, `name` given lower-case). Quoted values are returned without quotes.
 * Valueless parameter → ''. Absent → undefined.
 */
export function paramValue(s: string, from: number, name: string): string | undefined {
  const n = s.length;
  let i = from;
  while (i < n) {
    // move to the next ';' outside quotes
    while (i < n && s.charCodeAt(i) !== 59) {
      if (s.charCodeAt(i) === 34) i = skipQuoted(s, i);
      else i++;
    }
    if (i >= n) return undefined;
    i++; // past ';'
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const nStart = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 61 || c === 59 || isWs(c)) break;
      i++;
    }
    const nEnd = i;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const hasValue = i < n && s.charCodeAt(i) === 61;
    if (nEnd - nStart === name.length && equalsLower(s, nStart, name)) {
      if (!hasValue) return '';
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (i < n && s.charCodeAt(i) === 34) {
        const end = skipQuoted(s, i);
        return s.slice(i + 1, end - 1);
      }
      const vStart = i;
      while (i < n && s.charCodeAt(i) !== 59 && !isWs(s.charCodeAt(i))) i++;
      return s.slice(vStart, i);
    }
  }
  return undefined;
}

/** s[from, from+lower.length) equals `lower` ignoring ASCII case (no allocation). */
function equalsLower(s: string, from: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    let c = s.charCodeAt(from + k);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

function hasUpper(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

function hasLower(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 97 && c <= 122) return true;
  }
  return false;
}

/** Index just past the closing quote of the quoted-string opening at `i` (RFC 3261 quoted-pair aware). */
function skipQuoted(s: string, i: number): number {
  const n = s.length;
  i++;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 92) i += 2;
    else if (c === 34) return i + 1;
    else i++;
  }
  return n;
}

/** `tag` parameter of a From/To value (name-addr or addr-spec), or undefined. */
export function tagOf(value: string): string | undefined {
  // Header parameters start after the '>' of a name-addr; for a bare addr-spec all ';'
  // parameters are header parameters (RFC 3261 §20.10). A quoted display name may hold '<'.
  const n = value.length;
  let i = 0;
  let paramsFrom = 0;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c === 34) {
      i = skipQuoted(value, i);
      continue;
    }
    if (c === 60) {
      const close = value.indexOf('>', i + 1);
      if (close < 0) return undefined;
      paramsFrom = close + 1;
      break;
    }
    if (c === 59) {
      paramsFrom = i;
      break;
    }
    i++;
  }
  if (i >= n) return undefined;
  return paramValue(value, paramsFrom, 'tag');
}

export interface CSeqValue {
  seq: number;
  method: string;
}

/** `123 INVITE` → {seq, method}; undefined when malformed (RFC 3261 §20.16: seq < 2**31). */
export function parseCSeq(value: string): CSeqValue | undefined {
  const n = value.length;
  let i = 0;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  let seq = 0;
  const dStart = i;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    i++;
  }
  if (i === dStart || i - dStart > 10 || seq > 0x7fffffff) return undefined;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  let end = n;
  while (end > i && isWs(value.charCodeAt(end - 1))) end--;
  if (end === i) return undefined;
  const method = value.slice(i, end);
  for (let k = 0; k < method.length; k++) if (isWs(method.charCodeAt(k))) return undefined;
  return { seq, method };
}
