import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { PolicySchema } from '../../../src/policy/schema.js';
import { loadPolicy, formatError } from '../../../src/policy/load.js';
import { parseResolver } from '../../../src/routing/schema.js';

const base = () => ({
  listen: [
    { name: 'p', side: 'peer', transport: 'udp', address: '127.0.0.1', port: 5060 },
    { name: 'c', side: 'core', transport: 'udp', address: '127.0.0.1', port: 5080 },
  ],
  core: { targets: ['sip:core.example'] },
  peers: [{ id: 'a', match: { addresses: ['192.0.2.0/28'] }, targets: ['sip:a.example'] }, { id: 'b', match: { addresses: ['192.0.2.64/28'] }, targets: ['sip:b.example'] }],
  routes: [] as unknown[],
});

function issues(p: unknown): string[] {
  const r = PolicySchema.safeParse(p);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('routing policy keys', () => {
  it('defaults: dnssec off, system resolvers, no probing', () => {
    const p = PolicySchema.parse(base());
    expect(p.dns).toMatchObject({ dnssec: 'off', timeout_ms: 1000, attempts: 2, cache: { max_entries: 10000, min_ttl_s: 1, max_ttl_s: 3600, negative_ttl_s: 30 } });
    expect(p.dns.resolvers).toBeUndefined();
    expect(p.core.health.probe).toBe(false);
    expect(p.peers[0]!.tls_pin).toBe(false);
  });
  it('points at the key that is wrong', () => {
    const bad = base();
    bad.routes = [{ from: 'core', to: ['a'], enum: { suffixes: ['e164.arpa'], allow: { b: ['b.example'] } } }];
    expect(issues(bad)).toEqual([expect.stringMatching(/^routes\.0\.enum\.allow\.b: 'b' is not in this route's to/)]);
    const pin = { ...base(), peers: [{ id: 'a', match: { addresses: ['192.0.2.0/28'] }, tls_pin: true }] };
    expect(issues(pin)).toEqual([expect.stringMatching(/^peers\.0\.tls_pin: tls_pin needs match\.certificate/)]);
    expect(issues({ ...base(), dns: { resolvers: ['dns.example'] } })).toEqual([expect.stringMatching(/^dns\.resolvers\.0: not a resolver address/)]);
    expect(issues({ ...base(), core: { targets: ['sip:x.example'], dnssec: 'maybe' } })[0]).toMatch(/^core\.dnssec/);
    expect(issues({ ...base(), core: { targets: ['sip:x.example'], health: { probe: true, interval_ms: 1000, timeout_ms: 1000 } } })[0]).toMatch(/^core\.health: health\.timeout_ms must be below interval_ms/);
    expect(issues({ ...base(), dns: { cache: { min_ttl_s: 100, max_ttl_s: 10 } } })[0]).toMatch(/^dns: dns\.cache\.min_ttl_s is above max_ttl_s/);
  });
  it('parses resolver addresses', () => {
    expect(parseResolver('127.0.0.1')).toEqual({ address: '127.0.0.1', port: 53 });
    expect(parseResolver('127.0.0.1:5353')).toEqual({ address: '127.0.0.1', port: 5353 });
    expect(parseResolver('::1')).toEqual({ address: '::1', port: 53 });
    expect(parseResolver('[::1]:5353')).toEqual({ address: '::1', port: 5353 });
    expect(parseResolver('[::1]:0')).toBeUndefined();
    expect(parseResolver('host:53')).toBeUndefined();
  });
  it('the shipped DNSSEC example passes the checker and requires validated answers', () => {
    const r = loadPolicy(join(import.meta.dirname, '../../../policies/dns-dnssec.yaml'));
    expect(r.ok ? [] : r.errors.map(formatError)).toEqual([]);
    if (r.ok) expect(r.policy.dns.dnssec).toBe('required');
  });
});
