// PASSporT (RFC 8225) as carried in the SIP Identity header (RFC 8224), with the SHAKEN
// extension (RFC 8588): parse, build and sign (the signature is checked with src/sbc/identity/sigverify.ts).
import { sign as cryptoSign, type KeyObject } from 'node:crypto';

export interface PassportHeader { alg?: unknown; typ?: unknown; ppt?: unknown; x5u?: unknown }
export interface PassportClaims {
  iat?: unknown;
  orig?: { tn?: unknown; uri?: unknown };
  dest?: { tn?: unknown; uri?: unknown };
  attest?: unknown;
  origid?: unknown;
}

export interface ParsedPassport {
  header: PassportHeader;
  claims: PassportClaims;
  /** `<b64 header>.<b64 claims>`: the JWS signing input. */
  signingInput: string;
  signature: Buffer;
  /** The replay key: r of the ES256 signature (its first 32 bytes) in base64url. Not the whole
   *  signature: ECDSA is malleable, (r, n − s) verifies as well as (r, s), and a replay must not
   *  pass by rewriting s. A signer never gives two different messages the same r (that would
   *  reuse its nonce and give away its key). Not the text either: base64url spells the same
   *  bytes several ways (the unused bits of the last character). */
  signatureKey: string;
  compact: boolean;
}

export class PassportError extends Error {}

/** Longest JWS we read; a PASSporT is a few hundred bytes. */
const MAX_TOKEN = 8192;

// Decoding scratch: a PASSporT part decodes here, not into a new Buffer per call (single thread,
// used and read before decodeJson returns).
const scratch = Buffer.allocUnsafe(MAX_TOKEN);

/** Is `part` clean base64url (no padding)? `decoded` is how many bytes node's decoder gave:
 *  it skips characters outside both base64 alphabets, so a stray one shortens the result, and
 *  it also takes '+' and '/', which base64url does not have. One pass fewer than a regex. */
function cleanBase64url(part: string, decoded: number): boolean {
  return decoded === ((part.length * 3) >> 2) && part.indexOf('+') < 0 && part.indexOf('/') < 0;
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  const n = scratch.write(part, 0, 'base64url');
  if (!cleanBase64url(part, n)) throw new PassportError(`${what} is not base64url`);
  let v: unknown;
  try { v = JSON.parse(scratch.toString('utf8', 0, n)); } catch { throw new PassportError(`${what} is not JSON`); }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new PassportError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

// Decoded JWS headers by their base64url text. A signer's header (alg, ppt, typ, x5u) is the
// same on every PASSporT it sends, so this skips a base64 decode and a JSON.parse per call; the
// claims, which change per call, are always decoded. Bounded; entries are frozen (shared).
const HEADER_CACHE_MAX = 256;
const HEADER_CACHE_MAX_LEN = 1024;
const headerCache = new Map<string, PassportHeader>();

// The previous header: compared before the Map, which would hash the new string first.
let lastText = '';
let lastHeader: PassportHeader | undefined;

function decodeHeader(h: string): PassportHeader {
  if (lastHeader && h === lastText) return lastHeader;
  let v = headerCache.get(h);
  if (!v) {
    v = Object.freeze(decodeJson(h, 'PASSporT header'));
    if (h.length > HEADER_CACHE_MAX_LEN) return v;
    if (headerCache.size >= HEADER_CACHE_MAX) headerCache.delete(headerCache.keys().next().value!);
    headerCache.set(h, v);
  }
  lastText = h;
  lastHeader = v;
  return v;
}

/** Split a full-form JWS (`h.p.s`). Compact form (`..s`) returns compact=true with empty
 *  header/claims: the caller rebuilds them from the SIP request (RFC 8225 §7). The header
 *  object may be shared between calls: read it, do not modify it. */
export function parsePassport(token: string): ParsedPassport {
  if (token.length > MAX_TOKEN) throw new PassportError('PASSporT too long');
  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d1 < 0 || d2 < 0 || token.indexOf('.', d2 + 1) >= 0) throw new PassportError('PASSporT is not a JWS (three dot-separated parts)');
  const h = token.slice(0, d1);
  const p = token.slice(d1 + 1, d2);
  const s = token.slice(d2 + 1);
  const signature = Buffer.from(s, 'base64url');
  if (s.length === 0 || !cleanBase64url(s, signature.length)) throw new PassportError('PASSporT signature is not base64url');
  const signatureKey = signature.toString('base64url', 0, signature.length === 64 ? 32 : signature.length);
  if (h === '' && p === '') return { header: {}, claims: {}, signingInput: '', signature, signatureKey, compact: true };
  return { header: decodeHeader(h), claims: decodeJson(p, 'PASSporT claims') as PassportClaims, signingInput: token.slice(0, d2), signature, signatureKey, compact: false };
}

/** JSON with keys in lexicographic order and no whitespace (RFC 8225 §9), recursively. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export interface SignPassportInput {
  origTn: string;
  destTns: string[];
  iat: number;
  x5u: string;
  key: KeyObject;
  /** SHAKEN (RFC 8588): attestation and origination id. */
  shaken?: { attest: 'A' | 'B' | 'C'; origid: string };
}

/** Build and sign a PASSporT; returns the JWS compact serialisation `h.p.s`. */
export function signPassport(i: SignPassportInput): string {
  const header = { alg: 'ES256', ...(i.shaken ? { ppt: 'shaken' } : {}), typ: 'passport', x5u: i.x5u };
  const claims = {
    ...(i.shaken ? { attest: i.shaken.attest } : {}),
    dest: { tn: i.destTns }, iat: i.iat, orig: { tn: i.origTn },
    ...(i.shaken ? { origid: i.shaken.origid } : {}),
  };
  const input = `${Buffer.from(canonicalJson(header)).toString('base64url')}.${Buffer.from(canonicalJson(claims)).toString('base64url')}`;
  const sig = cryptoSign('sha256', Buffer.from(input, 'ascii'), { key: i.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** The RFC 8224 Identity header value for a signed PASSporT. */
export function identityHeaderValue(jws: string, x5u: string, ppt?: string): string {
  return `${jws};info=<${x5u}>;alg=ES256${ppt ? `;ppt=${ppt}` : ''}`;
}
