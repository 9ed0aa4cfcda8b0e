// The few header values the transaction layer needs (RFC 3261 §17.1.3, §17.2.3): top Via
// branch and sent-by, CSeq, tags. The readers are the SIP grammar's (src/sip/grammar); this file
// only applies them to a message's fields.
import type { HeaderField, SipMessage } from '../message/types.js';
import { getTag, paramValue as grammarParamValue, parseRequestCSeq, viaBranch, viaKey } from '../../sip/grammar/index.js';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this magic cookie. */
export const MAGIC_COOKIE = 'z9hG4bK';

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

/** Parses `SIP/2.0/UDP host:port;branch=…;…` (one Via value). undefined when malformed. */
export function parseVia(field: HeaderField): TopVia | undefined {
  return viaKey(field.value, field);
}

/**
 * Only the branch of the top Via ('' when absent, undefined when there is no Via): all a
 * response needs for client-transaction matching (RFC 3261 §17.1.3), without the other slices.
 */
export function topViaBranch(msg: SipMessage): string | undefined {
  const f = firstHeader(msg, 'via');
  if (f === undefined) return undefined;
  return viaBranch(f.value, 0);
}

/** Separator of the parts of a transaction key (layer.ts): cannot occur in a branch token, a
 *  sent-by, a method or a parsed header value. */
export const KEY_SEP = '\u0001';

/** The top Via branch a server transaction key was made from (layer.ts serverKey): the key's
 *  first part (RFC 3261 branches) or the branch parameter of the whole Via value it holds (RFC
 *  2543 keys, '' when absent). Read rarely: not kept as a field on waiting transactions. */
export function serverKeyBranch(key: string): string {
  const end = key.indexOf(KEY_SEP);
  if (!key.startsWith('2543' + KEY_SEP)) return key.slice(0, end);
  const parts = key.split(KEY_SEP);
  return viaBranch(parts[parts.length - 2]!, 0);
}

/** The first Via of a message, parsed. */
export function topVia(msg: SipMessage): TopVia | undefined {
  const f = firstHeader(msg, 'via');
  return f === undefined ? undefined : parseVia(f);
}

/** Value of the `;name=value` parameter in `s` at or after `from` (sip/grammar paramValue). */
export const paramValue = grammarParamValue;

/** `tag` parameter of a From/To value (name-addr or addr-spec), or undefined (sip/grammar getTag). */
export const tagOf: (value: string) => string | undefined = getTag;

export interface CSeqValue {
  seq: number;
  method: string;
}

/** `123 INVITE` → {seq, method}; undefined when malformed or seq ≥ 2**31 (RFC 3261 §8.1.1.5:
 *  every request's number, hence every transaction's, is below 2**31; sip/grammar/cseq.ts). */
export function parseCSeq(value: string): CSeqValue | undefined {
  return parseRequestCSeq(value) ?? undefined;
}
