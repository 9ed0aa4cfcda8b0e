// RFC 3263 location against real DNS: nsd serving a zone signed with ldns-signzone and a
// plain one, unbound validating with the signed zone's trust anchor, on loopback ports.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startDns, type RunningDns } from '../helpers/dns.js';
import { stopInOrder } from '../helpers/procs.js';
import { DnsClient, dnsErrorsTotal } from '../../src/routing/dns-client.js';
import { Locator } from '../../src/routing/rfc3263.js';

let dns: RunningDns;

const CARRIER = `
@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp
@ IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp
_sips._tcp IN SRV 10 60 5061 sbc1
_sips._tcp IN SRV 10 40 5061 sbc2
_sips._tcp IN SRV 20 0 5062 sbc3
_sip._udp IN SRV 10 10 5070 sbc1
sbc1 IN A 127.0.0.11
sbc2 IN AAAA ::1
sbc3 IN A 127.0.0.13
forged IN A 127.0.0.21
loop1 IN CNAME loop2
loop2 IN CNAME loop1
alias IN CNAME sbc1
`;

const PLAIN = `
_sip._udp IN SRV 10 0 5080 sbc
sbc IN A 127.0.0.31
moving 1 IN A 127.0.0.41
`;

function locator(o: { trusted?: boolean; now?: () => number; minTtl?: number } = {}) {
  const client = new DnsClient({ resolvers: [{ address: '127.0.0.1', port: dns.resolverPort }], trusted: () => o.trusted ?? true, timeoutMs: 2000, attempts: 1 });
  return new Locator({ client, cache: { maxEntries: 100, minTtlS: o.minTtl ?? 0, maxTtlS: 3600, negativeTtlS: 30 }, ...(o.now ? { now: o.now } : {}) });
}

beforeAll(async () => {
  dns = await startDns([
    { origin: 'carrier.test', records: CARRIER, signed: true, tamper: (z) => z.replace(/(forged\.carrier\.test\.\s+\d+\s+IN\s+A\s+)127\.0\.0\.21/, '$1127.0.0.66') },
    { origin: 'plain.test', records: PLAIN, signed: false },
  ]);
}, 60_000);

afterAll(() => stopInOrder(dns));

