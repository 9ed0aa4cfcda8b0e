// What peergate signs, checked by independent verifiers: jose for the PASSporT, node:crypto
// over a digest string built here for RFC 4474.
import { beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, createVerify, X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { IdentitySigner, SignError } from '../../../src/sbc/identity/sign.js';
import { createRfc4474Certificate, createSpCertificate, createStiCa } from '../../../src/pki/files.js';
import { scratchDir } from '../../helpers/procs.js';

let dir: string;
beforeAll(() => {
  dir = scratchDir('sign-');
  createStiCa(dir);
  createSpCertificate(dir, 'sp', { tnAuthList: [{ spc: '709J' }] });
  createRfc4474Certificate(dir, 'rsa', { domain: 'sbe.example' });
});

describe('IdentitySigner', () => {
  it('signs a SHAKEN PASSporT that jose verifies with the certificate key', async () => {
    const now = 1_790_000_000_000;
    const signer = new IdentitySigner(() => now);
    const h = signer.sign(
      { shaken: { attest: 'B', origid: '7a5e6f0c-1111-4222-8333-944455556666', key: join(dir, 'sp.key'), certificate_url: 'https://cr.example/sp.pem' } },
      { from: '"A" <sip:+1 (202) 555-0142@core.example;user=phone>;tag=1', to: '<sip:+14155550123@peer.example>' },
    );
    const value = h['Identity']!;
    expect(value).toMatch(/;info=<https:\/\/cr\.example\/sp\.pem>;alg=ES256;ppt=shaken$/);
    const jws = value.slice(0, value.indexOf(';'));
    const cert = new X509Certificate(readFileSync(join(dir, 'sp.pem')));
    const { payload } = await compactVerify(jws, createPublicKey(cert.publicKey.export({ type: 'spki', format: 'pem' })));
    const claims = JSON.parse(new TextDecoder().decode(payload));
    expect(claims).toEqual({ attest: 'B', dest: { tn: ['14155550123'] }, iat: now / 1000, orig: { tn: '12025550142' }, origid: '7a5e6f0c-1111-4222-8333-944455556666' });
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u: 'https://cr.example/sp.pem' });
    // RFC 8225 §9: claims serialised with keys in lexicographic order, no whitespace.
    expect(new TextDecoder().decode(payload)).toBe(JSON.stringify(claims));
  });

  it('uses P-Asserted-Identity as the originating identity when present, and a fresh origid per call', () => {
    const signer = new IdentitySigner();
    const pol = { shaken: { attest: 'A' as const, key: join(dir, 'sp.key'), certificate_url: 'https://cr.example/sp.pem' } };
    const a = signer.sign(pol, { from: '<sip:anonymous@anonymous.invalid>', pai: '<tel:+12025550199>', to: '<sip:+14155550123@x>' });
    const b = signer.sign(pol, { from: '<sip:anonymous@anonymous.invalid>', pai: '<tel:+12025550199>', to: '<sip:+14155550123@x>' });
    const claims = (v: string) => JSON.parse(Buffer.from(v.split('.')[1]!, 'base64url').toString());
    expect(claims(a['Identity']!).orig).toEqual({ tn: '12025550199' });
    expect(claims(a['Identity']!).origid).not.toBe(claims(b['Identity']!).origid);
  });

  it('refuses to sign SHAKEN for a non-number caller, and refuses a wrong key type', () => {
    const signer = new IdentitySigner();
    expect(() => signer.sign({ shaken: { attest: 'A', key: join(dir, 'sp.key'), certificate_url: 'https://x/y' } }, { from: '<sip:alice@example.com>', to: '<sip:+14155550123@x>' })).toThrow(SignError);
    expect(() => signer.sign({ shaken: { attest: 'A', key: join(dir, 'rsa.key'), certificate_url: 'https://x/y' } }, { from: '<sip:+12025550142@x>', to: '<sip:+14155550123@x>' })).toThrow(/not an EC key/);
    expect(() => signer.sign({ shaken: { attest: 'A', key: join(dir, 'missing.key'), certificate_url: 'https://x/y' } }, { from: '<sip:+12025550142@x>', to: '<sip:+14155550123@x>' })).toThrow(/missing.key/);
  });

  it('signs RFC 4474 rsa-sha256 over the §9 digest string, verified with node:crypto', () => {
    const signer = new IdentitySigner(() => Date.UTC(2026, 10, 22, 13, 0, 0));
    const body = 'v=0\r\ns=-\r\n';
    const h = signer.sign({ rfc4474: { key: join(dir, 'rsa.key'), certificate_url: 'https://sbe.example/cert.pem', alg: 'rsa-sha256' } }, {
      from: '"Alice" <sip:alice@sbe.example>;tag=9', to: '<sip:bob@peer.example>', callId: 'abc@1', cseq: '7  INVITE',
      contact: '<sip:gw@192.0.2.1:5060;transport=udp>', body,
    });
    expect(h['Date']).toBe('Sun, 22 Nov 2026 13:00:00 GMT');
    expect(h['Identity-Info']).toBe('<https://sbe.example/cert.pem>;alg=rsa-sha256');
    const digest = `sip:alice@sbe.example|sip:bob@peer.example|abc@1|7 INVITE|${h['Date']}|sip:gw@192.0.2.1:5060;transport=udp|${body}`;
    const sig = Buffer.from(h['Identity']!.replace(/"/g, ''), 'base64');
    const cert = new X509Certificate(readFileSync(join(dir, 'rsa.pem')));
    expect(createVerify('sha256').update(digest).verify(cert.publicKey, sig)).toBe(true);
    expect(createVerify('sha256').update(digest.replace('bob', 'eve')).verify(cert.publicKey, sig)).toBe(false);
  });
  it('a signing key rotated in place or by rename is used from the next signature on, no reload needed', async () => {
    createSpCertificate(dir, 'sp2', { tnAuthList: [{ spc: '709J' }] });
    const rot = join(dir, 'rotating.key');
    copyFileSync(join(dir, 'sp.key'), rot);
    const signer = new IdentitySigner();
    const pol = { shaken: { attest: 'A' as const, key: rot, certificate_url: 'https://cr.example/sp.pem' } };
    const jws = () => signer.sign(pol, { from: '<sip:+12025550142@x>', to: '<sip:+14155550123@x>' })['Identity']!.split(';')[0]!;
    const keyOf = (name: string) => createPublicKey(new X509Certificate(readFileSync(join(dir, `${name}.pem`))).publicKey.export({ type: 'spki', format: 'pem' }));
    const signedBy = async (name: string, token: string) => compactVerify(token, keyOf(name)).then(() => true, () => false);

    const first = jws();
    expect(await signedBy('sp', first)).toBe(true);
    // By rename, as certbot-like tools write: a new inode.
    writeFileSync(`${rot}.new`, readFileSync(join(dir, 'sp2.key')));
    renameSync(`${rot}.new`, rot);
    const second = jws();
    expect(await signedBy('sp2', second)).toBe(true);
    expect(await signedBy('sp', second)).toBe(false);
    // In place, the same size (two P-256 keys in PEM): the times tell it.
    writeFileSync(rot, readFileSync(join(dir, 'sp.key')));
    expect(await signedBy('sp', jws())).toBe(true);
    // A half-written key: no signature (the call goes unsigned), and the next one reads it again.
    writeFileSync(rot, '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE');
    expect(() => jws()).toThrow(/identity signing key .*rotating\.key/);
    writeFileSync(rot, readFileSync(join(dir, 'sp2.key')));
    expect(await signedBy('sp2', jws())).toBe(true);
    // Gone: refused, naming the file.
    unlinkSync(rot);
    expect(() => jws()).toThrow(/rotating\.key/);
  });
});
