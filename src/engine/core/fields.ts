// Reading the fields the UA core needs from a parsed message (RFC 3261 §7.3, §20). The one
// place the core's modules import header readers from: the readers are the SIP grammar's
// (src/sip/grammar); what is here only adapts them to the core's contracts (an absent header,
// a sip/sips URI to route on).
import type { SipMessage } from '../message/types.js';
import { getTag, parseUri, splitCommaList, type SipUri } from '../../sip/grammar/index.js';

export { KNOWN_METHODS, isToken, parseCSeq, parseRequestCSeq, parseVia, splitCommaList, type SipUri } from '../../sip/grammar/index.js';
export { randomToken } from './headers.js';

/** First value of a header (lower-case long name). */
export function hdr(msg: SipMessage, name: string): string | undefined {
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.name === name) return hs[i]!.value;
  return undefined;
}

/** All values of a header. The parser already splits comma lists (Via, Route, Record-Route,
 *  Contact …) into one field per value; a value still holding a top-level comma is split here. */
export function hdrAll(msg: SipMessage, name: string): string[] {
  const out: string[] = [];
  for (const h of msg.headers) {
    if (h.name !== name) continue;
    if (h.value.includes(',')) out.push(...splitCommaList(h.value)); else out.push(h.value);
  }
  return out;
}

/** Whether an option tag (Supported / Require values) is listed. */
export function hasOptionTag(values: string[], tag: string): boolean {
  for (const v of values) for (const t of splitCommaList(v)) if (t.toLowerCase() === tag) return true;
  return false;
}

/** The tag of a From/To value that may be absent (grammar getTag: undefined when empty). */
export function tagOf(v: string | undefined): string | undefined {
  return v === undefined ? undefined : getTag(v);
}

/** A sip:/sips: URI to route on (RFC 3261 §19.1): undefined for tel: and other schemes, malformed
 *  text, and port 0 (which the core never sends to). */
export function sipUriOf(uri: string): SipUri | undefined {
  const u = parseUri(uri);
  return u === null || u.scheme === 'tel' || u.port === 0 ? undefined : u;
}

/** Characters that would break a wire leader if they reached one (Call-ID, tags). */
export function leaderSafe(s: string): boolean {
  return !/[|\r\n]/.test(s);
}
