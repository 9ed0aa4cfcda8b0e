// RFC 4474 Identity / Identity-Info: the digest string (§9) and its RSA signature.
import { createSign, type KeyObject } from 'node:crypto';
import { addrSpec, firstHeader, type IdentityRequest } from './sipfields.js';

export type Rfc4474Alg = 'rsa-sha1' | 'rsa-sha256';
const HASH: Record<Rfc4474Alg, string> = { 'rsa-sha1': 'sha1', 'rsa-sha256': 'sha256' };

export function isRfc4474Alg(a: string): a is Rfc4474Alg {
  return a === 'rsa-sha1' || a === 'rsa-sha256';
}

export interface DigestFields {
  from: string; to: string; callId: string; cseq: string; date: string; contact?: string | undefined; body: Buffer | string;
}

const WS = /\s+/g;

/** Runs of whitespace as one space (CSeq is "1 INVITE" nearly always: no regex then). */
function oneSpace(v: string): string {
  let ws = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    // Anything but a single ASCII space (tabs, line breaks, Unicode spaces) takes the regex.
    if (c > 126 || (c <= 32 && (c !== 32 || ++ws > 1))) return v.replace(WS, ' ');
  }
  return v;
}

/** Fields of the digest string taken from a request; undefined names the missing header. */
export function digestFields(req: IdentityRequest): DigestFields | string {
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
  return { from: addrSpec(from), to: addrSpec(to), callId: callId.trim(), cseq: oneSpace(cseq.trim()), date: date.trim(), contact: contact ? addrSpec(contact) : undefined, body: req.body };
}

/** The digest string up to the message body (the verifier hashes head and body in turn). */
export function digestHead(f: DigestFields): string {
  return `${f.from}|${f.to}|${f.callId}|${f.cseq}|${f.date}|${f.contact ?? ''}|`;
}

/** digest-string = addr-spec "|" addr-spec "|" callid "|" 1*DIGIT SP Method "|" SIP-Date "|"
 *  [ addr-spec ] "|" message-body   (RFC 4474 §9; '|' because URIs contain ':').
 *  The body is taken byte for byte. */
export function digestString(f: DigestFields): Buffer {
  const head = digestHead(f);
  // One allocation: a string body is encoded together with the head (UTF-8 of a concatenation
  // is the concatenation of the UTF-8; the head ends in '|', so no character spans the join).
  if (typeof f.body === 'string') return Buffer.from(f.body.length ? head + f.body : head, 'utf8');
  if (f.body.length === 0) return Buffer.from(head, 'utf8');
  const n = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(n + f.body.length);
  out.write(head, 0, 'utf8');
  f.body.copy(out, n);
  return out;
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
