import { describe, it, expect } from 'vitest';
import { orderSrv, orderNaptr } from '../../../src/routing/srv.js';
import { TtlCache } from '../../../src/routing/cache.js';
import { parseTargetUri } from '../../../src/routing/rfc3263.js';

const srv = (priority: number, weight: number, target: string) => ({ priority, weight, port: 5060, target });

describe('RFC 2782 order', () => {
  it('lowest priority first; weights decide the order inside a priority', () => {
    const recs = [srv(20, 0, 'c'), srv(10, 90, 'a'), srv(10, 10, 'b'), srv(30, 5, '.')];
    const firsts = { a: 0, b: 0 };
    let seed = 1;
    const rnd = () => { seed = (seed * 48271) % 2147483647; return seed / 2147483647; };
    for (let i = 0; i < 1000; i++) {
      const o = orderSrv(recs, rnd).map((r) => r.target);
      expect(o).toHaveLength(3);
      expect(o[2]).toBe('c');
      firsts[o[0] as 'a' | 'b']++;
    }
    expect(firsts.a).toBeGreaterThan(820);
    expect(firsts.a).toBeLessThan(960);
  });
  it('all-zero weights still list every target', () => {
    expect(orderSrv([srv(1, 0, 'x'), srv(1, 0, 'y')], () => 0.99).map((r) => r.target).sort()).toEqual(['x', 'y']);
  });
  it('NAPTR by order then preference', () => {
    const n = (order: number, preference: number) => ({ order, preference });
    expect(orderNaptr([n(20, 1), n(10, 50), n(10, 10)])).toEqual([n(10, 10), n(10, 50), n(20, 1)]);
  });
});

describe('answer cache', () => {
  it('honours TTLs within the policy clamp, negative TTLs, and its size bound', () => {
    let now = 0;
    const c = new TtlCache<string>({ maxEntries: 3, minTtlS: 2, maxTtlS: 100, negativeTtlS: 5 }, () => now);
    c.set('a', 'A', 1, false);      // clamped up to 2 s
    c.set('n', 'N', 600, true);     // negative: capped at 5 s
    c.set('b', 'B', 1000, false);   // clamped down to 100 s
    now = 1900; expect(c.get('a')).toBe('A');
    now = 2000; expect(c.get('a')).toBeUndefined();
    now = 4999; expect(c.get('n')).toBe('N');
    now = 5000; expect(c.get('n')).toBeUndefined();
    now = 99_999; expect(c.get('b')).toBe('B');
    for (const k of ['x', 'y', 'z', 'w']) c.set(k, k, 50, false);
    expect(c.size).toBe(3);
    expect(c.get('b')).toBeUndefined();
  });
});

describe('target URIs', () => {
  it('parses what RFC 3263 needs', () => {
    expect(parseTargetUri('sips:carrier.test')).toEqual({ scheme: 'sips', host: 'carrier.test' });
    expect(parseTargetUri('sip:+44@[2001:db8::1]:5070;transport=TCP')).toEqual({ scheme: 'sip', host: '2001:db8::1', port: 5070, transport: 'tcp' });
    expect(parseTargetUri('sips:x.test;transport=tcp')).toEqual({ scheme: 'sips', host: 'x.test', transport: 'tls' });
    expect(parseTargetUri('sip:x.test;transport=sctp')).toBeUndefined();
    expect(parseTargetUri('tel:+44')).toBeUndefined();
  });

  it('a URI parsed again is the same read-only answer (the route\'s targets are read on every INVITE); a good and a bad one both stay right past the cache\'s bound', () => {
    const a = parseTargetUri('sip:core@192.0.2.7:5080');
    expect(parseTargetUri('sip:core@192.0.2.7:5080')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    for (let i = 0; i < 1200; i++) expect(parseTargetUri(`sip:h${i}.test:${1 + (i % 65535)}`)?.host).toBe(`h${i}.test`);
    expect(parseTargetUri('sip:core@192.0.2.7:5080')).toEqual({ scheme: 'sip', host: '192.0.2.7', port: 5080 });
    expect(parseTargetUri('sip:x.test;transport=sctp')).toBeUndefined();
    expect(parseTargetUri('sip:x.test;transport=sctp')).toBeUndefined();
  });
});
