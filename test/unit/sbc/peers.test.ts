import { describe, it, expect } from 'vitest';
import { PeerDirectory } from '../../../src/sbc/peers.js';

const peers = [
  { id: 'carrier-a', match: { addresses: ['198.51.100.0/28'], certificate: { subject_alt_names: ['sbc.carrier-a.example'] } } },
  { id: 'legacy-b', match: { addresses: ['203.0.113.7/32'] } },
  { id: 'cert-only', match: { certificate: { fingerprints_sha256: ['AA:BB:CC'] } } },
  { id: 'v6', match: { addresses: ['2001:db8::/64'] } },
];
const cert = (san: string, fp = '11:22') => ({ subject: 'CN=x', subjectAltNames: [`DNS:${san}`], fingerprint256: fp });

describe('peer attribution (RFC 6404 §4.6)', () => {
  const dir = new PeerDirectory(peers);
  it('attributes by source address', () => {
    const r = dir.attribute('203.0.113.7', null);
    expect(r.kind === 'peer' && r.peer.id).toBe('legacy-b');
    expect(dir.attribute('203.0.113.8', null).kind).toBe('unknown');
    // A dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d: still that peer.
    const mapped = dir.attribute('::ffff:203.0.113.7', null);
    expect(mapped.kind === 'peer' && mapped.peer.id).toBe('legacy-b');
  });
  it('names a peer whose address entry is not an address', () => {
    expect(() => new PeerDirectory([{ id: 'bad-c', match: { addresses: ['192.0.2.0/24', '192.0.2'] } }])).toThrow(/peer bad-c match.addresses: "192.0.2"/);
  });
  it('requires address and certificate to agree when both are configured', () => {
    const ok = dir.attribute('198.51.100.3', cert('sbc.carrier-a.example'));
    expect(ok.kind === 'peer' && ok.peer.id).toBe('carrier-a');
    expect(dir.attribute('192.0.2.1', cert('sbc.carrier-a.example'))).toEqual({ kind: 'unknown', reason: 'certificate-from-wrong-address' });
    expect(dir.attribute('198.51.100.3', null)).toMatchObject({ kind: 'unknown', reason: 'address-without-required-certificate', candidate: { id: 'carrier-a' } });
    expect(dir.attribute('198.51.100.3', cert('evil.example'))).toMatchObject({ kind: 'unknown', reason: 'address-without-required-certificate' });
  });
  it('matches certificate fingerprints regardless of colons and case', () => {
    const r = dir.attribute('192.0.2.9', cert('whatever', 'aa:bb:cc'));
    expect(r.kind === 'peer' && r.peer.id).toBe('cert-only');
  });
  it('handles IPv6 ranges', () => {
    const r = dir.attribute('2001:db8::42', null);
    expect(r.kind === 'peer' && r.peer.id).toBe('v6');
  });
  it('refuses ambiguous matches rather than guessing', () => {
    const d2 = new PeerDirectory([{ id: 'x', match: { addresses: ['10.0.0.0/8'] } }, { id: 'y', match: { addresses: ['10.1.0.0/16'] } }]);
    expect(d2.attribute('10.1.2.3', null)).toEqual({ kind: 'unknown', reason: 'ambiguous' });
  });
  it('offers an engine allowlist only when every peer has addresses', () => {
    expect(dir.allSourceRanges()).toBeNull();
    expect(new PeerDirectory([peers[1]!]).allSourceRanges()).toEqual(['203.0.113.7/32']);
  });
});
