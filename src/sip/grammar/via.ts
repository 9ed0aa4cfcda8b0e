// Via header values (RFC 3261 §20.42, §25.1 via-parm; RFC 3581 rport).
import type { Via } from './types.js';
import { HOST_CHARS_RE, PORT_RE, isWsp, parseDigits, skipWsp, tokenEnd } from './chars.js';
import { PARAMS_RE, formatParams, paramValue, parseParams, plainParams } from './params.js';
import { isHost } from './uri.js';

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
  if (VIA_FAST.test(text)) {
    // The usual shape: its one SP ends the transport, the first ';' after it the sent-by.
    const sp = text.indexOf(' ', 8);
    let semi = text.indexOf(';', sp + 1);
    if (semi < 0) semi = text.length;
    const colon = text.indexOf(':', sp + 1);
    st.tFrom = 8;
    st.tTo = sp;
    st.hFrom = sp + 1;
    st.hTo = colon >= 0 && colon < semi ? colon : semi;
    st.port = st.hTo < semi ? parseDigits(text, st.hTo + 1, semi, 65535) : -1;
    plainParams(text, semi, params);
  } else if (!scanVia(text, params)) return null;
  const via: Via = { transport: text.slice(st.tFrom, st.tTo).toUpperCase(), host: text.slice(st.hFrom, st.hTo), params };
  if (st.port >= 0) via.port = st.port;
  return via;
}

export function formatVia(via: Via): string {
  const port = via.port !== undefined ? `:${via.port}` : '';
  return `SIP/2.0/${via.transport} ${via.host}${port}${formatParams(via.params)}`;
}

/** What transaction matching needs of a Via value (RFC 3261 §17.1.3, §17.2.3). */
export interface ViaKey<F> {
  /** branch parameter as received ('' when absent). */
  branch: string;
  /** sent-by (host[:port]), host lower-cased, whitespace removed. */
  sentBy: string;
  /** Transport token, upper-case (`UDP`, `TCP`, `TLS`, …). */
  transport: string;
  /** Whatever the caller carries along (the header field). */
  field: F;
}

const WS_RUN = /[ \t]+/g;

/** Lenient, allocation-light reader of `SIP/2.0/UDP host:port;branch=…` for values the parser
 *  has validated (isValidVia): only the slices transaction matching needs. undefined when the
 *  protocol or sent-by is missing. */
export function viaKey<F>(v: string, field: F): ViaKey<F> | undefined {
  const n = v.length;
  // sent-protocol: three tokens separated by '/', with optional LWS around the slashes.
  let slashes = 0;
  let i = 0;
  for (; i < n && slashes < 2; i++) if (v.charCodeAt(i) === 47) slashes++;
  if (slashes < 2) return undefined;
  i = skipWsp(v, i, n);
  const tStart = i;
  while (i < n && !isWsp(v.charCodeAt(i)) && v.charCodeAt(i) !== 59) i++;
  if (i === tStart) return undefined;
  let transport = v.slice(tStart, i);
  if (hasLower(transport)) transport = transport.toUpperCase();
  i = skipWsp(v, i, n);
  const sStart = i;
  while (i < n && v.charCodeAt(i) !== 59) i++;
  let end = i;
  while (end > sStart && isWsp(v.charCodeAt(end - 1))) end--;
  if (end === sStart) return undefined;
  let sentBy = v.slice(sStart, end);
  // SWS is allowed around the ':' of sent-by; it is rare, so only then pay for the removal.
  if (sentBy.indexOf(' ') >= 0 || sentBy.indexOf('\t') >= 0) sentBy = sentBy.replace(WS_RUN, '');
  if (hasUpper(sentBy)) sentBy = sentBy.toLowerCase();
  return { branch: viaBranch(v, i), sentBy, transport, field };
}

/**
 * The branch parameter of a Via value at or after `from` ('' when absent). Fast path: a literal
 * `;branch=` found by the native indexOf when no quoted string could hide a fake one; otherwise
 * the general parameter reader.
 */
export function viaBranch(v: string, from = 0): string {
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

/** sent-by of a Via value as `host:port` with the default port of the transport written out
 *  (5061 for TLS, 5060 otherwise, RFC 3261 §18.2.2), host lower-cased; null when malformed.
 *  What loop detection compares with our own addresses. */
export function viaSentBy(text: string): string | null {
  const via = parseVia(text);
  if (via === null) return null;
  const port = via.port ?? (via.transport === 'TLS' ? 5061 : 5060);
  return `${via.host.toLowerCase()}:${port}`;
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
