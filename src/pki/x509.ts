// X.509 v3 certificate issuance (RFC 5280) for peergate's PKI tooling (`peergate certs`).
// node-forge builds the certificate: names, extensions and the TBSCertificate through its
// ASN.1 API, including TNAuthList (tnauthlist.ts). What forge cannot do is EC: its certificate
// API signs and encodes RSA keys only, and STIR/SHAKEN needs EC P-256 everywhere
// (ATIS-1000080). So the SubjectPublicKeyInfo comes from node:crypto's export, and the
// signature from node:crypto's sign, for EC and RSA alike.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { encodeTnAuthList, TN_AUTH_LIST_OID, type TnAuthEntry } from './tnauthlist.js';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

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

const OID = { ecdsaSha256: '1.2.840.10045.4.3.2', rsaSha256: '1.2.840.113549.1.1.11' } as const;

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

// forge's ASN.1 values are binary strings (one char per byte).
const fromDer = (der: Buffer): Asn1 => asn1.fromDer(der.toString('binary'));
const toDer = (node: Asn1): Buffer => Buffer.from(asn1.toDer(node).getBytes(), 'binary');
const U = asn1.Class.UNIVERSAL;
/** Exported by forge's x509 module, missing from @types/node-forge. */
const extensionsToAsn1 = (forge.pki as unknown as { certificateExtensionsToAsn1(exts: unknown[]): Asn1 }).certificateExtensionsToAsn1;

/** C as PrintableString (RFC 5280 §A.1), the rest UTF8String (§4.1.2.6). */
function nameAttributes(n: SubjectName): forge.pki.CertificateField[] {
  const utf8 = (shortName: string, value: string) => ({ shortName, value, valueTagClass: asn1.Type.UTF8 as unknown as forge.asn1.Class }); // typed as Class, read as Type
  return [
    ...(n.C ? [{ shortName: 'C', value: n.C }] : []),
    ...(n.O ? [utf8('O', n.O)] : []),
    ...(n.OU ? [utf8('OU', n.OU)] : []),
    utf8('CN', n.CN),
  ];
}

function keyId(pub: KeyObject): string {
  // RFC 5280 §4.2.1.2 allows any unique method; hashing the whole SPKI is stable and cheap.
  return createHash('sha1').update(pub.export({ type: 'spki', format: 'der' })).digest('binary');
}

/** `DNS:name`, `IP:addr`, `URI:uri`, or a bare name/address, as a forge altName. */
function altName(s: string): { type: number; value?: string; ip?: string } {
  const m = /^(DNS|IP|URI):(.*)$/i.exec(s);
  const kind = m ? m[1]!.toUpperCase() : isIP(s) ? 'IP' : 'DNS';
  const v = m ? m[2]! : s;
  if (kind === 'URI') return { type: 6, value: v };
  if (kind === 'IP') {
    const family = isIP(v);
    if (!family) throw new Error(`subjectAltName: '${v}' is not an IP address`);
    // forge reads hex groups only: the URL parser rewrites a dotted tail (::ffff:192.0.2.1) in hex.
    return { type: 7, ip: family === 6 ? new URL(`http://[${v}]`).hostname.slice(1, -1) : v };
  }
  return { type: 2, value: v };
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
function time(d: Date): Asn1 {
  return d.getUTCFullYear() < 2050
    ? asn1.create(U, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

/** The issuer's subject Name exactly as encoded in its certificate (RFC 5280 §4.1.2.4 compares names). */
function subjectOf(certDer: Buffer): Asn1 {
  const tbs = (fromDer(certDer).value as Asn1[])[0]!.value as Asn1[];
  // version [0] is present in v3 certificates; subject is the 5th field after it.
  return tbs[(tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0) + 4]!;
}

/** Issue a certificate; the result verifies with `openssl verify` against its issuer. */
export function issueCertificate(spec: CertSpec): Issued {
  const pub = createPublicKey(spec.key);
  const issuerCert = spec.issuer ? new X509Certificate(spec.issuer.certPem) : undefined;
  const signer = spec.issuer ? spec.issuer.key : spec.key;
  const ecSigner = signer.asymmetricKeyType === 'ec';
  const sigAlg = asn1.create(U, asn1.Type.SEQUENCE, true, [
    asn1.create(U, asn1.Type.OID, false, asn1.oidToDer(ecSigner ? OID.ecdsaSha256 : OID.rsaSha256).getBytes()),
    // RFC 5758 §3.2: no parameters for ECDSA; RFC 4055 §5: NULL for RSA.
    ...(ecSigner ? [] : [asn1.create(U, asn1.Type.NULL, false, '')]),
  ]);

  const notBefore = spec.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (spec.days ?? 365) * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and no leading zero octet to strip

  // forge fills in each extension's value from these fields (certificateExtensionToAsn1).
  const cert = forge.pki.createCertificate();
  const ku = spec.keyUsage ?? (spec.ca ? ['keyCertSign', 'cRLSign'] : ['digitalSignature']);
  cert.setSubject(nameAttributes(spec.subject));
  cert.setExtensions([
    ...(spec.ca ? [{ name: 'basicConstraints', critical: true, cA: true, ...(typeof spec.ca === 'object' ? { pathLenConstraint: spec.ca.pathLen } : {}) }] : []),
    { name: 'keyUsage', critical: true, ...Object.fromEntries(ku.map((u) => [u, true])) },
    ...(spec.extKeyUsage?.length ? [{ name: 'extKeyUsage', ...Object.fromEntries(spec.extKeyUsage.map((u) => [u, true])) }] : []),
    ...(spec.san?.length ? [{ name: 'subjectAltName', altNames: spec.san.map(altName) }] : []),
    { name: 'subjectKeyIdentifier', value: asn1.create(U, asn1.Type.OCTETSTRING, false, keyId(pub)) },
    { name: 'authorityKeyIdentifier', keyIdentifier: keyId(issuerCert ? issuerCert.publicKey : pub) },
    ...(spec.tnAuthList ? [{ id: TN_AUTH_LIST_OID, value: encodeTnAuthList(spec.tnAuthList).toString('binary') }] : []),
  ]);

  const tbs = asn1.create(U, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]),
    asn1.create(U, asn1.Type.INTEGER, false, serial.toString('binary')),
    sigAlg,
    issuerCert ? subjectOf(issuerCert.raw) : forge.pki.distinguishedNameToAsn1(cert.subject),
    asn1.create(U, asn1.Type.SEQUENCE, true, [time(notBefore), time(notAfter)]),
    forge.pki.distinguishedNameToAsn1(cert.subject),
    fromDer(pub.export({ type: 'spki', format: 'der' })),
    extensionsToAsn1(cert.extensions as unknown[]),
  ]);
  const tbsDer = toDer(tbs);
  const signature = sign('sha256', tbsDer, signer);
  const der = toDer(asn1.create(U, asn1.Type.SEQUENCE, true, [
    fromDer(tbsDer), sigAlg, asn1.create(U, asn1.Type.BITSTRING, false, `\0${signature.toString('binary')}`),
  ]));
  const certPem = forge.pem.encode({ type: 'CERTIFICATE', body: der.toString('binary') }).replace(/\r\n/g, '\n');
  return { certPem, keyPem: privateKeyPem(spec.key), cert: new X509Certificate(der) };
}
