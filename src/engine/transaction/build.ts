// Messages the transaction layer (and its TU) builds from others: responses (RFC 3261 §8.2.6),
// the ACK for a non-2xx (§17.1.1.3), CANCEL (§9.1), and branch ids (§8.1.1.7).
import { randomBytes } from 'node:crypto';
import type { HeaderField, SipRequest, SipResponse } from '../message/types.js';
import { MAGIC_COOKIE, firstHeader, parseCSeq, tagOf } from './headers.js';

const EMPTY = Buffer.alloc(0);
// A random per-process prefix plus a counter: unique in time and space (§8.1.1.7) without
// drawing random bytes for every request.
const BRANCH_PREFIX = MAGIC_COOKIE + randomBytes(6).toString('base64url') + '.';
let branchCounter = 0;

/** A fresh RFC 3261 branch (`z9hG4bK…`). */
export function newBranch(): string {
  branchCounter = (branchCounter + 1) % 0x7fffffff;
  return BRANCH_PREFIX + branchCounter.toString(36);
}

/** A random token for To/From tags. */
export function newTag(): string {
  return randomBytes(6).toString('hex');
}

export interface BuildResponseOptions {
  /** Added to To when it has no tag yet (never on 100 Trying, RFC 3261 §8.2.6.2). */
  toTag?: string;
  /** Extra header fields appended after the copied ones. */
  headers?: HeaderField[];
  body?: Buffer;
}

/**
 * A response to `req` (RFC 3261 §8.2.6.2): Via (all, in order), From, To, Call-ID, CSeq copied;
 * for 100 the Timestamp too (§8.2.6.1). The To tag is added only when asked for and missing.
 */
export function buildResponse(req: SipRequest, status: number, reason: string, opts?: BuildResponseOptions): SipResponse {
  const headers: HeaderField[] = [];
  let hasTimestamp = false;
  for (const h of req.headers) {
    switch (h.name) {
      case 'via':
      case 'from':
      case 'call-id':
      case 'cseq':
        headers.push(h);
        break;
      case 'to':
        if (opts?.toTag !== undefined && status !== 100 && tagOf(h.value) === undefined) {
          headers.push({ name: 'to', raw: h.raw, value: `${h.value};tag=${opts.toTag}` });
        } else headers.push(h);
        break;
      case 'timestamp':
        if (status === 100 && !hasTimestamp) {
          headers.push(h);
          hasTimestamp = true;
        }
        break;
    }
  }
  if (opts?.headers) for (const h of opts.headers) headers.push(h);
  return { kind: 'response', status, reason, headers, body: opts?.body ?? EMPTY };
}

/**
 * The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): Request-URI, Call-ID, From, the top
 * Via and the CSeq number of the INVITE; To from the response; the INVITE's Route headers.
 */
export function buildAck(invite: SipRequest, response: SipResponse): SipRequest {
  const headers: HeaderField[] = [];
  let viaDone = false;
  for (const h of invite.headers) {
    switch (h.name) {
      case 'via':
        if (!viaDone) headers.push(h);
        viaDone = true;
        break;
      case 'from':
      case 'call-id':
      case 'route':
      case 'max-forwards':
        headers.push(h);
        break;
      case 'to': {
        const rTo = firstHeader(response, 'to');
        headers.push(rTo ?? h);
        break;
      }
      case 'cseq': {
        const cs = parseCSeq(h.value);
        headers.push({ name: 'cseq', raw: h.raw, value: `${cs ? cs.seq : h.value.trim().split(' ')[0]} ACK` });
        break;
      }
    }
  }
  return { kind: 'request', method: 'ACK', uri: invite.uri, headers, body: EMPTY };
}

/**
 * CANCEL for a pending request (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number,
 * a single Via equal to the request's top Via (so the same branch), and its Route headers.
 */
export function buildCancel(request: SipRequest, extraHeaders?: HeaderField[]): SipRequest {
  const headers: HeaderField[] = [];
  let viaDone = false;
  for (const h of request.headers) {
    switch (h.name) {
      case 'via':
        if (!viaDone) headers.push(h);
        viaDone = true;
        break;
      case 'from':
      case 'to':
      case 'call-id':
      case 'route':
      case 'max-forwards':
        headers.push(h);
        break;
      case 'cseq': {
        const cs = parseCSeq(h.value);
        headers.push({ name: 'cseq', raw: h.raw, value: `${cs ? cs.seq : h.value.trim().split(' ')[0]} CANCEL` });
        break;
      }
    }
  }
  if (extraHeaders) for (const h of extraHeaders) headers.push(h);
  return { kind: 'request', method: 'CANCEL', uri: request.uri, headers, body: EMPTY };
}
