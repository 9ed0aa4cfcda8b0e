import { describe, expect, it } from 'vitest';
import { addrSpec, canonicalTn, parseIdentityValue, splitIdentityValues, uriUser } from '../../../src/sbc/identity/sipfields.js';
import { cacheLifetime, hostAllowed } from '../../../src/sbc/identity/fetch.js';
import { canonicalJson, parsePassport, PassportError } from '../../../src/sbc/identity/passport.js';
import { withVerstat, withoutVerstat, outwardHeaders } from '../../../src/sbc/identity/apply.js';
import { memorySeenOnce, type IdentityResult } from '../../../src/sbc/identity/verify.js';
import { PeerIdentitySchema } from '../../../src/sbc/identity/schema.js';
import { requestOf } from '../../helpers/identity.js';

describe('SIP fields', () => {
  it('extracts addr-spec from name-addr and addr-spec forms', () => {
    expect(addrSpec('"Bob <the> builder" <sip:bob@example.com;transport=tcp>;tag=1')).toBe('sip:bob@example.com;transport=tcp');
    expect(addrSpec('sip:bob@example.com;tag=1')).toBe('sip:bob@example.com');
    expect(addrSpec('<tel:+12025550100>')).toBe('tel:+12025550100');
  });

  it('canonicalises telephone numbers (RFC 8224 §8.3)', () => {
    expect(canonicalTn('sip:+1-202-555-0100@example.com;user=phone')).toBe('12025550100');
    expect(canonicalTn('tel:+1.202.555.0100;phone-context=x')).toBe('12025550100');
    expect(canonicalTn('sip:12025550100@example.com')).toBe('12025550100');
    expect(canonicalTn('sip:alice@example.com')).toBeUndefined();
    expect(canonicalTn('sip:example.com')).toBeUndefined();
    // Same answers as the uriUser-based definition (RFC 8224 §8.3) on awkward shapes.
    const byDefinition = (uri: string) => {
      const { user, userPhone } = uriUser(uri);
      if (!user || (!userPhone && !/^\+?[0-9\-.()\s]+$/.test(user))) return undefined;
      const t = user.replace(/[-.()\s]/g, '').replace(/^\+/, '');
      return /^[0-9#*]{1,32}$/.test(t) ? t : undefined;
    };
    for (const uri of ['TEL:+1202', 'tel:12;x=1', 'sips:+1202:pw@h', 'sip:12;npdi@h;USER=PHONE', 'sip:%2B1202@h', 'sip:%ZZ@h', '+1202@h', 'sip:@h',
      'sip:1*2#@h;user=phone', 'sip:(202)555-0100@h', 'sip:alice@h;user=phone', 'tel:', 'sip:1@h?x=;user=phone', 'nocolon', 'sip:a:b@c@d',
      'sip:+@h', 'sip:+1%20202@h', 'sip:1%C2%A0202@h', 'sip:1%E2%80%83202@h', 'sip:1%09202@h', 'sip:1x@h', 'sip:x1@h', 'tEl:+1', 'teL:', 'sip:+1202@h;user=phoned', 'sip:bob@h;user=phone;x']) {
      expect(canonicalTn(uri), uri).toBe(byDefinition(uri));
    }
    expect(uriUser('sip:%2B1202@x').user).toBe('+1202');
  });

  it('parses Identity values and splits comma-joined fields', () => {
    const p = parseIdentityValue('aa.bb.cc;info=<https://x.example/a;b.pem>;alg=ES256;ppt="shaken"');
    expect(p.token).toBe('aa.bb.cc');
    expect(p.params.get('info')).toBe('https://x.example/a;b.pem');
    expect(p.params.get('ppt')).toBe('shaken');
    expect(parseIdentityValue('"abc\r\n def=="').token).toBe('abcdef==');
    expect(splitIdentityValues(['a.b.c;info=<https://x/1,2>, d.e.f;info=<https://y>'])).toEqual(['a.b.c;info=<https://x/1,2>', 'd.e.f;info=<https://y>']);
  });

  it('reads Cache-Control with a cap; matches host allowlists', () => {
    expect(cacheLifetime('public, max-age=120', 3600)).toBe(120);
    expect(cacheLifetime('max-age=999999', 3600)).toBe(3600);
    expect(cacheLifetime('no-store', 3600)).toBe(0);
    expect(cacheLifetime(undefined, 300)).toBe(300);
    expect(hostAllowed('cr.sti-pa.example', ['*.sti-pa.example'])).toBe(true);
    expect(hostAllowed('sti-pa.example', ['*.sti-pa.example'])).toBe(false);
    expect(hostAllowed('evil-sti-pa.example', ['*.sti-pa.example'])).toBe(false);
    expect(hostAllowed('127.0.0.1', ['127.0.0.1'])).toBe(true);
  });

  it('parses JWS shapes and rejects junk with PassportError', () => {
    expect(() => parsePassport('abc')).toThrow(PassportError);
    expect(() => parsePassport('a.b.c.d')).toThrow(PassportError);
    expect(() => parsePassport('!!.e30.AA')).toThrow(/base64url/);
    expect(() => parsePassport(`${Buffer.from('[1]').toString('base64url')}.e30.AA`)).toThrow(/JSON object/);
    expect(parsePassport('..AAAA').compact).toBe(true);
    expect(() => parsePassport('x'.repeat(9000))).toThrow(/too long/);
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[1,"x"]},"b":1}');
  });
});

