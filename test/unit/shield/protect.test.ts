// Bans that cannot be turned against peers (issue #17.4): a UDP source address is forged at no
// cost, so a ban of a configured UDP peer's address is withheld (counted, reported) unless the
// policy says otherwise; other addresses are banned as before.
import { describe, it, expect } from 'vitest';
import { Shield } from '../../../src/engine/shield/index.js';
import { peerUdpSources } from '../../../src/sbc/peers.js';
import type { Policy } from '../../../src/policy/schema.js';
import { GlobalLimitsSchema, StrikesSchema } from '../../../src/sbc/limits/schema.js';

describe('Shield protect', () => {
  it('withholds bans on protected addresses (v4-mapped too), counts and reports them, bans the rest', () => {
    const withheld: string[] = [];
    const s = new Shield({ protect: ['192.0.2.0/28', '2001:db8::1'], onBanWithheld: (a) => withheld.push(a) });
    s.ban('192.0.2.5', 60_000);
    s.ban('::ffff:192.0.2.6', 60_000);
    s.ban('2001:db8::1', 60_000);
    s.ban('192.0.2.16', 60_000);
    expect(s.admit('192.0.2.5')).toBe(true);
    expect(s.admit('2001:db8::1')).toBe(true);
    expect(s.admit('192.0.2.16')).toBe(false);
    expect(s.counters.bansWithheld).toBe(3);
    expect(withheld).toEqual(['192.0.2.5', '::ffff:192.0.2.6', '2001:db8::1']);
    expect(s.bans().map((b) => b.address)).toEqual(['192.0.2.16']);
    s.close();
  });

  it('a reconfiguration without the protected list bans again and keeps the alert hook; a bad entry is refused', () => {
    const withheld: string[] = [];
    const s = new Shield({ protect: ['192.0.2.1'], onBanWithheld: (a) => withheld.push(a) });
    expect(() => s.configure({ protect: ['not-an-ip'] })).toThrow(/protect: "not-an-ip"/);
    s.ban('192.0.2.1', 1000);
    expect(withheld).toEqual(['192.0.2.1']);
    s.configure({ protect: [] });
    s.ban('192.0.2.1', 1000);
    expect(s.isBanned('192.0.2.1')).toBe(true);
    s.configure({ protect: ['198.51.100.1'] });
    s.ban('198.51.100.1', 1000);
    expect(withheld).toEqual(['192.0.2.1', '198.51.100.1']);
    s.close();
  });
});

describe('peerUdpSources', () => {
  const peers = [
    { id: 'udp-a', match: { addresses: ['192.0.2.1/32'] }, transport: 'udp' },
    { id: 'any-b', match: { addresses: ['192.0.2.2/32'] }, transport: 'any' },
    { id: 'tls-c', match: { addresses: ['192.0.2.3/32'] }, transport: 'tls' },
    { id: 'tcp-e', match: { addresses: ['192.0.2.5/32'] }, transport: 'tcp' },
    { id: 'cert-d', match: { addresses: ['192.0.2.4/32'], certificate: { subject_alt_names: ['d.example'] } }, transport: 'any' },
  ] as unknown as Policy['peers'];

  it('lists UDP-capable peers known by address only; none when limits.strikes.ban_peers is true', () => {
    const strikes = StrikesSchema.parse({ threshold: 3 });
    expect(strikes.ban_peers).toBe(false);
    expect(peerUdpSources({ peers, limits: GlobalLimitsSchema.parse({ strikes }) })).toEqual(['192.0.2.1/32', '192.0.2.2/32']);
    expect(peerUdpSources({ peers, limits: GlobalLimitsSchema.parse({ strikes: { ban_peers: true } }) })).toEqual([]);
  });
});
