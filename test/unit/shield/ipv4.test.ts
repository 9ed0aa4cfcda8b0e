import { describe, it, expect } from 'vitest';
import { BlockList } from 'node:net';
import { parseIPv4, Ipv4Ranges } from '../../../src/engine/shield/ipv4.js';

describe('parseIPv4', () => {
  it('parses dotted quads', () => {
    expect(parseIPv4('0.0.0.0')).toBe(0);
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
  });
  it('rejects everything else', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', '::1', '1.2.3.-4', '1234.1.1.1']) {
      expect(parseIPv4(bad), bad).toBe(-1);
    }
  });
});

describe('Ipv4Ranges', () => {
  it('matches CIDRs and single addresses, merging overlaps', () => {
    const r = new Ipv4Ranges(['10.0.0.0/8', '10.1.0.0/16', '192.0.2.7', '192.0.2.8/31', '2001:db8::/32']);
    expect(r.size).toBe(2);
    expect(r.has(parseIPv4('10.200.1.1'))).toBe(true);
    expect(r.has(parseIPv4('11.0.0.0'))).toBe(false);
    expect(r.has(parseIPv4('192.0.2.6'))).toBe(false);
    expect(r.has(parseIPv4('192.0.2.9'))).toBe(true);
    expect(r.has(parseIPv4('192.0.2.10'))).toBe(false);
  });
  it('agrees with net.BlockList on random addresses and rules', () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    const ip = () => `${rnd() & 255}.${rnd() & 255}.${rnd() & 255}.${rnd() & 255}`;
    const rules: string[] = [];
    for (let i = 0; i < 40; i++) rules.push(`${ip()}/${rnd() % 33}`);
    const bl = new BlockList();
    for (const e of rules) { const [a, b] = e.split('/'); bl.addSubnet(a!, Number(b), 'ipv4'); }
    const r = new Ipv4Ranges(rules);
    let hits = 0;
    for (let i = 0; i < 3000; i++) {
      const a = ip();
      const expected = bl.check(a, 'ipv4');
      if (expected) hits++;
      expect(r.has(parseIPv4(a)), a).toBe(expected);
    }
    expect(hits).toBeGreaterThan(0);
  });
});
