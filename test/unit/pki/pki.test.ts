// PKI tooling checked by an independent implementation: the openssl binary.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { run } from '../../../src/cli/certs.js';
import { ensureDevCertificates, parseTnAuthSpec } from '../../../src/pki/files.js';
import { extensionValue } from '../../../src/pki/der.js';
import { encodeTnAuthList, parseTnAuthList, tnAuthorises, TN_AUTH_LIST_OID } from '../../../src/pki/tnauthlist.js';
import { scratchDir } from '../../helpers/procs.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('peergate certs', () => {
  it('dev creates a federation CA, TLS, STI and RFC 4474 certificates that openssl verifies, and keeps them on rerun', async () => {
    const dir = scratchDir('certs-dev-');
    expect(await run(['dev', '--out', dir])).toBe(0);
    const f = (n: string) => join(dir, n);
    expect(openssl(['verify', '-CAfile', f('federation-ca.pem'), f('sbe.pem'), f('peer-a.pem')])).toMatch(/sbe.pem: OK[\s\S]*peer-a.pem: OK/);
    expect(openssl(['verify', '-CAfile', f('sti-ca-root.pem'), '-untrusted', f('sti-ca-intermediate.pem'), f('sp-dev.pem')])).toMatch(/OK/);
    expect(openssl(['verify', '-CAfile', f('rfc4474-localhost.pem'), f('rfc4474-localhost.pem')])).toMatch(/OK/);
    const sbe = new X509Certificate(readFileSync(f('sbe.pem')));
    expect(sbe.checkHost('localhost')).toBe('localhost');
    expect(sbe.checkIP('127.0.0.1')).toBe('127.0.0.1');
    // The key matches the certificate (openssl computes both public keys).
    expect(openssl(['pkey', '-in', f('sbe.key'), '-pubout'])).toBe(openssl(['x509', '-in', f('sbe.pem'), '-noout', '-pubkey']));
    const mtime = statSync(f('sbe.pem')).mtimeMs;
    const again = ensureDevCertificates(dir);
    expect(again.server.created).toBe(false);
    expect(statSync(f('sbe.pem')).mtimeMs).toBe(mtime);
  });

  it('sp writes a TNAuthList that openssl sees and the leaf+intermediate bundle', async () => {
    const dir = scratchDir('certs-sp-');
    expect(await run(['sti-ca', '--out', dir])).toBe(0);
    expect(await run(['sp', '--out', dir, '--name', 'acme', '--tn-auth-list', 'SPC:709J,TN:+12025550100,RANGE:12025550200+50'])).toBe(0);
    const pem = readFileSync(join(dir, 'acme.pem'), 'utf8');
    expect(pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const text = openssl(['x509', '-in', join(dir, 'acme.pem'), '-noout', '-text']);
    expect(text).toMatch(/1\.3\.6\.1\.5\.5\.7\.1\.26/);
    expect(text).toMatch(/ASN1 OID: prime256v1/);
    const list = parseTnAuthList(extensionValue(new X509Certificate(pem).raw, TN_AUTH_LIST_OID)!.value);
    expect(list).toEqual([{ spc: '709J' }, { tn: '12025550100' }, { range: { start: '12025550200', count: 50 } }]);
    expect(readFileSync(join(dir, 'acme.key'), 'utf8')).toMatch(/BEGIN EC PRIVATE KEY/);
  });

  it('rfc4474 writes an RSA-2048 certificate for the domain; peer uses the federation CA', async () => {
    const dir = scratchDir('certs-rsa-');
    expect(await run(['rfc4474', '--out', dir, '--domain', 'sbe.example'])).toBe(0);
    expect(openssl(['x509', '-in', join(dir, 'rfc4474-sbe.example.pem'), '-noout', '-text'])).toMatch(/Public-Key: \(2048 bit\)[\s\S]*DNS:sbe.example/);
    expect(readFileSync(join(dir, 'rfc4474-sbe.example.key'), 'utf8')).toMatch(/BEGIN RSA PRIVATE KEY/);
    expect(await run(['peer', '--out', dir, '--cn', 'carrier-b.example'])).toBe(1); // no federation CA yet
    expect(await run(['federation-ca', '--out', dir])).toBe(0);
    expect(await run(['peer', '--out', dir, '--cn', 'carrier-b.example', '--san', 'carrier-b.example,192.0.2.7'])).toBe(0);
    expect(openssl(['verify', '-CAfile', join(dir, 'federation-ca.pem'), join(dir, 'carrier-b.example.pem')])).toMatch(/OK/);
    expect(openssl(['x509', '-in', join(dir, 'carrier-b.example.pem'), '-noout', '-ext', 'subjectAltName'])).toMatch(/DNS:carrier-b.example, IP Address:192.0.2.7/);
  });

  it('rejects bad arguments with a clear message, not a crash', async () => {
    expect(await run(['nope'])).toBe(2);
    expect(await run(['sp', '--out', scratchDir(), '--tn-auth-list', 'XYZ:1'])).toBe(1);
    expect(await run(['peer', '--bogus'])).toBe(2);
    expect(() => parseTnAuthSpec('RANGE:123')).toThrow(/start>\+<count/);
  });
});

describe('TNAuthList', () => {
  it('reads an extension written by openssl (independent encoder)', () => {
    const dir = scratchDir('tnauth-');
    // openssl writes the extension from a hand-written DER (explicit tags, RFC 8226 §9).
    const handDer = '3013A006160439393939A109300716023132020164';
    writeFileSync(join(dir, 'ext.cnf'), `[ext]\n1.3.6.1.5.5.7.1.26=DER:${handDer}\n`);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'),
      '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=t', '-extensions', 'ext', '-config', join(dir, 'ext.cnf')]);
    const cert = new X509Certificate(readFileSync(join(dir, 'c.pem')));
    const list = parseTnAuthList(extensionValue(cert.raw, TN_AUTH_LIST_OID)!.value);
    expect(list).toEqual([{ spc: '9999' }, { range: { start: '12', count: 100 } }]);
    // Our encoder writes the same bytes for the same entries.
    expect(encodeTnAuthList(list).toString('hex').toUpperCase()).toBe(handDer);
  });

  it('authorises numbers in TN and range entries only, SPCs per policy', () => {
    const list = parseTnAuthList(encodeTnAuthList([{ tn: '12025550100' }, { range: { start: '14155550100', count: 100 } }]));
    expect(tnAuthorises(list, '12025550100')).toBe(true);
    expect(tnAuthorises(list, '14155550199')).toBe(true);
    expect(tnAuthorises(list, '14155550200')).toBe(false);
    expect(tnAuthorises(list, '1415555010')).toBe(false);
    const spc = parseTnAuthList(encodeTnAuthList([{ spc: '709J' }]));
    expect(tnAuthorises(spc, '12025550100')).toBe(true);
    expect(tnAuthorises(spc, '12025550100', ['709J'])).toBe(true);
    expect(tnAuthorises(spc, '12025550100', ['111A'])).toBe(false);
  });

  it('refuses malformed DER with an error instead of crashing', () => {
    expect(() => parseTnAuthList(Buffer.from('3005A00316', 'hex'))).toThrow();
    expect(() => parseTnAuthList(Buffer.from('3003A50100', 'hex'))).toThrow(/unknown entry/);
    expect(() => encodeTnAuthList([{ tn: '12-34' }])).toThrow(/bad telephone number/);
  });
});