describe('verstat and outward headers', () => {
  it('puts verstat in the user part of SIP URIs and on tel URIs, replacing forged ones', () => {
    expect(withVerstat('<sip:+12025550100@example.com;user=phone>', 'TN-Validation-Passed')).toBe('<sip:+12025550100;verstat=TN-Validation-Passed@example.com;user=phone>');
    expect(withVerstat('"A" <tel:+12025550100;verstat=TN-Validation-Passed>', 'TN-Validation-Failed')).toBe('"A" <tel:+12025550100;verstat=TN-Validation-Failed>');
    expect(withVerstat('sip:+12025550100@example.com;tag=1', 'No-TN-Validation')).toBe('<sip:+12025550100;verstat=No-TN-Validation@example.com>;tag=1');
    expect(withoutVerstat('<sip:+1;verstat=TN-Validation-Passed@x>')).toBe('<sip:+1@x>');
  });

  it('builds PAI with verstat, keeps or strips Identity per policy', () => {
    const req = requestOf('sip:+14155550123@x', [['From', '<sip:+12025550100@a.example>;tag=7'], ['Identity', 'h.p.s;info=<https://c/x.pem>']]);
    const pass: IdentityResult = { verdict: 'pass', reject: false, verstat: 'TN-Validation-Passed', standard: 'rfc8224', identity: 'h.p.s;info=<https://c/x.pem>', origTn: '12025550100', failures: [] };
    const keep = outwardHeaders(req, pass, PeerIdentitySchema.parse({ mode: 'verify' }));
    expect(keep.set).toEqual({ 'P-Asserted-Identity': '<tel:+12025550100;verstat=TN-Validation-Passed>', Identity: 'h.p.s;info=<https://c/x.pem>' });
    // A PAI from an untrusted peer is not re-asserted; from a trusted one it carries verstat.
    const withPai = requestOf('sip:+14155550123@x', [['From', '<sip:+12025550100@a.example>;tag=7'], ['P-Asserted-Identity', '<sip:+19995550000@a.example>']]);
    expect(outwardHeaders(withPai, pass, PeerIdentitySchema.parse({ mode: 'verify' })).set['P-Asserted-Identity']).toBe('<tel:+12025550100;verstat=TN-Validation-Passed>');
    expect(outwardHeaders(withPai, pass, PeerIdentitySchema.parse({ mode: 'verify' }), undefined, true).set['P-Asserted-Identity']).toBe('<sip:+19995550000;verstat=TN-Validation-Passed@a.example>');
    const strip = outwardHeaders(req, pass, PeerIdentitySchema.parse({ mode: 'verify', inbound_header: 'strip', verstat_on: 'from' }));
    expect(strip.remove).toContain('Identity');
    expect(strip.set['From']).toBe('<sip:+12025550100;verstat=TN-Validation-Passed@a.example>;tag=7');
    const fail: IdentityResult = { verdict: 'fail', reject: false, verstat: 'TN-Validation-Failed', failures: [] };
    // A failed verdict never asserts the caller's From as PAI.
    expect(outwardHeaders(req, fail, PeerIdentitySchema.parse({ mode: 'verify' })).set['P-Asserted-Identity']).toBeUndefined();
  });
});

describe('in-process replay cache', () => {
  it('reports the first sighting only, until the entry expires', async () => {
    let t = 0;
    const seen = memorySeenOnce(10, () => t);
    expect(await seen('a', 1000)).toBe(true);
    expect(await seen('a', 1000)).toBe(false);
    t = 1001;
    expect(await seen('a', 1000)).toBe(true);
    for (let i = 0; i < 20; i++) await seen(`k${i}`, 10_000);
    expect(await seen('k19', 10_000)).toBe(false);
  });
});
