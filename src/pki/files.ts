// File-level PKI operations behind `peergate certs`: each writes `<name>.pem` + `<name>.key`
// into a directory, issuing from CA files already there. Idempotent where asked (skip what
// exists) so `peergate start` can call ensureDevCertificates on every run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, issueCertificate, loadPrivateKey, type CertSpec, type Issued, type KeyAlg } from './x509.js';
import type { TnAuthEntry } from './tnauthlist.js';

export interface Written { name: string; certPath: string; keyPath: string; created: boolean }

export interface WriteOptions {
  /** Keep an existing `<name>.pem`/`<name>.key` pair instead of replacing it. */
  skipExisting?: boolean;
}

function paths(dir: string, name: string) {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`certificate name '${name}' may use only letters, digits, '.', '_' and '-'`);
  return { certPath: join(dir, `${name}.pem`), keyPath: join(dir, `${name}.key`) };
}

function loadIssuer(dir: string, name: string): { certPem: string; key: ReturnType<typeof loadPrivateKey> } {
  const p = paths(dir, name);
  if (!existsSync(p.certPath) || !existsSync(p.keyPath)) {
    throw new Error(`issuer '${name}' not found in ${dir} (expected ${name}.pem and ${name}.key; create it first)`);
  }
  return { certPem: readFileSync(p.certPath, 'utf8'), key: loadPrivateKey(readFileSync(p.keyPath, 'utf8')) };
}

function write(dir: string, name: string, make: () => Issued, opts: WriteOptions, extraPem = ''): Written {
  mkdirSync(dir, { recursive: true });
  const p = paths(dir, name);
  if (opts.skipExisting && existsSync(p.certPath) && existsSync(p.keyPath)) return { name, ...p, created: false };
  const issued = make();
  writeFileSync(p.keyPath, issued.keyPem, { mode: 0o600 });
  writeFileSync(p.certPath, issued.certPem + extraPem);
  return { name, ...p, created: true };
}

function leaf(dir: string, name: string, issuerName: string | undefined, spec: Omit<CertSpec, 'key' | 'issuer'>, alg: KeyAlg, opts: WriteOptions, chain = false): Written {
  return write(dir, name, () => {
    const issuer = issuerName ? loadIssuer(dir, issuerName) : undefined;
    return issueCertificate({ ...spec, key: generateKey(alg), ...(issuer ? { issuer } : {}) });
  }, opts, chain && issuerName ? readFileSync(paths(dir, issuerName).certPath, 'utf8') : '');
}

/** Federation CA: the root that signs peers' and the SBE's TLS certificates (mutual TLS). */
export function createFederationCa(dir: string, opts: WriteOptions & { cn?: string; days?: number } = {}): Written {
  return leaf(dir, 'federation-ca', undefined, { subject: { CN: opts.cn ?? 'peergate federation CA', O: 'peergate' }, ca: true, days: opts.days ?? 3650 }, 'ec', opts);
}

/** A TLS certificate (server and client use) issued by the federation CA. */
export function createPeerCertificate(dir: string, name: string, o: WriteOptions & { cn: string; san: string[]; days?: number; issuer?: string }): Written {
  return leaf(dir, name, o.issuer ?? 'federation-ca', {
    subject: { CN: o.cn }, san: o.san, days: o.days ?? 825,
    keyUsage: ['digitalSignature'], extKeyUsage: ['serverAuth', 'clientAuth'],
  }, 'ec', o);
}

/** STI-CA root and intermediate (SHAKEN trust anchors and issuing CA), EC P-256. */
export function createStiCa(dir: string, opts: WriteOptions & { days?: number } = {}): Written[] {
  const root = leaf(dir, 'sti-ca-root', undefined, { subject: { CN: 'peergate test STI-CA root', O: 'peergate' }, ca: true, days: opts.days ?? 3650 }, 'ec', opts);
  const inter = leaf(dir, 'sti-ca-intermediate', 'sti-ca-root', { subject: { CN: 'peergate test STI-CA intermediate', O: 'peergate' }, ca: { pathLen: 0 }, days: opts.days ?? 1825 }, 'ec', opts);
  return [root, inter];
}

/** Parse `SPC:709J`, `TN:12025550100`, `RANGE:12025550100+100` (comma-separated). */
export function parseTnAuthSpec(text: string): TnAuthEntry[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    const m = /^(SPC|TN|RANGE):(.+)$/i.exec(item);
    if (!m) throw new Error(`--tn-auth-list: '${item}' is not SPC:<code>, TN:<number> or RANGE:<start>+<count>`);
    const kind = m[1]!.toUpperCase();
    const v = m[2]!;
    if (kind === 'SPC') return { spc: v };
    if (kind === 'TN') return { tn: v.replace(/^\+/, '') };
    const r = /^\+?([0-9]+)\+([0-9]+)$/.exec(v);
    if (!r) throw new Error(`--tn-auth-list: range '${v}' must be <start>+<count>`);
    return { range: { start: r[1]!, count: Number(r[2]) } };
  });
}

/** Service-provider (STI) signing certificate with TNAuthList, issued by the STI-CA
 *  intermediate. `<name>.pem` holds leaf + intermediate: the bundle to publish at x5u. */
export function createSpCertificate(dir: string, name: string, o: WriteOptions & { tnAuthList: TnAuthEntry[]; cn?: string; days?: number; issuer?: string }): Written {
  return leaf(dir, name, o.issuer ?? 'sti-ca-intermediate', {
    subject: { CN: o.cn ?? `SHAKEN ${name}`, O: 'peergate' }, tnAuthList: o.tnAuthList, days: o.days ?? 365,
    keyUsage: ['digitalSignature'],
  }, 'ec', o, true);
}

/** RSA certificate for RFC 4474 signing of `domain` (self-signed unless an issuer is named). */
export function createRfc4474Certificate(dir: string, name: string, o: WriteOptions & { domain: string; days?: number; issuer?: string }): Written {
  return leaf(dir, name, o.issuer, {
    subject: { CN: o.domain }, san: [o.domain], days: o.days ?? 365, keyUsage: ['digitalSignature'],
  }, 'rsa', o);
}

export interface DevCertificates {
  dir: string;
  federationCa: Written; server: Written; peer: Written;
  stiRoot: Written; stiIntermediate: Written; sp: Written; rfc4474: Written;
}

/** Everything `peergate start` needs to run on a development box, created once under `dir`
 *  (existing files are kept, so repeated starts reuse them). */
export function ensureDevCertificates(dir: string): DevCertificates {
  const opts = { skipExisting: true };
  const federationCa = createFederationCa(dir, opts);
  const server = createPeerCertificate(dir, 'sbe', { ...opts, cn: 'localhost', san: ['localhost', '127.0.0.1', '::1'] });
  const peer = createPeerCertificate(dir, 'peer-a', { ...opts, cn: 'peer-a.example', san: ['peer-a.example', 'localhost', '127.0.0.1'] });
  const [stiRoot, stiIntermediate] = createStiCa(dir, opts) as [Written, Written];
  const sp = createSpCertificate(dir, 'sp-dev', { ...opts, tnAuthList: [{ spc: '0000' }] });
  const rfc4474 = createRfc4474Certificate(dir, 'rfc4474-localhost', { ...opts, domain: 'localhost' });
  return { dir, federationCa, server, peer, stiRoot, stiIntermediate, sp, rfc4474 };
}
