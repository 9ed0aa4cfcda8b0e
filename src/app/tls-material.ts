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
  /** Serial numbers the CRL revokes (upper-case hex, no leading zeros). */
  revoked: string[];
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
    const k = createPrivateKey(tls.key_passphrase !== undefined ? { key: key!, passphrase: tls.key_passphrase } : key!);
    if (x509 && !x509.checkPrivateKey(k)) problems.push({ keyPath: ['tls', 'key'], message: `${tls.key} is not the key of ${tls.certificate}` });
  } catch { problems.push({ keyPath: ['tls', 'key'], message: `${tls.key}: not a PEM private key (or it is encrypted)` }); }
  clientCAs.forEach((b, i) => {
    try { new X509Certificate(b!); } catch { problems.push({ keyPath: ['tls', 'client_cas', i], message: `${tls.client_cas[i]}: not a PEM certificate` }); }
  });
  const crls: CrlInfo[] = [];
  crlBytes.forEach((b, i) => {
    const file = tls.crls[i]!;
    const r = parseCrl(b!);
    if (typeof r === 'string') problems.push({ keyPath: ['tls', 'crls', i], message: `${file}: ${r}` });
    else crls.push({ file, revoked: r.revoked, ...(r.nextUpdate ? { nextUpdate: r.nextUpdate } : {}) });
  });
  if (problems.length > 0) return { ok: false, problems };

  const options: TransportTlsOptions = {
    key: key!, cert: cert!, ...(chain ? { chain } : {}),
    ...(tls.key_passphrase !== undefined ? { passphrase: tls.key_passphrase } : {}),
    clientCAs: clientCAs as Buffer[], crls: crlBytes as Buffer[],
    requireClientCert: tls.require_client_cert, minVersion: tls.min_version,
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    // OpenSSL reports a revoked certificate as CRL_HAS_EXPIRED when the CRL is stale, so the
    // transport checks the serial against the stale CRLs' lists itself.
    ...(tls.stale_crl === 'serve' ? { acceptStaleCrl: { revokedSerials: new Set(crls.flatMap((c) => c.revoked)) } } : {}),
  };
  // What OpenSSL itself would refuse (a CRL of an unknown format, a cipher list it does not know).
  try {
    createSecureContext({ key: key!, ...(tls.key_passphrase !== undefined ? { passphrase: tls.key_passphrase } : {}), cert: cert!, ca: clientCAs as Buffer[], ...(crlBytes.length ? { crl: crlBytes as Buffer[] } : {}), ...(tls.ciphers ? { ciphers: tls.ciphers } : {}) });
  } catch (err) {
    problems.push({ keyPath: tls.ciphers && /cipher/i.test((err as Error).message) ? ['tls', 'ciphers'] : ['tls'], message: `OpenSSL refuses this material: ${(err as Error).message}` });
    return { ok: false, problems };
  }
  hash.update(settingsOf(tls));
  return { ok: true, material: { options, digest: hash.digest('hex'), crls } };
}

/** Settings that change the material without changing a file (part of the digest). */
function settingsOf(tls: Tls): string {
  return JSON.stringify([tls.key_passphrase ?? '', tls.require_client_cert, tls.min_version, tls.ciphers ?? '', tls.stale_crl]);
}

/**
 * The digest readTlsMaterial() would give for the files as they are now, without parsing them:
 * the cheap test of the periodic recheck. Undefined when a file cannot be read (a full read
 * says why).
 */
export function materialDigest(tls: Tls): string | undefined {
  const hash = createHash('sha256');
  for (const file of [tls.certificate, tls.key, ...(tls.chain ? [tls.chain] : []), ...tls.client_cas, ...tls.crls]) {
    try { hash.update(file).update(readFileSync(file)); } catch { return undefined; }
  }
  return hash.update(settingsOf(tls)).digest('hex');
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;

/**
 * The earliest nextUpdate and the revoked serial numbers of the CRLs in a PEM file (RFC 5280
 * §5.1: CertificateList → tbsCertList → version?, signature, issuer, thisUpdate, nextUpdate?,
 * revokedCertificates?), or why it is no CRL.
 */
export function parseCrl(pem: Buffer | string): { nextUpdate?: Date; revoked: string[] } | string {
  const text = pem.toString('latin1');
  let earliest: Date | undefined;
  let count = 0;
  const revoked: string[] = [];
  for (const m of text.matchAll(PEM_CRL)) {
    count++;
    try {
      const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
      const crl = readNode(der, 0);
      const tbs = children(crl)[0];
      if (!tbs || tbs.tag !== 0x30) return 'not an X.509 CRL';
      const fields = children(tbs);
      let i = fields[0]?.tag === 0x02 ? 1 : 0; // optional version
      i += 2; // signature algorithm, issuer
      const thisUpdate = fields[i];
      if (!thisUpdate || !isTime(thisUpdate)) return 'not an X.509 CRL (no thisUpdate)';
      let k = i + 1;
      const next = fields[k];
      if (next && isTime(next)) {
        const d = derTime(next);
        if (!earliest || d < earliest) earliest = d;
        k++;
      }
      const list = fields[k];
      if (list && list.tag === 0x30) {
        for (const entry of children(list)) {
          const serial = children(entry)[0];
          if (serial?.tag !== 0x02) return 'not an X.509 CRL (bad revoked entry)';
          revoked.push(serialHex(serial));
        }
      }
    } catch (err) {
      return `not an X.509 CRL (${err instanceof DerError ? err.message : 'bad encoding'})`;
    }
  }
  if (count === 0) return 'no "-----BEGIN X509 CRL-----" block';
  return earliest ? { nextUpdate: earliest, revoked } : { revoked };
}

/** An INTEGER's value as node prints certificate serials: upper-case hex, no leading zeros. */
function serialHex(n: DerNode): string {
  return normalizeSerial(n.buf.subarray(n.contentStart, n.end).toString('hex'));
}

export function normalizeSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
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
