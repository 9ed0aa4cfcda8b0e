import { describe, it, expect } from 'vitest';
import { encodePin, pinPredicate } from '../../../src/routing/tls-pin.js';

const id = { subject: 'O=Carrier B,CN=sbc.carrier-b.test', subjectAltNames: ['DNS:sbc.carrier-b.test', 'URI:sip:carrier-b.test'], fingerprint256: 'AB:CD:' + '00:'.repeat(29) + '01' };

describe('TLS pin header', () => {
  it('round-trips the peer certificate match and applies the inbound rules', () => {
    const p = pinPredicate(encodePin({ subject_alt_names: ['sbc.carrier-b.test'], subjects: [], fingerprints_sha256: [] }))!;
    expect(p(id)).toBe(true);
    expect(p({ ...id, subjectAltNames: ['DNS:sbc.carrier-c.test'] })).toBe(false);
    const both = pinPredicate(encodePin({ subject_alt_names: ['sip:carrier-b.test'], subjects: ['O=Carrier B,CN=sbc.carrier-b.test'], fingerprints_sha256: [id.fingerprint256.replace(/:/g, '').toLowerCase()] }))!;
    expect(both(id)).toBe(true);
    expect(both({ ...id, fingerprint256: 'FF' + id.fingerprint256.slice(2) })).toBe(false);
    // Separators inside values survive.
    const commas = pinPredicate(encodePin({ subject_alt_names: [], subjects: ['O=A\\, Inc;x,CN=y'], fingerprints_sha256: [] }))!;
    expect(commas({ ...id, subject: 'O=A\\, Inc;x,CN=y' })).toBe(true);
  });
  it('a malformed or empty pin is refused (the caller fails closed)', () => {
    expect(pinPredicate('garbage')).toBeUndefined();
    expect(pinPredicate('san=;subject=;fp256=')).toBeUndefined();
    expect(pinPredicate('san=%E0%A4%A')).toBeUndefined();
  });
});
