import { describe, it, expect } from 'vitest';
import { BlockList } from 'node:net';
import { AddressSet, sourceAddress } from '../../../src/engine/shield/address-set.js';

describe('AddressSet', () => {
  it('holds IPv4 and IPv6 ranges and single addresses; a v4-mapped address counts as IPv4', () => {
    const s = new AddressSet(['192.0.2.0/24', ' 198.51.100.7 ', '2001:db8::/32', '::1'], 'peer a');
    expect(s.has('192.0.2.200')).toBe(true);
    expect(s.has('::ffff:192.0.2.200')).toBe(true);
    expect(s.has('192.0.3.1')).toBe(false);
    expect(s.has('198.51.100.7')).toBe(true);
    expect(s.has('198.51.100.8')).toBe(false);
    expect(s.has('2001:db8:1::5')).toBe(true);
    expect(s.has('2001:db9::5')).toBe(false);
    expect(s.has('::1')).toBe(true);
    expect(s.contains(sourceAddress('::ffff:192.0.2.1'))).toBe(true);
    expect(s.contains(sourceAddress('2001:db8::9'))).toBe(true);
  });
  it('answers no, without throwing, for what is not an address', () => {
    const s = new AddressSet(['0.0.0.0/0', '::/0'], 'all');
    for (const bad of ['', 'example.com', '1.2.3', '300.1.1.1', ':::', '1.2.3.4.5']) expect(s.has(bad), bad).toBe(false);
    expect(new AddressSet(['10.0.0.0/8'], 'v4 only').has('2001:db8::1')).toBe(false);
  });
  it('names the bad entry', () => {
    expect(() => new AddressSet(['10.0.0.0/8', '1.2.3'], 'peer carrier-a addresses')).toThrow(/peer carrier-a addresses: "1.2.3" is not an IP address or CIDR/);
    expect(() => new AddressSet(['2001:db8::/129'], 'core addresses')).toThrow(/core addresses: "2001:db8::\/129" has a bad prefix length/);
  });
  it('agrees with net.BlockList on random IPv6 rules and addresses', () => {
    let seed = 777;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    const group = () => (rnd() & 3).toString(16);
    const ip6 = () => `2001:db8:${group()}:${group()}::${(rnd() & 0xffff).toString(16)}`;
    const rules = Array.from({ length: 20 }, () => `${ip6()}/${32 + (rnd() % 97)}`);
    const bl = new BlockList();
    for (const e of rules) { const [a, b] = e.split('/'); bl.addSubnet(a!, Number(b), 'ipv6'); }
    const s = new AddressSet(rules, 'v6');
    let hits = 0;
    for (let i = 0; i < 2000; i++) {
      const a = ip6();
      const expected = bl.check(a, 'ipv6');
      if (expected) hits++;
      expect(s.has(a), a).toBe(expected);
    }
    expect(hits).toBeGreaterThan(0);
  });
});
