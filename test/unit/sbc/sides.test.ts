// The per-policy lookups of the call flow (src/sbc/sides.ts) and a refusal's headers
// (src/sbc/requests.ts), read from the shipped example policy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/schema.js';
import { indexOf, sideLabel, trustBetween } from '../../../src/sbc/sides.js';
import { warningHeaders } from '../../../src/sbc/requests.js';
import type { Side } from '../../../src/sbc/stages.js';

const file = join(import.meta.dirname, '../../../policies/example.yaml');
const r = parsePolicy(readFileSync(file, 'utf8'), file);
if (!r.ok) throw new Error('example policy does not load');
const example: Policy = r.policy;
const peer = example.peers[0]!;

describe('per-policy lookups (sides.ts)', () => {
  it('maps a listener to its side, exactly or by port on a wildcard address; not ours: undefined', () => {
    const c = indexOf(example);
    expect(c.listenerSide('127.0.0.1:5060')).toBe('peer');
    expect(c.listenerSide('127.0.0.1:5080')).toBe('core');
    expect(c.listenerSide('0.0.0.0:5080')).toBe('core');
    expect(c.listenerSide('127.0.0.1:5999')).toBeUndefined();
    expect(c.listenerSide(undefined)).toBeUndefined();
    expect(c.own.has('127.0.0.1:5061')).toBe(true);
  });

  it('compiles once per policy object, again for a new one', () => {
    expect(indexOf(example)).toBe(indexOf(example));
    const other: Policy = { ...example, core: { ...example.core, addresses: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'] } };
    expect(indexOf(other)).not.toBe(indexOf(example));
  });

  it('core sources: any without core.addresses, else only the listed addresses and subnets', () => {
    expect(indexOf({ ...example, core: { ...example.core, addresses: undefined } } as Policy).coreSourceAllowed('198.51.100.1')).toBe(true);
    const c = indexOf({ ...example, core: { ...example.core, addresses: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'] } });
    expect(c.coreSourceAllowed('10.1.2.3')).toBe(true);
    expect(c.coreSourceAllowed('192.0.2.7')).toBe(true);
    expect(c.coreSourceAllowed('192.0.2.8')).toBe(false);
    expect(c.coreSourceAllowed('2001:db8::1')).toBe(true);
    expect(c.coreSourceAllowed('2001:db9::1')).toBe(false);
  });

  it('an allowlist per receiving side: the peer\'s own settings, not the core\'s', () => {
    const replacing: Policy = { ...example, peers: [{ ...peer, topology: { ...peer.topology, user_agent: 'replace', user_agent_value: 'edge' } }] };
    const c = indexOf(replacing);
    const get = (n: string) => ({ 'User-Agent': 'secret-pbx/1.0', Subject: 'hi' } as Record<string, string>)[n];
    const trust = { trustedSender: false, trustedReceiver: false };
    expect(c.allowlist({ kind: 'peer', peer: replacing.peers[0]! }).requestHeaders(get, trust)).toMatchObject({ 'User-Agent': 'edge', Subject: 'hi' });
    expect(c.allowlist({ kind: 'core' }).requestHeaders(get, trust)['User-Agent']).not.toBe('edge');
  });

  it('RFC 3325 trust: the core always, a peer only with trust_pai', () => {
    const core: Side = { kind: 'core' };
    const untrusted: Side = { kind: 'peer', peer: { ...peer, topology: { ...peer.topology, trust_pai: false } } };
    const trusted: Side = { kind: 'peer', peer: { ...peer, topology: { ...peer.topology, trust_pai: true } } };
    expect(trustBetween(untrusted, core)).toEqual({ trustedSender: false, trustedReceiver: true });
    expect(trustBetween(core, untrusted)).toEqual({ trustedSender: true, trustedReceiver: false });
    expect(trustBetween(trusted, core)).toEqual({ trustedSender: true, trustedReceiver: true });
    expect(sideLabel(core)).toBe('core');
    expect(sideLabel(untrusted)).toBe(peer.id);
  });
});

describe('refusal headers (requests.ts)', () => {
  it('Reason always; Allow, Retry-After, Warning when given, quotes removed', () => {
    expect(warningHeaders({ status: 503, reason: 'Service "Unavailable"', label: 'draining', retryAfterS: 30, warning: 'node "draining"' }).headers).toEqual({
      Reason: 'SIP;cause=503;text="Service Unavailable"', 'Retry-After': '30', Warning: '399 peergate "node draining"',
    });
    expect(warningHeaders({ status: 405, reason: 'Method Not Allowed', label: 'method', allow: ['INVITE', 'ACK'] }).headers).toEqual({
      Reason: 'SIP;cause=405;text="Method Not Allowed"', Allow: 'INVITE, ACK',
    });
  });
  it('415 carries the Accept headers; a refusal\'s own headers (Min-SE on 422) are added', () => {
    expect(Object.keys(warningHeaders({ status: 415, reason: 'Unsupported Media Type', label: 'body' }).headers)).toContain('Accept');
    expect(warningHeaders({ status: 422, reason: 'Session Interval Too Small', label: 'session_interval', headers: { 'Min-SE': '90' } }).headers['Min-SE']).toBe('90');
  });
});
