// The prepared-key verifier: the native addon must give exactly node:crypto's answers (valid,
// tampered, malformed and hostile signatures), hash data+tail as one message, take strings as
// UTF-8, decode base64 signature text in its canonical spelling only, and leave no error on
// OpenSSL's queue for node:crypto to trip over.
import { describe, expect, it } from 'vitest';
import { createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { prepareKey, verifierImplementation, type SigAlg } from '../../../src/sbc/identity/sigverify.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });

interface Case { alg: SigAlg; pub: KeyObject; signer: (data: Buffer) => Buffer }
const CASES: Case[] = [
  { alg: 'ES256', pub: ec.publicKey, signer: (d) => sign('sha256', d, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }) },
  { alg: 'RS256', pub: rsa.publicKey, signer: (d) => sign('sha256', d, rsa.privateKey) },
  { alg: 'RS1', pub: rsa.publicKey, signer: (d) => sign('sha1', d, rsa.privateKey) },
];

describe('prepared-key signature verification', () => {
  it('uses the native addon (built by the install step) unless told not to', () => {
    expect(verifierImplementation).toBe(process.env.PEERGATE_NATIVE_VERIFY === '0' ? 'node:crypto' : 'native');
  });

  for (const c of CASES) {
    describe(c.alg, () => {
      const native = prepareKey(c.pub, c.alg, 'native');
      const node = prepareKey(c.pub, c.alg, 'node:crypto');
      const data = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE3MDAwMDAwMDB9');
      const sig = c.signer(data);

      it('accepts a good signature, over a Buffer or the same text as a string', () => {
        for (const k of [native, node]) {
          expect(k.verify(data, sig)).toBe(true);
          expect(k.verify(data.toString('latin1'), sig)).toBe(true);
        }
      });

      it('hashes data then tail as one message, strings as UTF-8', () => {
        const text = 'sip:alice@example.com|sip:bob@example.net|ünïcode ☎|';
        const body = Buffer.from('v=0\r\ns=é\r\n');
        const s = c.signer(Buffer.concat([Buffer.from(text, 'utf8'), body]));
        for (const k of [native, node]) {
          expect(k.verify(text, s, body)).toBe(true);
          expect(k.verify(Buffer.from(text), s, body.toString('utf8'))).toBe(true);
          expect(k.verifyBase64(text, s.toString('base64'), body)).toBe(true);
          expect(k.verify(text, s)).toBe(false);
          expect(k.verify(text, s, Buffer.from('v=0\r\ns=e\r\n'))).toBe(false);
          expect(k.verifyBase64(text, s.toString('base64'), Buffer.from('v=0\r\ns=e\r\n'))).toBe(false);
        }
      });

      it('takes the signature as base64 text in the spelling node gives it, and only that one', () => {
        const text = sig.toString('base64');
        for (const k of [native, node]) {
          expect(k.verifyBase64(data, text)).toBe(true);
          const t = Buffer.from(sig);
          t[5]! ^= 4;
          expect(k.verifyBase64(data, t.toString('base64'))).toBe(false);
        }
        // Not base64, or another spelling of the same bytes: undefined, for the caller to decode.
        const body = text.replace(/=+$/, '');
        const unpadded = body.length !== text.length ? body : undefined;
        const hostile = [
          '', '=', '====', 'A===', `${text}=`, `${text.slice(0, 8)}=${text.slice(9)}`, ` ${text}`, `${text.slice(0, 20)}\r\n ${text.slice(20)}`,
          text.replace(/[+/]/g, (ch) => (ch === '+' ? '-' : '_')), text.replace(/^./, 'Ł'), text.replace(/^./, '\u0141'), text.replace(/^./, '\u{1F600}'),
          'A'.repeat(4096), 'QUFB'.repeat(400), `${text.slice(0, -4)}\0${text.slice(-3)}`,
        ];
        if (unpadded) hostile.push(unpadded);
        const unused = (body.length * 6) & 7;
        if (unused) {
          const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
          const last = alphabet.indexOf(body[body.length - 1]!);
          hostile.push(body.slice(0, -1) + alphabet[last ^ 1]! + text.slice(body.length));
        }
        for (const h of hostile) {
          for (const k of [native, node]) expect(k.verifyBase64(data, h), JSON.stringify(h.slice(0, 40))).toBeUndefined();
        }
      });

      it('gives node:crypto\'s answer for tampered, truncated, empty and random signatures', () => {
        const variants: Buffer[] = [Buffer.alloc(0), Buffer.alloc(sig.length), Buffer.alloc(sig.length, 0xff), sig.subarray(1), Buffer.concat([sig, Buffer.from([0])])];
        for (let i = 0; i < 60; i++) {
          const t = Buffer.from(sig);
          t[i % t.length]! ^= 1 << (i % 8);
          variants.push(t, randomBytes(sig.length));
        }
        if (c.alg === 'ES256') {
          // r or s zero, r = s = n-ish (all ones), high bit set: DER encoding edge cases.
          variants.push(Buffer.concat([Buffer.alloc(32), sig.subarray(32)]), Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32)]));
          variants.push(Buffer.concat([Buffer.alloc(32, 0x80), Buffer.alloc(32, 0x80)]), Buffer.concat([Buffer.alloc(31), Buffer.from([1]), sig.subarray(32)]));
        }
        for (const v of variants) {
          expect(native.verify(data, v), v.toString('hex')).toBe(node.verify(data, v));
        }
        const other = Buffer.from(data);
        other[0] = other[0]! ^ 1;
        expect(native.verify(other, sig)).toBe(false);
        expect(node.verify(other, sig)).toBe(false);
      });

      it('leaves no OpenSSL error behind for node:crypto to report later', () => {
        for (let i = 0; i < 20; i++) native.verify(data, randomBytes(sig.length));
        expect(createHash('sha256').update('x').digest('hex')).toHaveLength(64);
        expect(verify(c.alg === 'RS1' ? 'sha1' : 'sha256', data, c.alg === 'ES256' ? { key: c.pub, dsaEncoding: 'ieee-p1363' } : c.pub, sig)).toBe(true);
      });
    });
  }

  it('verifies long parts (past the addon\'s stack buffer) as strings, characters cut at its edge included', () => {
    const k = prepareKey(rsa.publicKey, 'RS256', 'native');
    // The stack buffer holds 4096 bytes: multi-byte characters placed across its last bytes.
    for (const text of ['x'.repeat(10_000) + 'é', ...[4088, 4089, 4090, 4091, 4092, 4093, 4094, 4095].flatMap((n) => ['x'.repeat(n) + '☎☎', 'x'.repeat(n) + '\u{1F600}y', 'x'.repeat(n) + 'éé'])]) {
      const s = sign('sha256', Buffer.from(`a|${text}`, 'utf8'), rsa.privateKey);
      expect(k.verify(`a|${text}`, s), String(text.length)).toBe(true);
      expect(k.verify('a|', s, text), String(text.length)).toBe(true);
      // Split elsewhere: the long part is the data this time (the last character is a single UTF-16 unit).
      expect(k.verifyBase64(`a|${text.slice(0, -1)}`, s.toString('base64'), text.slice(-1)), String(text.length)).toBe(true);
      expect(k.verify('a|', s, text.slice(1))).toBe(false);
    }
  });

  it('refuses a key that does not fit the algorithm', () => {
    expect(() => prepareKey(rsa.publicKey, 'ES256')).toThrow(/EC key/);
    expect(() => prepareKey(ec.publicKey, 'RS256')).toThrow(/RSA key/);
    expect(() => prepareKey(ec384.publicKey, 'ES256')).toThrow(/P-256/);
  });
});

