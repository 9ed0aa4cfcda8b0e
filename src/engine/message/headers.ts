// Header access on a parsed SipMessage. Names may be given long or compact, in any case.
import type { HeaderField, SipMessage } from './types.js';
import { canonicalName, displayName } from './names.js';
import { splitCommaList } from '../../sip/grammar/list.js';

export { canonicalName, displayName } from './names.js';

/** First value of the header, or undefined. */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  const n = canonicalName(name);
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.name === n) return hs[i]!.value;
  return undefined;
}

/** All values of the header in message order (list headers are already split per value). */
export function getHeaders(msg: SipMessage, name: string): string[] {
  const n = canonicalName(name);
  const out: string[] = [];
  for (const h of msg.headers) if (h.name === n) out.push(h.value);
  return out;
}

/** The comma-separated elements of every field of the header (RFC 3261 §7.3.1), e.g. the option
 *  tags of Supported/Require or the methods of Allow, which the parser keeps as one field. */
export function getHeaderList(msg: SipMessage, name: string): string[] {
  const n = canonicalName(name);
  const out: string[] = [];
  for (const h of msg.headers) if (h.name === n) for (const v of splitCommaList(h.value)) out.push(v);
  return out;
}

export function hasHeader(msg: SipMessage, name: string): boolean {
  return getHeader(msg, name) !== undefined;
}

function checkValue(value: string): string {
  // A CR or LF in a value would let it inject header lines (RFC 3261 §7.3.1 allows neither).
  if (/[\r\n]/.test(value)) throw new Error('header value may not contain CR or LF');
  return value;
}

/** Replace every field of the header with one field holding `value`, at the position of the
 *  first existing one (or appended). The wire spelling of an existing field is kept. */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const n = canonicalName(name);
  checkValue(value);
  const hs = msg.headers;
  const first = hs.findIndex((h) => h.name === n);
  if (first < 0) {
    hs.push({ name: n, raw: displayName(n), value });
    return;
  }
  const raw = hs[first]!.raw;
  msg.headers = hs.filter((h, i) => i === first || h.name !== n);
  msg.headers[first] = { name: n, raw, value };
}

/** Remove every field of the header; returns how many were removed. */
export function removeHeaders(msg: SipMessage, name: string): number {
  const n = canonicalName(name);
  const before = msg.headers.length;
  msg.headers = msg.headers.filter((h) => h.name !== n);
  return before - msg.headers.length;
}

/** Add one field. 'prepend' puts it before the first field of that name (top of a Via or
 *  Record-Route list; at the top of the header section when there is none); 'append' after the
 *  last one (or at the end). */
export function addHeader(msg: SipMessage, name: string, value: string, position: 'prepend' | 'append' = 'append'): void {
  const n = canonicalName(name);
  const field: HeaderField = { name: n, raw: displayName(n), value: checkValue(value) };
  const hs = msg.headers;
  if (position === 'prepend') {
    const first = hs.findIndex((h) => h.name === n);
    hs.splice(first < 0 ? 0 : first, 0, field);
  } else {
    let last = -1;
    for (let i = hs.length - 1; i >= 0; i--) if (hs[i]!.name === n) { last = i; break; }
    if (last < 0) hs.push(field);
    else hs.splice(last + 1, 0, field);
  }
}
