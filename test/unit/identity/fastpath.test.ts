// The verifier's per-call shortcuts (memoised parses, fast paths, deferred metric counting)
// give the same results as the general code they stand in for.
import { describe, expect, it } from 'vitest';
import client from 'prom-client';
import { canonicalNumber, parseIdentityValue, parseIdentityValueShared } from '../../../src/sbc/identity/sipfields.js';
import { parsePassport } from '../../../src/sbc/identity/passport.js';
import { digestString } from '../../../src/sbc/identity/rfc4474.js';
import { countCacheHit, countVerification } from '../../../src/sbc/identity/metrics.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('identity fast paths', () => {
  it('memoised Identity parameters equal a full parse', () => {
    const values = [
      'aa.bb.cc;info=<https://x.example/a;b.pem>;alg=ES256;ppt="shaken"',
      'dd.ee.ff;info=<https://x.example/a;b.pem>;alg=ES256;ppt="shaken"',
      'aa.bb.cc ; INFO = <https://y.example/c.pem> ;alg=ES256;flag',
      'aa.bb.cc',
      '  aa.bb.cc  ;alg=ES256',
      'aa.bb.cc;info=<https://unterminated',
      '"quoted sig=="',
    ];
    for (let round = 0; round < 2; round++) {
      for (const v of values) {
        const fast = parseIdentityValueShared(v);
        const full = parseIdentityValue(v);
        expect(fast.token).toBe(full.token);
        expect([...fast.params]).toEqual([...full.params]);
      }
    }
  });

  it('canonical numbers: the fast path agrees with the separator-stripping path', () => {
    const cases: Array<[string, string | undefined]> = [
      ['+12025550100', '12025550100'], ['12025550100', '12025550100'], ['*67#', '*67#'], ['+', undefined], ['', undefined],
      ['++1', undefined], ['+1-202-555-0100', '12025550100'], ['1'.repeat(32), '1'.repeat(32)], ['1'.repeat(33), undefined],
      [`+${'1'.repeat(32)}`, '1'.repeat(32)], ['12a', undefined], ['+1 (202) 555.0100', '12025550100'],
    ];
    for (const [input, want] of cases) expect(canonicalNumber(input), input).toBe(want);
  });

  it('shares decoded PASSporT headers between calls but decodes claims every time', () => {
    const h = b64({ alg: 'ES256', typ: 'passport', x5u: 'https://x.example/c.pem' });
    const a = parsePassport(`${h}.${b64({ iat: 1 })}.AAAA`);
    const b = parsePassport(`${h}.${b64({ iat: 2 })}.AAAA`);
    expect(b.header).toEqual({ alg: 'ES256', typ: 'passport', x5u: 'https://x.example/c.pem' });
    expect(Object.isFrozen(b.header)).toBe(true);
    expect(a.claims).toEqual({ iat: 1 });
    expect(b.claims).toEqual({ iat: 2 });
    expect(b.signingInput).toBe(`${h}.${b64({ iat: 2 })}`);
    // A bad header is still refused when a good one was seen just before.
    expect(() => parsePassport(`${b64([1])}.${b64({ iat: 1 })}.AAAA`)).toThrow(/JSON object/);
  });

  it('builds the RFC 4474 digest string the same for string and byte bodies', () => {
    const f = ['sip:a@x', 'sip:b@y', 'c', '1 INVITE', 'd', 'sip:a@z'] as const;
    const body = 'v=0\r\ns=é\r\n';
    const want = Buffer.concat([Buffer.from('sip:a@x|sip:b@y|c|1 INVITE|d|sip:a@z|'), Buffer.from(body, 'utf8')]);
    expect(digestString([...f, body])).toEqual(want);
    expect(digestString([...f, Buffer.from(body, 'utf8')])).toEqual(want);
    expect(digestString(['sip:a@x', 'sip:b@y', 'c', '1 INVITE', 'd', '', ''])).toEqual(Buffer.from('sip:a@x|sip:b@y|c|1 INVITE|d||'));
    expect(digestString([...f, Buffer.alloc(0)])).toEqual(Buffer.from('sip:a@x|sip:b@y|c|1 INVITE|d|sip:a@z|'));
  });

  it('verification and cache-hit counts reach prom-client when metrics are collected', async () => {
    const value = async (name: string, labels: Record<string, string>) => {
      const m = client.register.getSingleMetric(name) as client.Counter<string>;
      const got = await m.get();
      return got.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
    };
    const before = await value('peergate_identity_verifications_total', { peer: 'fast-a', standard: 'rfc8224', result: 'pass' });
    const hitsBefore = await value('peergate_identity_cert_cache_total', { result: 'hit' });
    for (let i = 0; i < 5; i++) countVerification('fast-a', 'rfc8224', 'pass');
    countVerification('fast-b', 'none', 'none');
    countVerification('fast-a', 'rfc8224', 'pass');
    countCacheHit();
    countCacheHit();
    expect(await value('peergate_identity_verifications_total', { peer: 'fast-a', standard: 'rfc8224', result: 'pass' })).toBe(before + 6);
    expect(await value('peergate_identity_verifications_total', { peer: 'fast-b', standard: 'none', result: 'none' })).toBe(1);
    expect(await value('peergate_identity_cert_cache_total', { result: 'hit' })).toBe(hitsBefore + 2);
    // Counted once: a second collection adds nothing.
    expect(await value('peergate_identity_verifications_total', { peer: 'fast-a', standard: 'rfc8224', result: 'pass' })).toBe(before + 6);
    expect(await client.register.metrics()).toMatch(/peergate_identity_verifications_total\{peer="fast-b",standard="none",result="none"\} 1/);
  });
});