describe('canonical base64 spelling (replay keys)', () => {
  it('is true exactly for the spelling node gives the bytes', async () => {
    const { canonicalBase64Text } = await import('../../../src/sbc/identity/passport.js');
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    for (let n = 1; n <= 70; n++) {
      const bytes = randomBytes(n);
      for (const [enc, padded, tail] of [['base64', true, '+/'], ['base64url', false, '-_']] as const) {
        const text = bytes.toString(enc);
        expect(canonicalBase64Text(text, padded), `${enc} ${n}`).toBe(true);
        const data = text.replace(/=+$/, '');
        // Other spellings of the same bytes: unused bits set, padding dropped or added.
        if ((data.length * 6) % 8 !== 0) {
          const alphabet = A + tail;
          const last = alphabet.indexOf(data[data.length - 1]!);
          const respelled = data.slice(0, -1) + alphabet[last ^ 1]! + text.slice(data.length);
          expect(Buffer.from(respelled, enc)).toEqual(bytes);
          expect(canonicalBase64Text(respelled, padded), `${enc} ${n} respelled`).toBe(false);
          expect(canonicalBase64Text(padded ? data : `${data}${'='.repeat((4 - (data.length % 4)) % 4)}`, padded), `${enc} ${n} padding`).toBe(false);
        }
      }
    }
  });
});
