// What the app sees of a network request (the parsed-field successor of the former
// core/inbound.ts rewriteInbound): the request's bytes with the top Via completed (RFC 3581 rport, RFC 3261
// §18.2.1 received), every network copy of the engine's own headers (TLS identity, pre-admission)
// removed and ours added.
//
// Why parsed fields: the old rewrite found header lines by splitting the raw text on CRLF while
// the parser also accepts bare LF, so the two could disagree about which lines a message has.
// Here the decisions come from the parsed message (is there an identity field to remove, where is
// the top Via and what is its sent-by host), and the raw text is walked with the parser's own line
// rules (LF with an optional CR before it, SP/HTAB starting a continuation, names through
// canonicalName) only to carry the bytes through. Lines are written with CRLF whatever the
// sender used; every other byte is kept, spacing included. A folded top Via is unfolded (the
// old rewrite stamped only its first physical line and lost what followed it in topVia).
import type { SipRequest } from './types.js';
import { canonicalName } from './names.js';
import { parseVia } from '../../sip/grammar/via.js';
import { TLS_IDENTITY_HEADER, TLS_IDENTITY_NAME, isTlsIdentityName } from '../../sip/tls-identity.js';
import { ADMISSION_NAME, isAdmissionName } from '../../sip/admission-header.js';

export interface AppView {
  text: string;
  /** The stamped top Via value, as responses must echo it. */
  topVia: string;
}

const TOP_VIA_CRLF = /\r\n(?:via|v)[ \t]*:/i;

/** `req` is what parseMessage made of `text`. `identity` is a ready header value (a verified TLS
 *  client certificate, src/sip/tls-identity.ts) or undefined. undefined when the request has no
 *  usable top Via (the caller answers 400). */
export function appView(req: SipRequest, text: string, srcAddr: string, srcPort: number, identity: string | undefined): AppView | undefined {
  let top: string | undefined;
  // A network copy of a header only the engine may write (two string compares per field).
  let hasOwn = false;
  for (const h of req.headers) {
    if (top === undefined && h.name === 'via') top = h.value;
    else if (h.name === TLS_IDENTITY_NAME || h.name === ADMISSION_NAME) hasOwn = true;
  }
  const via = top === undefined ? null : parseVia(top);
  if (via === null) return undefined;
  const viaHost = via.host;
  let start = 0;
  while (start < text.length && (text.charCodeAt(start) === 13 || text.charCodeAt(start) === 10)) start++;
  const headEnd = text.indexOf('\r\n\r\n', start);
  // Fast path (nearly every message): CRLF lines, nothing to remove or add, an unfolded top Via.
  if (identity === undefined && !hasOwn && headEnd >= 0) {
    const head = text.slice(start, headEnd + 2);
    if (!hasBareLf(head)) {
      const m = TOP_VIA_CRLF.exec(head);
      if (m !== null) {
        const valueStart = start + m.index + m[0].length;
        const lineEnd = text.indexOf('\r\n', valueStart);
        const next = text.charCodeAt(lineEnd + 2);
        if (next !== 0x20 && next !== 0x09) {
          const stamped = stampVia(text.slice(valueStart, lineEnd), srcAddr, srcPort, viaHost);
          return { text: text.slice(start, valueStart) + stamped.line + text.slice(lineEnd), topVia: stamped.topVia };
        }
      }
    }
  }
  // General path: the header lines as the parser reads them, up to the first empty line.
  const lines: string[] = [];
  let bodyStart = -1;
  for (let pos = start; pos < text.length; ) {
    const e = text.indexOf('\n', pos);
    if (e < 0) break;
    const end = e > pos && text.charCodeAt(e - 1) === 13 ? e - 1 : e;
    if (end === pos) {
      bodyStart = e + 1;
      break;
    }
    lines.push(text.slice(pos, end));
    pos = e + 1;
  }
  if (bodyStart < 0 || lines.length === 0) return undefined;
  const out: string[] = [lines[0]!];
  let topVia: string | undefined;
  let dropping = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) {
      if (!dropping) out[out.length - 1] += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? canonicalName(line.slice(0, colon).trim()) : '';
    dropping = hasOwn && (isTlsIdentityName(name) || isAdmissionName(name));
    if (dropping) continue;
    if (topVia === undefined && name === 'via') {
      // The whole field, continuation lines unfolded (as the parser reads it).
      let value = line.slice(colon + 1);
      while (i + 1 < lines.length && (lines[i + 1]!.charCodeAt(0) === 0x20 || lines[i + 1]!.charCodeAt(0) === 0x09)) {
        value = `${value.trimEnd()} ${lines[++i]!.trim()}`;
      }
      const stamped = stampVia(value, srcAddr, srcPort, viaHost);
      out.push(line.slice(0, colon + 1) + stamped.line);
      topVia = stamped.topVia;
      continue;
    }
    out.push(line);
  }
  if (topVia === undefined) return undefined;
  if (identity !== undefined) out.push(`${TLS_IDENTITY_HEADER}: ${identity}`);
  return { text: `${out.join('\r\n')}\r\n\r\n${text.slice(bodyStart)}`, topVia };
}

/** The stamped top Via alone, as appView's `topVia` would give it, for a top via-parm value
 *  (the first of the comma-split Via values): what a response made before the app view exists
 *  (the overload gate's 503) echoes. undefined when it does not parse (appView: 400). */
export function stampedTopVia(value: string, srcAddr: string, srcPort: number): string | undefined {
  const via = parseVia(value);
  return via === null ? undefined : stampVia(value, srcAddr, srcPort, via.host).topVia;
}

function hasBareLf(head: string): boolean {
  for (let i = head.indexOf('\n'); i >= 0; i = head.indexOf('\n', i + 1)) if (head.charCodeAt(i - 1) !== 13) return true;
  return false;
}

/** Add `rport=<port>` (always, as drachtio does) and `received=<ip>` (when the source differs
 *  from the Via host) to the first via-parm of a Via field value; parameters keep their order
 *  and spelling (the same result as the former core/inbound.ts stampVia). */
function stampVia(value: string, srcAddr: string, srcPort: number, viaHost: string): { line: string; topVia: string } {
  // End of the first via-parm: first comma outside quotes.
  let endFirst = value.length;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) quoted = !quoted;
    else if (c === 0x2c && !quoted) { endFirst = i; break; }
  }
  let first = value.slice(0, endFirst);
  const trailing = first.length - first.trimEnd().length;
  first = first.trimEnd();
  const parts = first.split(';');
  let hasRport = false;
  let hasReceived = false;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    const eq = p.indexOf('=');
    const n = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (n === 'rport') {
      hasRport = true;
      if (eq < 0 || p.slice(eq + 1).trim() === '') parts[i] = `rport=${srcPort}`;
    } else if (n === 'received') hasReceived = true;
  }
  if (!hasRport) parts.push(`rport=${srcPort}`);
  if (!hasReceived && viaHost !== srcAddr && `[${srcAddr}]` !== viaHost) parts.push(`received=${srcAddr}`);
  const stamped = parts.join(';');
  return { line: stamped + ' '.repeat(trailing) + value.slice(endFirst), topVia: stamped.trim() };
}

/** `text` (an appView text: CRLF lines, its head ending at the first empty line) with one more
 *  header field at the end of its head; the body, and so Content-Length, unchanged. */
export function withHeader(text: string, name: string, value: string): string {
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : `${text.slice(0, end + 2)}${name}: ${value}\r\n${text.slice(end + 2)}`;
}
