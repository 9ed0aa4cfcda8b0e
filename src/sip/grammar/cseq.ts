// CSeq (RFC 3261 §8.1.1.5, §20.16, §25.1: `CSeq = "CSeq" HCOLON 1*DIGIT LWS Method`).
//
// The number's range, and why there are two limits: §8.1.1.5 says the sequence number "MUST be
// expressible as a 32-bit unsigned integer and MUST be less than 2**31". The first clause is the
// field's range (what a value can hold at all: MAX_CSEQ); the second is the rule for every
// request, so that a dialog's number can be incremented (§12.2.1.1) without leaving 32 bits.
// peergate applies the request rule both ways: requests it receives with a number of 2**31 or
// more are malformed (400, RFC 4475 §3.1.2.6 "scalar02"), and numbers it generates start below
// 2**31 (MAX_REQUEST_CSEQ). parseCSeq alone checks only the field's range, for callers that
// read a value whose origin has already been checked (e.g. a response echoing our request).
import type { CSeq } from './types.js';
import { isWsp, parseDigits, skipWsp, tokenEnd } from './chars.js';

/** Largest value the CSeq field can hold: a 32-bit unsigned integer (RFC 3261 §8.1.1.5, §20.16). */
export const MAX_CSEQ = 0xffff_ffff;

/** Largest CSeq number a request may carry: "MUST be less than 2**31" (RFC 3261 §8.1.1.5). */
export const MAX_REQUEST_CSEQ = 0x7fff_ffff;

/** `1*DIGIT LWS Method` (SP/HTAB around it allowed). Returns null when malformed or the number
 *  exceeds `max` (the field's 32-bit range unless a caller asks for less). */
export function parseCSeq(text: string, max: number = MAX_CSEQ): CSeq | null {
  if (typeof text !== 'string') return null;
  const s = text;
  // The usual shape, `<at most 9 digits> SP <method>`, read in one pass; anything else below.
  let d = 0;
  let n = 0;
  for (; d < s.length && d < 10; d++) {
    const c = s.charCodeAt(d) - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
  }
  if (d > 0 && d < 10 && n <= max && s.charCodeAt(d) === 32 && d + 1 < s.length && tokenEnd(s, d + 1, s.length) === s.length)
    return { seq: n, method: s.slice(d + 1) };
  let end = s.length;
  while (end > 0 && isWsp(s.charCodeAt(end - 1))) end--;
  let i = skipWsp(s, 0, end);
  const dStart = i;
  while (i < end && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  // Leading zeros are legal ("0009", RFC 4475 §3.1.1.1); skip them so the length cap below holds.
  let z = dStart;
  while (z < i - 1 && s.charCodeAt(z) === 48) z++;
  if (i - z > 10) return null;
  const seq = parseDigits(s, z, i, max);
  if (seq < 0) return null;
  if (i >= end || !isWsp(s.charCodeAt(i))) return null;
  i = skipWsp(s, i, end);
  const mStart = i;
  i = tokenEnd(s, i, end);
  if (i === mStart || i !== end) return null;
  return { seq, method: s.slice(mStart, i) };
}

/** The CSeq of a request: parseCSeq with the §8.1.1.5 request limit (< 2**31). */
export function parseRequestCSeq(text: string): CSeq | null {
  return parseCSeq(text, MAX_REQUEST_CSEQ);
}
