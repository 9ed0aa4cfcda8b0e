// Reading the fields the UA core needs from a parsed message (RFC 3261 §7.3, §20). The one
// place the core's modules import header readers from, so that they switch together when the
// common grammar module lands.
import type { SipMessage } from '../message/types.js';
import { splitCommas } from './headers.js';

export { headerParam, parseLiteUri, parseViaValue, randomToken, splitCommas, tagOf, uriOf, type LiteUri } from './headers.js';

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
    if (h.value.includes(',')) out.push(...splitCommas(h.value)); else out.push(h.value);
  }
  return out;
}

/** Whether an option tag (Supported / Require values) is listed. */
export function hasOptionTag(values: string[], tag: string): boolean {
  for (const v of values) for (const t of v.split(',')) if (t.trim().toLowerCase() === tag) return true;
  return false;
}

/** CSeq value → number and method (§20.16); undefined when malformed. */
export function cseqParts(v: string | undefined): { num: number; method: string } | undefined {
  if (!v) return undefined;
  const t = v.trim().split(/\s+/);
  const num = Number(t[0]);
  if (t.length !== 2 || !Number.isInteger(num) || num < 0 || num > 0xffffffff) return undefined;
  return { num, method: t[1]! };
}

/** Characters that would break a wire leader if they reached one (Call-ID, tags). */
export function leaderSafe(s: string): boolean {
  return !/[|\r\n]/.test(s);
}
