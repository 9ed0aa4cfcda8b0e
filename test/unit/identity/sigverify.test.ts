// The prepared-key verifier: the native addon must give exactly node:crypto's answers (valid,
// tampered, malformed and hostile signatures), hash data+tail as one message, take strings as
// UTF-8, decode base64 signature text in its canonical spelling only, and leave no error on
// OpenSSL's queue for node:crypto to trip over.
import { describe, expect, it } from 'vitest';
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateEncrypt, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
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
          text.replace(/^./, 'Ł'), text.replace(/^./, '\u0141'), text.replace(/^./, '\u{1F600}'),
          'A'.repeat(4096), 'QUFB'.repeat(400), `${text.slice(0, -4)}\0${text.slice(-3)}`,
        ];
        if (unpadded) hostile.push(unpadded);
        // The base64url alphabet (only a different text when the signature has '+' or '/').
        const url = text.replace(/[+/]/g, (ch) => (ch === '+' ? '-' : '_'));
        hostile.push(url === text ? `-${text.slice(1)}` : url);
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
          // r or s equal to the group order n, or past it (0 < r, s < n is required).
          const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
          const nPlus = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552', 'hex');
          variants.push(Buffer.concat([n, sig.subarray(32)]), Buffer.concat([sig.subarray(0, 32), n]), Buffer.concat([nPlus, sig.subarray(32)]), Buffer.alloc(64, 0xff));
          // s replaced by n - s: the other valid ECDSA signature for the same r (ECDSA is malleable;
          // both implementations accept it, and replay keys on the bytes still differ).
          const N = BigInt(`0x${n.toString('hex')}`);
          const sNeg = Buffer.from((N - BigInt(`0x${sig.subarray(32).toString('hex')}`)).toString(16).padStart(64, '0'), 'hex');
          variants.push(Buffer.concat([sig.subarray(0, 32), sNeg]));
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

  describe('RSA on the bignum path (RFC 8017 §8.2.2 encode-and-compare)', () => {
    const k = 256;
    // A key whose n leaves room below 2^2048 for "a valid signature plus n" (n is at least
    // 0.56 · 2^2048 for OpenSSL's primes; one close to 2^2048 would leave almost none).
    const rsa = (() => {
      for (let i = 0; i < 40; i++) {
        const kp = generateKeyPairSync('rsa', { modulusLength: 2048 });
        if (Buffer.from(kp.publicKey.export({ format: 'jwk' }).n!, 'base64url')[0]! <= 0xe0) return kp;
      }
      throw new Error('no RSA key with n ≤ 0xe0… in 40 tries');
    })();
    const SHA256_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
    const SHA1_INFO = Buffer.from('3021300906052b0e03021a05000414', 'hex');
    /** EM = 00 01 FF.. 00 T, with T and the padding as given: signed raw with the private key. */
    const rawSign = (em: Buffer) => privateEncrypt({ key: rsa.privateKey, padding: constants.RSA_NO_PADDING }, em);
    const em = (t: Buffer, o: { type?: number; lead?: number; psByte?: number; extra?: Buffer } = {}) => {
      const extra = o.extra ?? Buffer.alloc(0);
      const ps = k - 3 - t.length - extra.length;
      return Buffer.concat([Buffer.from([o.lead ?? 0, o.type ?? 1]), Buffer.alloc(ps, o.psByte ?? 0xff), Buffer.from([0]), t, extra]);
    };
    const data = Buffer.from('sip:alice@127.0.0.1|sip:bob@sbe.example|c|1 INVITE|Sun, 22 Nov 2026 13:23:00 GMT||');
    const h256 = createHash('sha256').update(data).digest();
    const h1 = createHash('sha1').update(data).digest();

    it('takes the bignum path for usual RSA keys (e = 65537, e = 3)', () => {
      expect(prepareKey(rsa.publicKey, 'RS256', 'native').path).toBe('rsa-bignum');
      expect(prepareKey(rsa.publicKey, 'RS1', 'native').path).toBe('rsa-bignum');
      const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
      const kk = prepareKey(e3.publicKey, 'RS256', 'native');
      expect(kk.path).toBe('rsa-bignum');
      const sg = sign('sha256', data, e3.privateKey);
      expect(kk.verify(data, sg)).toBe(true);
      sg[100]! ^= 1;
      expect(kk.verify(data, sg)).toBe(false);
      expect(prepareKey(ec.publicKey, 'ES256', 'native').path).toBe('ecdsa-sig');
    });

    it('accepts exactly the PKCS#1 v1.5 encoding node:crypto accepts', () => {
      const cases: Array<[string, Buffer, boolean]> = [
        ['correct', rawSign(em(Buffer.concat([SHA256_INFO, h256]))), true],
        ['digest info without NULL parameters', rawSign(em(Buffer.concat([Buffer.from('302f300b0609608648016503040201', 'hex'), Buffer.from('0420', 'hex'), h256]))), false],
        ['bare hash, no digest info', rawSign(em(h256)), false],
        ['SHA-1 digest info over the SHA-256 hash', rawSign(em(Buffer.concat([SHA1_INFO, h256.subarray(0, 20)]))), false],
        ['one padding byte 0xFE', rawSign((() => { const e = em(Buffer.concat([SHA256_INFO, h256])); e[40] = 0xfe; return e; })()), false],
        ['block type 2', rawSign(em(Buffer.concat([SHA256_INFO, h256]), { type: 2 })), false],
        ['block type 0', rawSign(em(Buffer.concat([SHA256_INFO, h256]), { type: 0, psByte: 0 })), false],
        ['leading byte 1', rawSign(em(Buffer.concat([SHA256_INFO, h256]), { lead: 1 })), false],
        ['bytes after the hash', rawSign(em(Buffer.concat([SHA256_INFO, h256]), { extra: Buffer.from([0, 0]) })), false],
        ['hash of other data', rawSign(em(Buffer.concat([SHA256_INFO, createHash('sha256').update('x').digest()]))), false],
      ];
      const n = Buffer.from(rsa.publicKey.export({ format: 'jwk' }).n!, 'base64url');
      const nPlus1 = Buffer.from(n);
      for (let i = nPlus1.length - 1; i >= 0 && ++nPlus1[i]! === 256; i--) nPlus1[i] = 0;
      cases.push(['s = n', n, false], ['s = n + 1', nPlus1, false], ['s = all ones', Buffer.alloc(k, 0xff), false], ['s = 0', Buffer.alloc(k), false],
        ['s = 1', Buffer.concat([Buffer.alloc(k - 1), Buffer.from([1])]), false], ['one byte short', rawSign(em(Buffer.concat([SHA256_INFO, h256]))).subarray(1), false],
        ['one byte long (leading zero)', Buffer.concat([Buffer.from([0]), rawSign(em(Buffer.concat([SHA256_INFO, h256])))]), false]);
      // A valid signature plus n: the same value mod n, but out of range (RSAVP1 step 1). Data
      // is varied until s + n still fits in k bytes.
      const N = BigInt(`0x${n.toString('hex')}`);
      const other = Buffer.from(data);
      for (let i = 0; i < 200; i++) {
        const sg = sign('sha256', other, rsa.privateKey);
        const sum = BigInt(`0x${sg.toString('hex')}`) + N;
        if (sum >= 1n << BigInt(8 * k)) { other[other.length - 1] = i; continue; }
        const hex = sum.toString(16).padStart(2 * k, '0');
        cases.push(['valid signature + n', Buffer.from(hex, 'hex'), false], ['the valid signature itself', sg, true]);
        break;
      }
      expect(cases.some(([name]) => name === 'valid signature + n')).toBe(true);
      const native = prepareKey(rsa.publicKey, 'RS256', 'native');
      const node = prepareKey(rsa.publicKey, 'RS256', 'node:crypto');
      for (const [name, sig, want] of cases) {
        const signed = name.startsWith('valid signature') || name.startsWith('the valid') ? other : data;
        expect(node.verify(signed, sig), `node:crypto, ${name}`).toBe(want);
        expect(native.verify(signed, sig), name).toBe(want);
      }
      // SHA-1 keys: the right digest info passes, the SHA-256 one does not.
      const rs1 = prepareKey(rsa.publicKey, 'RS1', 'native');
      expect(rs1.verify(data, rawSign(em(Buffer.concat([SHA1_INFO, h1]))))).toBe(true);
      expect(rs1.verify(data, rawSign(em(Buffer.concat([SHA256_INFO, h256]))))).toBe(false);
    });

    it('leaves keys with an exponent over 64 bits to OpenSSL\'s own RSA code, with the same answers', () => {
      // A key with e = 2^64 + 13 (coprime to λ(n) is checked): d computed here with BigInt.
      const jwk = rsa.privateKey.export({ format: 'jwk' });
      const big = (b64: string) => BigInt(`0x${Buffer.from(b64, 'base64url').toString('hex')}`);
      const b64 = (x: bigint) => { let h = x.toString(16); if (h.length % 2) h = `0${h}`; return Buffer.from(h, 'hex').toString('base64url'); };
      const p = big(jwk.p!), q = big(jwk.q!);
      const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
      const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
      let e = (1n << 64n) + 13n;
      while (gcd(e, lambda) !== 1n) e += 2n;
      const inv = (a: bigint, m: bigint) => { let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]; while (r1) { const t = r0 / r1; [r0, r1] = [r1, r0 - t * r1]; [s0, s1] = [s1, s0 - t * s1]; } return ((s0 % m) + m) % m; };
      const d = inv(e, lambda);
      const priv = createPrivateKey({ format: 'jwk', key: { kty: 'RSA', n: jwk.n!, e: b64(e), d: b64(d), p: jwk.p!, q: jwk.q!, dp: b64(d % (p - 1n)), dq: b64(d % (q - 1n)), qi: b64(inv(q, p)) } });
      const pubKey = createPublicKey(priv);
      expect(BigInt(`0x${Buffer.from(pubKey.export({ format: 'jwk' }).e!, 'base64url').toString('hex')}`)).toBe(e);
      const kk = prepareKey(pubKey, 'RS256', 'native');
      expect(kk.path).toBe('evp');
      const sg = sign('sha256', data, priv);
      expect(kk.verify(data, sg)).toBe(true);
      expect(prepareKey(pubKey, 'RS256', 'node:crypto').verify(data, sg)).toBe(true);
      sg[7]! ^= 0x10;
      expect(kk.verify(data, sg)).toBe(false);
    });
  });

  it('refuses a key that does not fit the algorithm', () => {
    expect(() => prepareKey(rsa.publicKey, 'ES256')).toThrow(/EC key/);
    expect(() => prepareKey(ec.publicKey, 'RS256')).toThrow(/RSA key/);
    expect(() => prepareKey(ec384.publicKey, 'ES256')).toThrow(/P-256/);
  });
});

