// X.509 v3 certificate issuance (RFC 5280) for peergate's PKI tooling.
// node-forge's certificate API handles RSA only, and STIR/SHAKEN needs EC P-256 keys
// everywhere (ATIS-1000080), so certificates are assembled with the DER writer in der.ts
// and signed with node:crypto; node-forge supplies the PKCS#1/PKCS#8 PEM helpers.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { bits, bool, int, nul, octets, oid, seq, set, subjectNameDer, time, tlv, utf8 } from './der.js';
import { encodeTnAuthList, TN_AUTH_LIST_OID, type TnAuthEntry } from './tnauthlist.js';

export type KeyAlg = 'ec' | 'rsa';
export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

export interface SubjectName { CN: string; O?: string; OU?: string; C?: string }

export interface CertSpec {
  subject: SubjectName;
  /** The subject's private key (its public half goes into the certificate). */
  key: KeyObject;
  /** Issuer certificate (PEM) and its private key; omitted = self-signed. */
  issuer?: { certPem: string; key: KeyObject };
  days?: number;
  notBefore?: Date;
  /** CA certificate (basicConstraints cA=TRUE, optional pathLenConstraint). */
  ca?: boolean | { pathLen: number };
  keyUsage?: KeyUsage[];
  extKeyUsage?: ExtKeyUsage[];
  /** `DNS:name`, `IP:addr`, `URI:uri`, or a bare name/address (IP when it parses as one). */
  san?: string[];
  tnAuthList?: TnAuthEntry[];
}

export interface Issued { certPem: string; keyPem: string; cert: X509Certificate }

const OID = {
  CN: '2.5.4.3', O: '2.5.4.10', OU: '2.5.4.11', C: '2.5.4.6',
  basicConstraints: '2.5.29.19', keyUsage: '2.5.29.15', extKeyUsage: '2.5.29.37', subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14', authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2',
  ecdsaSha256: '1.2.840.10045.4.3.2', rsaSha256: '1.2.840.113549.1.1.11',
} as const;

const KEY_USAGE_BIT: Record<KeyUsage, number> = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

/** A fresh private key: EC P-256 (SHAKEN, TLS) or RSA-2048 (RFC 4474). */
export function generateKey(alg: KeyAlg): KeyObject {
  return alg === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
    : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/** PEM of a private key: SEC1 `EC PRIVATE KEY` (what Kamailio's secsipid reads) or PKCS#1 RSA
 *  (what auth_identity reads). */
export function privateKeyPem(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') return key.export({ type: 'sec1', format: 'pem' }).toString();
  // Round-trip through forge so the PEM is PKCS#1 `RSA PRIVATE KEY`, the form OpenSSL 1.x era tools expect.
  const pkcs8 = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  return forge.pki.privateKeyToPem(forge.pki.privateKeyFromPem(pkcs8));
}

export function loadPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

function name(n: SubjectName): Buffer {
  const rdns: Buffer[] = [];
  if (n.C) rdns.push(set(seq(oid(OID.C), tlv(0x13, Buffer.from(n.C, 'ascii')))));
  if (n.O) rdns.push(set(seq(oid(OID.O), utf8(n.O))));
  if (n.OU) rdns.push(set(seq(oid(OID.OU), utf8(n.OU))));
  rdns.push(set(seq(oid(OID.CN), utf8(n.CN))));
  return seq(...rdns);
}

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function keyId(pub: KeyObject): Buffer {
  // RFC 5280 §4.2.1.2 allows any unique method; hashing the whole SPKI is stable and cheap.
  return createHash('sha1').update(pub.export({ type: 'spki', format: 'der' })).digest();
}

function generalName(s: string): Buffer {
  const m = /^(DNS|IP|URI):(.*)$/i.exec(s);
  const kind = m ? m[1]!.toUpperCase() : isIP(s) ? 'IP' : 'DNS';
  const v = m ? m[2]! : s;
  if (kind === 'URI') return tlv(0x86, Buffer.from(v, 'ascii'));
  if (kind === 'IP') {
    const fam = isIP(v);
    if (fam === 4) return tlv(0x87, Buffer.from(v.split('.').map(Number)));
    if (fam === 6) {
      // Expand :: and write 8 groups of 16 bits.
      const [head, tail] = v.includes('::') ? v.split('::') : [v, undefined];
      const h = head ? head.split(':') : [];
      const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
      const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
      const b = Buffer.alloc(16);
      groups.forEach((g, i) => b.writeUInt16BE(parseInt(g as string, 16), i * 2));
      return tlv(0x87, b);
    }
    throw new Error(`subjectAltName: '${v}' is not an IP address`);
  }
  return tlv(0x82, Buffer.from(v, 'ascii'));
}

function keyUsageBits(list: KeyUsage[]): Buffer {
  let byte = 0;
  for (const u of list) byte |= 0x80 >> KEY_USAGE_BIT[u];
  let unused = 0;
  while (unused < 7 && !(byte & (1 << unused))) unused++;
  return tlv(0x03, Buffer.from([unused, byte]));
}

/** Issue a certificate; the result verifies with `openssl verify` against its issuer. */
export function issueCertificate(spec: CertSpec): Issued {
  const pub = createPublicKey(spec.key);
  const issuerCert = spec.issuer ? new X509Certificate(spec.issuer.certPem) : undefined;
  const signer = spec.issuer ? spec.issuer.key : spec.key;
  const issuerName = issuerCert ? subjectNameDer(issuerCert.raw) : name(spec.subject);
  const issuerPub = issuerCert ? issuerCert.publicKey : pub;
  const ecSigner = signer.asymmetricKeyType === 'ec';
  const sigAlg = ecSigner ? seq(oid(OID.ecdsaSha256)) : seq(oid(OID.rsaSha256), nul());

  const notBefore = spec.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (spec.days ?? 365) * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;

  const exts: Buffer[] = [];
  if (spec.ca) {
    const pathLen = typeof spec.ca === 'object' ? [int(spec.ca.pathLen)] : [];
    exts.push(ext(OID.basicConstraints, true, seq(bool(true), ...pathLen)));
  }
  const ku = spec.keyUsage ?? (spec.ca ? ['keyCertSign', 'cRLSign'] : ['digitalSignature']);
  exts.push(ext(OID.keyUsage, true, keyUsageBits(ku)));
  if (spec.extKeyUsage?.length) exts.push(ext(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map((e) => oid(OID[e])))));
  if (spec.san?.length) exts.push(ext(OID.subjectAltName, false, seq(...spec.san.map(generalName))));
  exts.push(ext(OID.subjectKeyId, false, octets(keyId(pub))));
  exts.push(ext(OID.authorityKeyId, false, seq(tlv(0x80, keyId(issuerPub)))));
  if (spec.tnAuthList) exts.push(ext(TN_AUTH_LIST_OID, false, encodeTnAuthList(spec.tnAuthList)));

  const tbs = seq(
    tlv(0xa0, int(2)),
    int(serial),
    sigAlg,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    name(spec.subject),
    pub.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign(ecSigner ? 'sha256' : 'sha256', tbs, signer);
  const der = seq(tbs, sigAlg, bits(signature));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return { certPem, keyPem: privateKeyPem(spec.key), cert: new X509Certificate(der) };
}
