// The TLS material a policy names (certificate, key, chain, client CAs, CRLs), read from disk
// and checked as a whole before the transport gets any of it: an unreadable file, a key that
// does not match its certificate or a CRL that does not parse refuses the policy (with the
// key that names it), so a reload never installs half of a change.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Tls } from '../policy/schema.js';
import type { TransportTlsOptions } from '../engine/transport/index.js';
import { readNode, children, DerError, type DerNode } from '../pki/der.js';
import type { PolicyProblem } from './subsystem.js';

export interface CrlInfo {
  file: string;
  /** Absent when the CRL has no nextUpdate (RFC 5280 requires one; OpenSSL accepts it). */
  nextUpdate?: Date;
}

export interface TlsMaterial {
  options: TransportTlsOptions;
  /** Digest of every byte and setting, to tell whether a reload changes anything. */
  digest: string;
  crls: CrlInfo[];
}

export type TlsRead = { ok: true; material: TlsMaterial } | { ok: false; problems: PolicyProblem[] };

export function readTlsMaterial(tls: Tls): TlsRead {
  const problems: PolicyProblem[] = [];
  const hash = createHash('sha256');
  const read = (keyPath: (string | number)[], file: string): Buffer | undefined => {
    try {
      const b = readFileSync(file);
      hash.update(file).update(b);
      return b;
    } catch (err) {
      problems.push({ keyPath, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return undefined;
    }
  };
  const cert = read(['tls', 'certificate'], tls.certificate);
  const key = read(['tls', 'key'], tls.key);
  const chain = tls.chain ? read(['tls', 'chain'], tls.chain) : undefined;
  const clientCAs = tls.client_cas.map((f, i) => read(['tls', 'client_cas', i], f));
  const crlBytes = tls.crls.map((f, i) => read(['tls', 'crls', i], f));
  if (problems.length > 0) return { ok: false, problems };

  let x509: X509Certificate | undefined;
  try { x509 = new X509Certificate(cert!); } catch { problems.push({ keyPath: ['tls', 'certificate'], message: `${tls.certificate}: not a PEM certificate` }); }
  try {
    const k = createPrivateKey(key!);
    if (x509 && !x509.checkPrivateKey(k)) problems.push({ keyPath: ['tls', 'key'], message: `${tls.key} is not the key of ${tls.certificate}` });
  } catch { problems.push({ keyPath: ['tls', 'key'], message: `${tls.key}: not a PEM private key (or it is encrypted)` }); }
  clientCAs.forEach((b, i) => {
    try { new X509Certificate(b!); } catch { problems.push({ keyPath: ['tls', 'client_cas', i], message: `${tls.client_cas[i]}: not a PEM certificate` }); }
  });
  const crls: CrlInfo[] = [];
  crlBytes.forEach((b, i) => {
    const file = tls.crls[i]!;
    const r = crlNextUpdate(b!);
    if (typeof r === 'string') problems.push({ keyPath: ['tls', 'crls', i], message: `${file}: ${r}` });
    else crls.push({ file, ...(r.nextUpdate ? { nextUpdate: r.nextUpdate } : {}) });
  });
  if (problems.length > 0) return { ok: false, problems };

  const options: TransportTlsOptions = {
    key: key!, cert: cert!, ...(chain ? { chain } : {}),
    clientCAs: clientCAs as Buffer[], crls: crlBytes as Buffer[],
    requireClientCert: tls.require_client_cert, minVersion: tls.min_version,
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
  };
  // What OpenSSL itself would refuse (a CRL of an unknown format, a cipher list it does not know).
  try {
    createSecureContext({ key: key!, cert: cert!, ca: clientCAs as Buffer[], ...(crlBytes.length ? { crl: crlBytes as Buffer[] } : {}), ...(tls.ciphers ? { ciphers: tls.ciphers } : {}) });
  } catch (err) {
    problems.push({ keyPath: tls.ciphers && /cipher/i.test((err as Error).message) ? ['tls', 'ciphers'] : ['tls'], message: `OpenSSL refuses this material: ${(err as Error).message}` });
    return { ok: false, problems };
  }
  hash.update(JSON.stringify([tls.require_client_cert, tls.min_version, tls.ciphers ?? '']));
  return { ok: true, material: { options, digest: hash.digest('hex'), crls } };
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;

/**
 * The earliest nextUpdate of the CRLs in a PEM file (RFC 5280 §5.1: CertificateList →
 * tbsCertList → version?, signature, issuer, thisUpdate, nextUpdate?), or why it is no CRL.
 */
export function crlNextUpdate(pem: Buffer | string): { nextUpdate?: Date } | string {
  const text = pem.toString('latin1');
  let earliest: Date | undefined;
  let count = 0;
  for (const m of text.matchAll(PEM_CRL)) {
    count++;
    try {
      const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
      const list = readNode(der, 0);
      const tbs = children(list)[0];
      if (!tbs || tbs.tag !== 0x30) return 'not an X.509 CRL';
      const fields = children(tbs);
      let i = fields[0]?.tag === 0x02 ? 1 : 0; // optional version
      i += 2; // signature algorithm, issuer
      const thisUpdate = fields[i];
      if (!thisUpdate || !isTime(thisUpdate)) return 'not an X.509 CRL (no thisUpdate)';
      const next = fields[i + 1];
      if (next && isTime(next)) {
        const d = derTime(next);
        if (!earliest || d < earliest) earliest = d;
      }
    } catch (err) {
      return `not an X.509 CRL (${err instanceof DerError ? err.message : 'bad encoding'})`;
    }
  }
  if (count === 0) return 'no "-----BEGIN X509 CRL-----" block';
  return earliest ? { nextUpdate: earliest } : {};
}

function isTime(n: DerNode): boolean {
  return n.tag === 0x17 || n.tag === 0x18;
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function derTime(n: DerNode): Date {
  const s = n.buf.subarray(n.contentStart, n.end).toString('latin1');
  const m = n.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`bad time ${s}`);
  let year = Number(m[1]);
  if (n.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
