// A small, bounds-checked DER reader (X.690) for the few certificate fields node:crypto's
// X509Certificate does not expose: extensions by OID (TNAuthList, RFC 8226) and the raw
// subject Name. Reading is allocation-light: nodes are views into the input buffer.

export interface DerNode {
  /** Identifier octet (class | constructed | tag number; single-octet tags only). */
  tag: number;
  /** Offset of the identifier octet in `buf`. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset one past the last content octet. */
  end: number;
  buf: Buffer;
}

export class DerError extends Error {}

/** Read one TLV at `pos`; throws DerError on truncated or unsupported encodings. */
export function readNode(buf: Buffer, pos: number, limit = buf.length): DerNode {
  if (pos + 2 > limit) throw new DerError('truncated DER');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-octet DER tags are not supported');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('bad DER length');
    if (p + n > limit) throw new DerError('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw new DerError('DER content exceeds its container');
  return { tag, start: pos, contentStart: p, end: p + len, buf };
}

/** The children of a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let p = node.contentStart;
  while (p < node.end) {
    const c = readNode(node.buf, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function content(node: DerNode): Buffer {
  return node.buf.subarray(node.contentStart, node.end);
}

export function whole(node: DerNode): Buffer {
  return node.buf.subarray(node.start, node.end);
}

/** Dotted OID text of an OBJECT IDENTIFIER node. */
export function oidText(node: DerNode): string {
  if (node.tag !== 0x06) throw new DerError('expected OBJECT IDENTIFIER');
  const b = content(node);
  if (b.length === 0) throw new DerError('empty OID');
  const first = b[0]!;
  const parts: number[] = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) { parts.push(v); v = 0; }
  }
  return parts.join('.');
}

/** TBSCertificate fields of a DER certificate. */
function tbsFields(certDer: Buffer): DerNode[] {
  const cert = readNode(certDer, 0);
  const [tbs] = children(cert);
  if (!tbs || tbs.tag !== 0x30) throw new DerError('not a certificate');
  return children(tbs);
}

/** The value (OCTET STRING content) of the extension `oid`, or undefined when absent. */
export function extensionValue(certDer: Buffer, oid: string): { critical: boolean; value: Buffer } | undefined {
  for (const f of tbsFields(certDer)) {
    if (f.tag !== 0xa3) continue; // [3] EXPLICIT Extensions
    const [seq] = children(f);
    if (!seq) return undefined;
    for (const ext of children(seq)) {
      const parts = children(ext);
      if (!parts[0] || oidText(parts[0]) !== oid) continue;
      const critical = parts.length === 3 && parts[1]!.tag === 0x01 && content(parts[1]!)[0] !== 0;
      const octets = parts[parts.length - 1]!;
      if (octets.tag !== 0x04) throw new DerError('extension value is not an OCTET STRING');
      return { critical, value: content(octets) };
    }
  }
  return undefined;
}

/** The DER of the certificate's subject Name (to use as a child certificate's issuer). */
export function subjectNameDer(certDer: Buffer): Buffer {
  const f = tbsFields(certDer);
  // version [0] is present in v3 certificates; subject is the 5th field after it.
  const offset = f[0]?.tag === 0xa0 ? 1 : 0;
  const subject = f[offset + 4];
  if (!subject || subject.tag !== 0x30) throw new DerError('certificate has no subject');
  return whole(subject);
}

// ---------- writing ----------

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) { bytes.unshift(n & 0xff); n = Math.floor(n / 256); }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encode one TLV. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthOctets(body.length), body]);
}

export const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, ...parts);
export const ia5 = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'ascii'));
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const nul = (): Buffer => Buffer.from([0x05, 0x00]);

/** INTEGER from a non-negative safe integer or big-endian unsigned bytes. */
export function int(v: number | Buffer): Buffer {
  let b: Buffer;
  if (typeof v === 'number') {
    const bytes: number[] = [];
    let n = v;
    do { bytes.unshift(n & 0xff); n = Math.floor(n / 256); } while (n > 0);
    b = Buffer.from(bytes);
  } else {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    b = v.subarray(i);
  }
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function oid(text: string): Buffer {
  const parts = text.split('.').map(Number);
  const bytes: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [];
    let n = p;
    do { chunk.unshift(n & 0x7f); n = Math.floor(n / 128); } while (n > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** BIT STRING with no unused bits (signatures, keys). */
export const bits = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/** UTCTime (before 2050) or GeneralizedTime, as RFC 5280 §4.1.2.5 requires. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** UTCTime or GeneralizedTime node (RFC 5280 §4.1.2.5: always Zulu, seconds present). */
export function timeOf(node: DerNode): Date {
  const t = content(node).toString('ascii');
  const m = node.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(t)
    : node.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(t) : null;
  if (!m) throw new DerError('expected UTCTime or GeneralizedTime');
  let year = Number(m[1]);
  if (node.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** nextUpdate of a DER CRL (RFC 5280 §5.1.2.5), or undefined when the CRL has none.
 *  Neither node:crypto nor node-forge reads CRLs. */
export function crlNextUpdate(crlDer: Buffer): Date | undefined {
  const [tbs] = children(readNode(crlDer, 0));
  if (!tbs || tbs.tag !== 0x30) throw new DerError('not a CRL');
  const f = children(tbs);
  // version INTEGER OPTIONAL, signature, issuer, thisUpdate, nextUpdate OPTIONAL, …
  const offset = f[0]?.tag === 0x02 ? 1 : 0;
  const next = f[offset + 3];
  return next && (next.tag === 0x17 || next.tag === 0x18) ? timeOf(next) : undefined;
}
