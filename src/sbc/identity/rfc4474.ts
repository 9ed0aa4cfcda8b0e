// RFC 4474 Identity / Identity-Info: the digest string (§9) and its RSA signature.
import { createSign, type KeyObject } from 'node:crypto';
import { addrSpec, firstHeader, type IdentityRequest } from './sipfields.js';

export type Rfc4474Alg = 'rsa-sha1' | 'rsa-sha256';
const HASH: Record<Rfc4474Alg, string> = { 'rsa-sha1': 'sha1', 'rsa-sha256': 'sha256' };

export function isRfc4474Alg(a: string): a is Rfc4474Alg {
  return a === 'rsa-sha1' || a === 'rsa-sha256';
}

/** The fields of the digest string in order (RFC 4474 §9); joined by '|' they are the signed
 *  bytes. */
export type DigestParts = [from: string, to: string, callId: string, cseq: string, date: string, contact: string, body: Buffer | string];

const WS = /\s+/g;

/** Runs of whitespace as one space (CSeq is "1 INVITE" nearly always: no regex then). */
export function oneSpace(v: string): string {
  let ws = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    // Anything but a single ASCII space (tabs, line breaks, Unicode spaces) takes the regex.
    if (c > 126 || (c <= 32 && (c !== 32 || ++ws > 1))) return v.replace(WS, ' ');
  }
  return v;
}

/** The digest-string fields of a request; a string names the missing header. */
export function digestParts(req: IdentityRequest): DigestParts | string {
  const from = firstHeader(req, 'From');
  const to = firstHeader(req, 'To');
  const callId = firstHeader(req, 'Call-ID');
  const cseq = firstHeader(req, 'CSeq');
  const date = firstHeader(req, 'Date');
  if (!from) return 'From';
  if (!to) return 'To';
  if (!callId) return 'Call-ID';
  if (!cseq) return 'CSeq';
  if (!date) return 'Date';
  const contact = firstHeader(req, 'Contact');
  return [addrSpec(from), addrSpec(to), callId.trim(), oneSpace(cseq.trim()), date.trim(), contact ? addrSpec(contact) : '', req.body];
}

/** The digest string up to the message body (the verifier hashes head and body in turn). */
export function digestHead(p: DigestParts): string {
  return `${p[0]}|${p[1]}|${p[2]}|${p[3]}|${p[4]}|${p[5]}|`;
}

/** digest-string = addr-spec "|" addr-spec "|" callid "|" 1*DIGIT SP Method "|" SIP-Date "|"
 *  [ addr-spec ] "|" message-body   (RFC 4474 §9; '|' because URIs contain ':').
 *  The body is taken byte for byte. */
export function digestString(parts: DigestParts): Buffer {
  const body = parts[6];
  const head = digestHead(parts);
  // UTF-8 of a concatenation is the concatenation of the UTF-8s (the head ends in '|', so no
  // character spans the join).
  return typeof body === 'string' ? Buffer.from(head + body, 'utf8') : Buffer.concat([Buffer.from(head, 'utf8'), body]);
}

export function signRfc4474Digest(digest: Buffer, alg: Rfc4474Alg, key: KeyObject): string {
  const s = createSign(HASH[alg]);
  s.update(digest);
  return s.sign(key).toString('base64');
}

/** RFC 1123 date as SIP-Date wants it: `Sun, 22 Nov 2026 13:23:00 GMT`. */
export function sipDate(ms: number): string {
  return new Date(ms).toUTCString();
}
