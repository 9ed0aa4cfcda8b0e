// A small, bounds-checked DER reader (X.690) for what node:crypto's X509Certificate does not
// expose: extensions by OID (TNAuthList, RFC 8226) and a CRL's nextUpdate. It reads
// certificates fetched from the network on the call path, so it stays here rather than going
// through node-forge's parser: nodes are views into the input Buffer, nothing is copied into
// forge's binary strings, and every length is checked against its container. Writing DER is
// node-forge's job (x509.ts, tnauthlist.ts).

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
