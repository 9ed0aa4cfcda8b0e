import { describe, it, expect } from 'vitest';
import { prepareRoutes, selectDestinations, selectRoute, type RouteRule } from '../../../src/sbc/routing.js';
import { routingNumber as canonicalNumber, uriHost } from '../../../src/sip/grammar/index.js';

const rules = [
  { from: 'core', called_prefix: '+4420', to: 'carrier-a' },
  { from: 'core', called_prefix: '+1', to: ['carrier-a', 'legacy-b'] },
  { from: 'core', domain: 'b.example', to: 'legacy-b' },
  { from: 'peers', to: 'core' },
];

describe('routing', () => {
  it('first matching rule wins, in file order', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '+442079460000', domain: 'x' })).toEqual(['carrier-a']);
    expect(selectDestinations(rules, { origin: 'core', called: '+1 (555) 010-0000', domain: 'x' })).toEqual(['carrier-a', 'legacy-b']);
  });
  it('matches domains case-insensitively', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '999', domain: 'B.example' })).toEqual(['legacy-b']);
  });
  it('routes peers to core and never back to the origin', () => {
    expect(selectDestinations(rules, { origin: 'carrier-a', called: '+4420', domain: 'x' })).toEqual(['core']);
    expect(selectDestinations([{ from: 'legacy-b', to: ['legacy-b', 'carrier-a'] }], { origin: 'legacy-b', called: '1', domain: 'x' })).toEqual(['carrier-a']);
  });
  it('returns nothing when no rule matches', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '+33', domain: 'x' })).toEqual([]);
  });
  it('canonicalises numbers and extracts hosts', () => {
    expect(canonicalNumber('+44 (20) 7946-0000')).toBe('+442079460000');
    expect(uriHost('sip:+1555@carrier.example:5061;transport=tls')).toBe('carrier.example');
    expect(uriHost('sip:[2001:db8::1]:5060')).toBe('2001:db8::1');
    expect(uriHost('sip:host.example')).toBe('host.example');
  });
  it('builds a list\'s index ahead of its first call (at start and reload), once, by canonical prefix', () => {
    const rules: RouteRule[] = [
      { from: 'peers', called_prefix: '+1', to: ['sip:a'] }, { from: 'peers', called_prefix: '+1-', to: ['sip:b'] },
      { from: 'peers', called_prefix: '+44', to: ['sip:c'] }, { from: 'core', to: ['sip:d'] },
    ];
    // '+1' and '+1-' are one prefix once canonical (visual separators go); the rule without a prefix is not in the map.
    expect(prepareRoutes(rules)).toBe(2);
    expect(prepareRoutes(rules)).toBe(2);
    expect(selectDestinations(rules, { origin: 'p', called: '+15551230000', domain: 'x' })).toEqual(['sip:a']);
    expect(selectDestinations(rules, { origin: 'core', called: '+15551230000', domain: 'x' })).toEqual(['sip:d']);
  });

  it('picks what a scan in file order picks, on random tables (the prefix index)', () => {
    // The reference: the plain first-match scan the index replaces.
    const scan = (rs: RouteRule[], origin: string, called: string, domain: string): number => rs.findIndex((r) =>
      (r.from === 'peers' ? origin !== 'core' : r.from === origin)
      && (r.called_prefix === undefined || canonicalNumber(called).startsWith(canonicalNumber(r.called_prefix)))
      && (r.domain === undefined || r.domain.toLowerCase() === domain.toLowerCase()));
    let seed = 4242;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const digits = (n: number) => Array.from({ length: n }, () => String(rnd(3))).join('');
    const origins = ['core', 'carrier-a', 'legacy-b'];
    let matched = 0;
    for (let t = 0; t < 200; t++) {
      const rs: RouteRule[] = Array.from({ length: 1 + rnd(40) }, () => ({
        from: ['core', 'peers', 'carrier-a', 'legacy-b'][rnd(4)]!,
        ...(rnd(5) > 0 ? { called_prefix: `+${rnd(4) === 0 ? '' : digits(rnd(5))}${rnd(6) === 0 ? '-' : ''}` } : {}),
        ...(rnd(6) === 0 ? { domain: ['A.example', 'b.example'][rnd(2)]! } : {}),
        to: ['core', 'carrier-a', 'legacy-b'][rnd(3)]!,
      }));
      for (let q = 0; q < 30; q++) {
        const origin = origins[rnd(3)]!;
        const called = `+${digits(rnd(8))}`;
        const domain = ['a.EXAMPLE', 'b.example', 'c.example'][rnd(3)]!;
        const want = scan(rs, origin, called, domain);
        const got = selectRoute(rs, { origin, called, domain });
        expect(got ? rs.indexOf(got.rule) : -1, JSON.stringify({ rs, origin, called, domain })).toBe(want);
        if (want >= 0) matched++;
      }
    }
    expect(matched).toBeGreaterThan(1000);
  });
});