describe('base64 signature text in the addon', () => {
  it('is decoded exactly when spelled as node spells the bytes, at every padding and up to 1024 bytes', () => {
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (const impl of ['native', 'node:crypto'] as const) {
      const k = prepareKey(rsa.publicKey, 'RS256', impl);
      // Random bytes are never a valid signature: false means "decoded and checked".
      for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), 255, 256, 257, 1022, 1023, 1024]) {
        const bytes = randomBytes(n);
        const text = bytes.toString('base64');
        expect(k.verifyBase64('x', text), `${impl} ${n}`).toBe(false);
        const data = text.replace(/=+$/, '');
        if (data.length !== text.length) expect(k.verifyBase64('x', data), `${impl} ${n} unpadded`).toBeUndefined();
        if ((data.length * 6) % 8 !== 0) {
          const last = A.indexOf(data[data.length - 1]!);
          const respelled = data.slice(0, -1) + A[last ^ 1]! + text.slice(data.length);
          expect(Buffer.from(respelled, 'base64')).toEqual(bytes);
          expect(k.verifyBase64('x', respelled), `${impl} ${n} respelled`).toBeUndefined();
        }
      }
      expect(k.verifyBase64('x', randomBytes(1025).toString('base64')), `${impl} 1025`).toBeUndefined();
      // The longest text followed by more (multi-byte characters where the addon's copy ends).
      const longest = randomBytes(1024).toString('base64');
      for (const more of ['A', 'é', '☎', '\u{1F600}', 'AAé', 'AAA☎']) expect(k.verifyBase64('x', longest + more), `${impl} +${more}`).toBeUndefined();
    }
  });
});
