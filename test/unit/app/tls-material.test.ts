// TLS material as a reload sees it: read and checked as a whole, each problem naming the
// policy key; CRLs parsed for nextUpdate and revoked serials (real openssl-made files).
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { readTlsMaterial, materialDigest, parseCrl, normalizeSerial } from '../../../src/app/tls-material.js';
import { TlsSchema } from '../../../src/policy/schema.js';
import { makePki, makeCrl, issueCert, type TestPki } from '../../helpers/tls.js';

let pki: TestPki;
beforeAll(() => { pki = makePki(); }, 60_000);

const tlsOf = (o: Record<string, unknown>) => TlsSchema.parse({ certificate: pki.server.certFile, key: pki.server.keyFile, client_cas: [pki.ca.certFile], ...o });

describe('parseCrl', () => {
  it('reads nextUpdate and the revoked serials; refuses what is no CRL', () => {
    const victim = issueCert(pki.ca, 'victim');
    const crl = makeCrl(pki.ca, [victim]);
    const r = parseCrl(crl);
    if (typeof r === 'string') throw new Error(r);
    const openssl = execFileSync('openssl', ['crl', '-noout', '-nextupdate'], { input: crl }).toString();
    // nextUpdate=Jan  2 10:00:00 2027 GMT
    expect(r.nextUpdate!.getTime()).toBe(new Date(openssl.split('=')[1]!.trim()).getTime());
    expect(r.revoked).toEqual([normalizeSerial(new X509Certificate(victim.cert).serialNumber)]);
    expect(parseCrl(pki.ca.cert)).toMatch(/no "-----BEGIN X509 CRL-----" block/);
    expect(parseCrl('-----BEGIN X509 CRL-----\nMIIBCgIBAA==\n-----END X509 CRL-----\n')).toMatch(/not an X.509 CRL/);
  });

  it('reads a CRL whose nextUpdate is in the past', () => {
    execFileSync('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-crl_lastupdate', '20200101000000Z', '-crl_nextupdate', '20200102000000Z', '-out', 'old.pem'], { cwd: pki.ca.dir, stdio: 'ignore' });
    const r = parseCrl(readFileSync(join(pki.ca.dir, 'old.pem')));
    expect(r).toMatchObject({ nextUpdate: new Date(Date.UTC(2020, 0, 2)) });
  });
});

describe('readTlsMaterial', () => {
  it('good material: options for the transport and a digest that follows the files', () => {
    const crlFile = join(pki.dir, 'm-crl.pem');
    writeFileSync(crlFile, makeCrl(pki.ca));
    const a = readTlsMaterial(tlsOf({ crls: [crlFile] }));
    if (!a.ok) throw new Error(JSON.stringify(a.problems));
    expect(a.material.options.requireClientCert).toBe(true);
    expect(a.material.options.acceptStaleCrl).toBeUndefined();
    expect(a.material.crls).toEqual([expect.objectContaining({ file: crlFile, revoked: expect.any(Array) })]);
    const same = readTlsMaterial(tlsOf({ crls: [crlFile] }));
    expect(same.ok && same.material.digest).toBe(a.material.digest);
    writeFileSync(crlFile, makeCrl(pki.ca, [issueCert(pki.ca, 'gone')]));
    const changed = readTlsMaterial(tlsOf({ crls: [crlFile] }));
    expect(changed.ok && changed.material.digest).not.toBe(a.material.digest);
    const serve = readTlsMaterial(tlsOf({ crls: [crlFile], stale_crl: 'serve' }));
    const listed = parseCrl(readFileSync(crlFile));
    expect(typeof listed !== 'string' && listed.revoked.length).toBeGreaterThan(0);
    expect(serve.ok && [...serve.material.options.acceptStaleCrl!.revokedSerials]).toEqual(typeof listed !== 'string' && listed.revoked);
  });

  it('each problem names its key: unreadable file, key of another certificate, bad CRL, not a CA certificate', () => {
    const missing = readTlsMaterial(tlsOf({ certificate: join(pki.dir, 'nope.pem') }));
    expect(missing).toEqual({ ok: false, problems: [{ keyPath: ['tls', 'certificate'], message: expect.stringMatching(/cannot read .*nope\.pem: ENOENT/) }] });
    const mismatch = readTlsMaterial(tlsOf({ key: pki.client.keyFile }));
    expect(mismatch).toEqual({ ok: false, problems: [{ keyPath: ['tls', 'key'], message: expect.stringMatching(/is not the key of/) }] });
    const badCrl = join(pki.dir, 'bad-crl.pem');
    writeFileSync(badCrl, 'garbage\n');
    const crl = readTlsMaterial(tlsOf({ crls: [pki.ca.certFile, badCrl] }));
    expect(crl.ok).toBe(false);
    expect(!crl.ok && crl.problems.map((p) => p.keyPath.join('.'))).toEqual(['tls.crls.0', 'tls.crls.1']);
    const notCa = join(pki.dir, 'not-pem.pem');
    writeFileSync(notCa, 'hello\n');
    const ca = readTlsMaterial(tlsOf({ client_cas: [notCa] }));
    expect(!ca.ok && ca.problems).toEqual([{ keyPath: ['tls', 'client_cas', 0], message: expect.stringMatching(/not a PEM certificate/) }]);
  });
});

describe('materialDigest (the periodic recheck)', () => {
  it('equals the digest of a full read, follows a CRL change and is undefined for an unreadable file', () => {
    const crlFile = join(pki.dir, 'd-crl.pem');
    writeFileSync(crlFile, makeCrl(pki.ca));
    const tls = tlsOf({ crls: [crlFile], chain: pki.ca.certFile });
    const full = readTlsMaterial(tls);
    if (!full.ok) throw new Error(JSON.stringify(full.problems));
    expect(materialDigest(tls)).toBe(full.material.digest);
    writeFileSync(crlFile, makeCrl(pki.ca, [issueCert(pki.ca, 'digest-gone')]));
    const after = readTlsMaterial(tls);
    expect(materialDigest(tls)).not.toBe(full.material.digest);
    expect(after.ok && after.material.digest).toBe(materialDigest(tls));
    // A setting (not a file) changes it too; recheck_s does not (it changes no material).
    expect(materialDigest(tlsOf({ crls: [crlFile], chain: pki.ca.certFile, stale_crl: 'serve' }))).not.toBe(materialDigest(tls));
    expect(materialDigest(tlsOf({ crls: [crlFile], chain: pki.ca.certFile, recheck_s: 5 }))).toBe(materialDigest(tls));
    expect(materialDigest(tlsOf({ crls: [join(pki.dir, 'missing.pem')] }))).toBeUndefined();
  });
});
