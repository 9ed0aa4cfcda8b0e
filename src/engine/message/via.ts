// Via header values (RFC 3261 §20.42, §25.1 via-parm) and CSeq (§20.16).
import type { CSeq, Via } from './types.js';
import { HOST_CHARS_RE, PORT_RE, TOKEN, isWsp, parseDigits, skipWsp } from './chars.js';
import { PARAMS_RE, formatParams, parseParams } from './params.js';
import { isHost } from './uri.js';

function tokenEnd(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) break;
    i++;
  }
  return i;
}

// Out-parameters of scanVia (no result object on the hot path; an object, not module `let`s,
// which pay a hole check on every access).
const st = { tFrom: 0, tTo: 0, hFrom: 0, hTo: 0, port: -1 };

/** Validate one via-parm: `SIP / 2.0 / transport LWS sent-by *( SEMI via-params )`. */
function scanVia(s: string, params: Map<string, string> | null): boolean {
  const end = s.length;
  let i = skipWsp(s, 0, end);
  // protocol-name: "SIP" (case-insensitive)
  if (
    i + 3 > end ||
    (s.charCodeAt(i) | 0x20) !== 0x73 ||
    (s.charCodeAt(i + 1) | 0x20) !== 0x69 ||
    (s.charCodeAt(i + 2) | 0x20) !== 0x70
  )
    return false;
  i = skipWsp(s, i + 3, end);
  if (s.charCodeAt(i) !== 47) return false; // '/'
  i = skipWsp(s, i + 1, end);
  if (s.charCodeAt(i) !== 50 || s.charCodeAt(i + 1) !== 46 || s.charCodeAt(i + 2) !== 48) return false; // 2.0
  i = skipWsp(s, i + 3, end);
  if (s.charCodeAt(i) !== 47) return false;
  i = skipWsp(s, i + 1, end);
  st.tFrom = i;
  i = tokenEnd(s, i, end);
  st.tTo = i;
  if (i === st.tFrom || i >= end || !isWsp(s.charCodeAt(i))) return false;
  i = skipWsp(s, i, end);
  // sent-by = host [ COLON port ]; COLON may carry SWS around it
  st.hFrom = i;
  if (s.charCodeAt(i) === 91) {
    const close = s.indexOf(']', i);
    if (close < 0) return false;
    i = close + 1;
  } else {
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c === 59 || c === 58 || isWsp(c)) break;
      i++;
    }
  }
  st.hTo = i;
  if (!isHost(s, st.hFrom, st.hTo)) return false;
  st.port = -1;
  const afterHost = skipWsp(s, i, end);
  if (afterHost < end && s.charCodeAt(afterHost) === 58) {
    const pFrom = skipWsp(s, afterHost + 1, end);
    let j = pFrom;
    while (j < end && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
    st.port = parseDigits(s, pFrom, j, 65535);
    if (st.port < 0) return false;
    i = j;
  }
  return parseParams(s, i, end, params);
}

/** The usual shape (`SIP/2.0/UDP host:port;branch=…;rport`): whatever it matches, scanVia accepts. */
const VIA_FAST = new RegExp(`^SIP/2\\.0/[A-Z]+ [${HOST_CHARS_RE}]+(?::${PORT_RE})?${PARAMS_RE}$`);

/** Whether text is a well-formed via-parm (no allocation; used on every message). */
export function isValidVia(text: string): boolean {
  return typeof text === 'string' && (VIA_FAST.test(text) || scanVia(text, null));
}

/** Parse one via-parm: `SIP / 2.0 / transport LWS sent-by *( SEMI via-params )`. */
export function parseVia(text: string): Via | null {
  if (typeof text !== 'string') return null;
  const params = new Map<string, string>();
  if (!scanVia(text, params)) return null;
  const via: Via = { transport: text.slice(st.tFrom, st.tTo).toUpperCase(), host: text.slice(st.hFrom, st.hTo), params };
  if (st.port >= 0) via.port = st.port;
  return via;
}

export function formatVia(via: Via): string {
  const port = via.port !== undefined ? `:${via.port}` : '';
  return `SIP/2.0/${via.transport} ${via.host}${port}${formatParams(via.params)}`;
}

/** Largest CSeq sequence number: a 32-bit unsigned integer (RFC 3261 §8.1.1.5, §20.16). */
export const MAX_CSEQ = 0xffff_ffff;

/** `1*DIGIT LWS Method`. Returns null when malformed or the number exceeds 2**32-1. */
export function parseCSeq(text: string): CSeq | null {
  if (typeof text !== 'string') return null;
  const s = text;
  let end = s.length;
  while (end > 0 && isWsp(s.charCodeAt(end - 1))) end--;
  let i = skipWsp(s, 0, end);
  const dStart = i;
  while (i < end && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  // Leading zeros are legal ("0009", RFC 4475 §3.1.1.1); skip them so the length cap below holds.
  let z = dStart;
  while (z < i - 1 && s.charCodeAt(z) === 48) z++;
  if (i - z > 10) return null;
  const seq = parseDigits(s, z, i, MAX_CSEQ);
  if (seq < 0) return null;
  if (i >= end || !isWsp(s.charCodeAt(i))) return null;
  i = skipWsp(s, i, end);
  const mStart = i;
  i = tokenEnd(s, i, end);
  if (i === mStart || i !== end) return null;
  return { seq, method: s.slice(mStart, i) };
}
