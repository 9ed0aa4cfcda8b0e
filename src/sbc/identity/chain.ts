// Certificate path validation for identity credentials (RFC 5280 §6, the parts that matter
// here): leaf → intermediates from the fetched bundle → a configured trust anchor, each
// signature checked, each certificate within its validity dates, issuers marked as CAs.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type ChainResult = { ok: true; notAfter: number; notBefore: number } | { ok: false; reason: string };

const MAX_DEPTH = 6;

/** Read every certificate in the PEM files (clear error naming the file otherwise). */
export function loadAnchors(files: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) { throw new Error(`identity trust anchor ${f}: ${(e as Error).message}`); }
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error(`identity trust anchor ${f}: no PEM certificate in file`);
    for (const b of blocks) out.push(new X509Certificate(b));
  }
  return out;
}

function dates(c: X509Certificate): [number, number] {
  return [Date.parse(c.validFrom), Date.parse(c.validTo)];
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  return child.checkIssued(issuer) && child.verify(issuer.publicKey);
}

/** Validate `chain[0]` against `anchors`, using the rest of `chain` as untrusted intermediates. */
export function validateChain(chain: readonly X509Certificate[], anchors: readonly X509Certificate[], now: number): ChainResult {
  if (anchors.length === 0) return { ok: false, reason: 'no trust anchors configured' };
  let cur = chain[0];
  if (!cur) return { ok: false, reason: 'empty certificate chain' };
  let notBefore = -Infinity;
  let notAfter = Infinity;
  const used = new Set<X509Certificate>([cur]);
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    const [from, to] = dates(cur);
    if (!(now >= from && now <= to)) return { ok: false, reason: `certificate '${cur.subject.replace(/\n/g, ', ')}' is outside its validity period` };
    notBefore = Math.max(notBefore, from);
    notAfter = Math.min(notAfter, to);
    // A configured anchor presented in the bundle (or a self-signed leaf configured as anchor).
    if (anchors.some((a) => a.fingerprint256 === cur!.fingerprint256)) return { ok: true, notBefore, notAfter };
    const anchor = anchors.find((a) => issuedBy(cur!, a));
    if (anchor) {
      const [af, at] = dates(anchor);
      if (!(now >= af && now <= at)) return { ok: false, reason: 'trust anchor is outside its validity period' };
      return { ok: true, notBefore: Math.max(notBefore, af), notAfter: Math.min(notAfter, at) };
    }
    const next = chain.find((c) => !used.has(c) && c.ca && issuedBy(cur!, c));
    if (!next) return { ok: false, reason: 'certificate does not chain to a configured trust anchor' };
    used.add(next);
    cur = next;
  }
  return { ok: false, reason: 'certificate chain too long' };
}