describe('RFC 3263 locate over real DNS', () => {
  it('sips: NAPTR → SRV by priority and weight → AAAA/A, TLS, server name is the URI host, authenticated', async () => {
    const r = await locator().locate('sips:carrier.test', { dnssec: 'required' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.authenticated).toBe(true);
    // Priority 10 (sbc1, sbc2 in weighted order) before priority 20 (sbc3); only SIPS+D2T for a sips URI.
    expect(r.hops.map((h) => `${h.address}:${h.port}`).slice(0, 2).sort()).toEqual(['127.0.0.11:5061', '::1:5061']);
    expect(r.hops[2]).toEqual({ transport: 'tls', address: '127.0.0.13', port: 5062, serverName: 'carrier.test' });
    expect(r.hops.every((h) => h.transport === 'tls' && h.serverName === 'carrier.test')).toBe(true);
  });

  it('sip: follows NAPTR order (TLS first, then UDP) and the weights share the first place', async () => {
    const firsts = new Map<string, number>();
    const loc = locator();
    for (let i = 0; i < 200; i++) {
      const r = await loc.locate('sip:carrier.test', { dnssec: 'off' });
      if (!r.ok) throw new Error(r.detail);
      expect(r.hops.map((h) => h.transport)).toEqual(['tls', 'tls', 'tls', 'udp']);
      expect(r.hops[3]).toMatchObject({ address: '127.0.0.11', port: 5070 });
      firsts.set(r.hops[0]!.address, (firsts.get(r.hops[0]!.address) ?? 0) + 1);
    }
    // 60/40 weights: each comes first a fair share of 200 draws (bounds far from chance failure).
    expect(firsts.get('127.0.0.11')!).toBeGreaterThan(80);
    expect(firsts.get('::1')!).toBeGreaterThan(45);
  });

  it('IPv6 hops are left out when we cannot send IPv6', async () => {
    const r = await locator().locate('sips:carrier.test', { dnssec: 'off', families: new Set([4]) });
    expect(r.ok && r.hops.map((h) => h.address)).toEqual(expect.arrayContaining(['127.0.0.11', '127.0.0.13']));
    expect(r.ok && r.hops.some((h) => h.address === '::1')).toBe(false);
  });

  it('no NAPTR: SRV of the plain zone; unsigned answers route with dnssec off or prefer but not required', async () => {
    const r = await locator().locate('sip:plain.test', { dnssec: 'prefer' });
    expect(r).toEqual({ ok: true, authenticated: false, hops: [{ transport: 'udp', address: '127.0.0.31', port: 5080, serverName: 'plain.test' }] });
    const req = await locator().locate('sip:plain.test', { dnssec: 'required' });
    expect(req).toMatchObject({ ok: false, reason: 'dnssec' });
  });

  it('explicit port and transport: A only; CNAME followed', async () => {
    const r = await locator().locate('sip:alias.carrier.test:5999;transport=tcp', { dnssec: 'required' });
    expect(r).toEqual({ ok: true, authenticated: true, hops: [{ transport: 'tcp', address: '127.0.0.11', port: 5999, serverName: 'alias.carrier.test' }] });
  });

  it('a record forged after signing is bogus: the resolver refuses it and nothing routes', async () => {
    const before = await dnsErrorsTotal.get();
    const r = await locator().locate('sip:forged.carrier.test:5060', { dnssec: 'required' });
    expect(r).toMatchObject({ ok: false, reason: 'dns_error' });
    const off = await locator().locate('sip:forged.carrier.test:5060', { dnssec: 'off' });
    // Validation is the resolver's: even with dnssec off, a bogus answer never comes back.
    expect(off.ok).toBe(false);
    const after = await dnsErrorsTotal.get();
    const sum = (m: typeof before) => m.values.filter((v) => v.labels.reason === 'servfail').reduce((s, v) => s + v.value, 0);
    expect(sum(after) - sum(before)).toBeGreaterThanOrEqual(2);
  });

  it('an AD bit from an untrusted resolver counts for nothing', async () => {
    const r = await locator({ trusted: false }).locate('sips:carrier.test', { dnssec: 'required' });
    expect(r).toMatchObject({ ok: false, reason: 'dnssec' });
  });

  it('a CNAME loop is a bounded error', async () => {
    const t0 = Date.now();
    const r = await locator().locate('sip:loop1.carrier.test:5060', { dnssec: 'off' });
    expect(r.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('unknown names: not_found, remembered (negative cache)', async () => {
    const loc = locator();
    const r = await loc.locate('sip:nothing.plain.test', { dnssec: 'off' });
    expect(r).toMatchObject({ ok: false, reason: 'not_found' });
  });

  it('TTL expiry re-resolves; before expiry the cache answers', async () => {
    let now = Date.now();
    const loc = locator({ now: () => now });
    const first = await loc.locate('sip:moving.plain.test:5060', { dnssec: 'off' });
    expect(first.ok && first.hops[0]!.address).toBe('127.0.0.41');
    await dns.reloadZone('plain.test', PLAIN.replace('127.0.0.41', '127.0.0.42'));
    // Within the 1 s TTL our cache still answers (no query at all).
    const cached = await loc.locate('sip:moving.plain.test:5060', { dnssec: 'off' });
    expect(cached.ok && cached.hops[0]!.address).toBe('127.0.0.41');
    // Past it (and past unbound's own copy), the new address. Our cache is past its TTL at once;
    // unbound's copy (1 s, counted in its whole seconds) has been seen to outlive 1.5 s on a loaded
    // machine, so ask again, each time past our TTL, for up to 6 s.
    await new Promise((r) => setTimeout(r, 1500));
    let address: string | undefined;
    for (const deadline = Date.now() + 6000; address !== '127.0.0.42' && Date.now() < deadline;) {
      now += 2000;
      const again = await loc.locate('sip:moving.plain.test:5060', { dnssec: 'off' });
      address = again.ok ? again.hops[0]!.address : undefined;
      if (address !== '127.0.0.42') await new Promise((r) => setTimeout(r, 250));
    }
    expect(address).toBe('127.0.0.42');
  });
});
