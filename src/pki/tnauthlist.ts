// TNAuthList certificate extension (RFC 8226 §9, OID id-pe-TNAuthList 1.3.6.1.5.5.7.1.26):
// which service provider codes and telephone numbers a STIR certificate may sign for.
// The RFC 8226 ASN.1 module uses EXPLICIT tags; the reader also accepts the IMPLICIT
// encoding some issuers produce, because interop beats pedantry when reading.
// Writing goes through node-forge's ASN.1 API; reading uses der.ts, the bounded reader that
// certificates fetched from the network go through on the call path. node-forge is loaded by the
// first write (certificate tooling), not by a node that only verifies.
import type forge from 'node-forge';
import { lazyPackage } from '../lazy-package.js';
import { children, content, readNode, DerError, type DerNode } from './der.js';

export const TN_AUTH_LIST_OID = '1.3.6.1.5.5.7.1.26';

export type TnAuthEntry =
  | { spc: string }
  | { tn: string }
  | { range: { start: string; count: number } };

const TN_CHARS = /^[0-9#*]{1,15}$/;

const forgeLib = lazyPackage<typeof forge>('node-forge');

/** DER of a TNAuthorizationList. */
export function encodeTnAuthList(entries: TnAuthEntry[]): Buffer {
  if (entries.length === 0) throw new Error('TNAuthList needs at least one entry');
  const { asn1 } = forgeLib();
  const explicit = (tag: number, inner: forge.asn1.Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, [inner]);
  const ia5 = (s: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.IA5STRING, false, s);
  const items = entries.map((e) => {
    if ('spc' in e) return explicit(0, ia5(e.spc));
    if ('tn' in e) {
      if (!TN_CHARS.test(e.tn)) throw new Error(`TNAuthList: bad telephone number '${e.tn}'`);
      return explicit(2, ia5(e.tn));
    }
    if (!TN_CHARS.test(e.range.start)) throw new Error(`TNAuthList: bad range start '${e.range.start}'`);
    if (!Number.isInteger(e.range.count) || e.range.count < 2) throw new Error('TNAuthList: range count must be an integer >= 2');
    return explicit(1, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      ia5(e.range.start), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(e.range.count).getBytes()),
    ]));
  });
  return Buffer.from(asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items)).getBytes(), 'binary');
}

function stringOf(node: DerNode): string {
  // EXPLICIT: [n] { IA5String }; IMPLICIT: [n] primitive holding the characters.
  if (node.tag & 0x20) {
    const [inner] = children(node);
    if (!inner || inner.tag !== 0x16) throw new DerError('TNAuthList entry: expected IA5String');
    return content(inner).toString('ascii');
  }
  return content(node).toString('ascii');
}

function intOf(node: DerNode): number {
  if (node.tag !== 0x02) throw new DerError('TNAuthList range: expected INTEGER count');
  const b = content(node);
  if (b.length > 6) throw new DerError('TNAuthList range count too large');
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

/** Parse the extension value (the OCTET STRING content). Throws DerError on bad input. */
export function parseTnAuthList(der: Buffer): TnAuthEntry[] {
  const top = readNode(der, 0);
  if (top.tag !== 0x30) throw new DerError('TNAuthList: expected SEQUENCE');
  const out: TnAuthEntry[] = [];
  for (const e of children(top)) {
    switch (e.tag & 0xdf) {
      case 0x80: out.push({ spc: stringOf(e) }); break;
      case 0x82: out.push({ tn: stringOf(e) }); break;
      case 0x81: {
        // EXPLICIT: [1] { SEQUENCE { start, count } }; IMPLICIT: [1] constructed { start, count }.
        let parts = children(e);
        if (parts.length === 1 && parts[0]!.tag === 0x30) parts = children(parts[0]!);
        if (parts.length < 2 || parts[0]!.tag !== 0x16) throw new DerError('TNAuthList: bad range');
        out.push({ range: { start: content(parts[0]!).toString('ascii'), count: intOf(parts[1]!) } });
        break;
      }
      default: throw new DerError(`TNAuthList: unknown entry tag 0x${e.tag.toString(16)}`);
    }
  }
  return out;
}

function allDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c < 48 || c > 57) return false; }
  return true;
}

/** True if a range of `count` numbers starting at `start` holds `tn` (same length, numeric).
 *  Telephone numbers are at most 15 digits, so they are exact as doubles. */
function inRange(tn: string, start: string, count: number): boolean {
  if (tn.length !== start.length || tn.length > 15 || !allDigits(tn) || !allDigits(start)) return false;
  const d = Number(tn) - Number(start);
  return d >= 0 && d < count;
}

/** Does the list authorise the canonical telephone number `tn`? RFC 8226 §9. An SPC entry
 *  authorises any number when `spcs` is undefined (SHAKEN practice: the STI-PA vetted the
 *  provider), otherwise only when its code is listed. */
export function tnAuthorises(list: TnAuthEntry[], tn: string | undefined, spcs?: readonly string[]): boolean {
  for (const e of list) {
    if ('spc' in e) { if (!spcs || spcs.includes(e.spc)) return true; continue; }
    if (tn === undefined) continue;
    if ('tn' in e) { if (e.tn === tn) return true; continue; }
    if (inRange(tn, e.range.start, e.range.count)) return true;
  }
  return false;
}
