// Limits that never deny an emergency call (issue #17.8, RFC 6404 §4.9): classification
// (emergency numbers, urn:service:sos, Resource-Priority namespaces trusted per peer), the
// reserved share above session and call-rate limits on a real MemoryStore with a fake clock,
// and the removal of untrusted Resource-Priority values.
import { describe, it, expect } from 'vitest';
import { register } from 'prom-client';
import { MemoryStore } from '../../../src/store/memory.js';
import { Limits } from '../../../src/sbc/limits/index.js';
import { GlobalLimitsSchema, PeerLimitsSchema } from '../../../src/sbc/limits/schema.js';
import { applyResourcePriority, isPriority, priorityOf, trustedResourcePriority } from '../../../src/sbc/limits/priority.js';
import type { Policy } from '../../../src/policy/schema.js';
import type { RequestView, Side } from '../../../src/sbc/stages.js';

const limitsOf = (o: Record<string, unknown> = {}) => GlobalLimitsSchema.parse({ priority: { emergency_numbers: ['911', '112'], ...o } });
const peerSide = (resource_priority: string[] = [], extra: Record<string, unknown> = {}): Side =>
  ({ kind: 'peer', peer: { id: 'pa', limits: PeerLimitsSchema.parse({ resource_priority, ...extra }) } as unknown as Policy['peers'][number] });
const req = (uri: string, headers: Record<string, string> = {}): RequestView =>
  ({ method: 'INVITE', uri, callId: 'c', protocol: 'udp', sourceAddress: '127.0.0.2', sourcePort: 5060, body: '',
    get: (n: string) => headers[n.toLowerCase()], getAll: (n: string) => (headers[n.toLowerCase()] ? [headers[n.toLowerCase()]!] : []) });
const policy = (o: Record<string, unknown> = {}) => ({ limits: limitsOf(o) }) as unknown as Policy;

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return 0;
  return (await m.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
}

describe('priorityOf', () => {
  it('emergency numbers (on digits), urn:service:sos, and trusted Resource-Priority namespaces only', () => {
    const p = policy();
    expect(priorityOf({ policy: p, from: peerSide(), req: req('sip:911@sbc.example') })).toBe('emergency');
    expect(priorityOf({ policy: p, from: peerSide(), req: req('tel:1-1-2') })).toBe('emergency');
    expect(priorityOf({ policy: p, from: peerSide(), req: req('urn:service:sos.police') })).toBe('emergency');
    expect(priorityOf({ policy: p, from: peerSide(), req: req('sip:9110@sbc.example') })).toBeUndefined();
    expect(priorityOf({ policy: p, from: peerSide(), req: req('sip:+4420@x', { 'resource-priority': 'ets.0' }) })).toBeUndefined();
    expect(priorityOf({ policy: p, from: peerSide(['ets']), req: req('sip:+4420@x', { 'resource-priority': 'wps.1, ETS.0' }) })).toBe('resource_priority');
    expect(isPriority({ policy: p, from: { kind: 'core' }, req: req('sip:+4420@x', { 'resource-priority': 'dsn.flash' }) })).toBe(true);
    expect(isPriority({ policy: p, from: peerSide(['ets']), req: req('sip:+4420@x') })).toBe(false);
  });

  it('Resource-Priority keeps only trusted namespaces; an untrusted one is removed (and counted) even when the allowlist forwards it', async () => {
    expect(trustedResourcePriority(peerSide(['ets']), 'wps.1, ets.0')).toBe('ets.0');
    const before = await metric('peergate_resource_priority_stripped_total', { peer: 'pa' });
    const h: Record<string, string> = { 'resource-priority': 'wps.1' };
    applyResourcePriority(h, peerSide(['ets']), 'wps.1');
    expect(h).toEqual({});
    const k: Record<string, string> = {};
    applyResourcePriority(k, peerSide(['ets']), 'ets.0');
    expect(k).toEqual({ 'Resource-Priority': 'ets.0' });
    expect(await metric('peergate_resource_priority_stripped_total', { peer: 'pa' })).toBe(before + 1);
  });
});

describe('reserved share above the limits', () => {
  function setup() {
    const clock = { t: 1_000_000 };
    const store = new MemoryStore({ now: () => clock.t });
    return { clock, store, limits: new Limits({ store, nodeId: 'n1', now: () => clock.t }) };
  }

  /** A limit of 10 with a 0.2 share reserved: 10 ordinary calls pass and the 11th is refused
   *  for `reason`; then two priority calls pass (10 × 0.2) and the third is refused. */
  async function fillThenReserve(limits: Limits, peer: ReturnType<typeof PeerLimitsSchema.parse>, reason: 'sessions' | 'cps') {
    const global = limitsOf({ reserved_share: 0.2 });
    for (let i = 0; i < 10; i++) expect((await limits.admit('pa', { peer, global })).admit).toBe(true);
    expect(await limits.admit('pa', { peer, global })).toMatchObject({ admit: false, reason });
    expect((await limits.admit('pa', { peer, global }, undefined, true)).admit).toBe(true);
    expect((await limits.admit('pa', { peer, global }, undefined, true)).admit).toBe(true);
    expect(await limits.admit('pa', { peer, global }, undefined, true)).toMatchObject({ admit: false, reason });
    return global;
  }

  it('sessions: ordinary calls stop at the limit, priority calls at limit + share, then are refused', async () => {
    const { limits } = setup();
    const peer = PeerLimitsSchema.parse({ sessions: 10 });
    await fillThenReserve(limits, peer, 'sessions');
    // With no share reserved a priority call is an ordinary one.
    const none = limitsOf({ reserved_share: 0 });
    expect(await limits.admit('pa', { peer, global: none }, undefined, true)).toMatchObject({ admit: false });
  });

  it('call rate: past the peer bucket a priority call draws on its own bucket (cps × share), which refills', async () => {
    const { clock, limits } = setup();
    const peer = PeerLimitsSchema.parse({ cps: 10, burst: 10 });
    const global = await fillThenReserve(limits, peer, 'cps');
    clock.t += 500; // 2/s reserved → one token; the ordinary bucket (10/s) refilled 5
    for (let i = 0; i < 5; i++) expect((await limits.admit('pa', { peer, global })).admit).toBe(true);
    expect((await limits.admit('pa', { peer, global })).admit).toBe(false);
    expect((await limits.admit('pa', { peer, global }, undefined, true)).admit).toBe(true);
  });

  it('admitCall classifies the request and counts admitted and refused priority calls', async () => {
    const { limits } = setup();
    const p = { limits: limitsOf({ reserved_share: 0.1 }) } as unknown as Policy;
    const from = peerSide([], { sessions: 1 });
    const ordinary = await limits.admitCall(p, from, req('sip:+4420@x'));
    expect(ordinary.ok).toBe(true);
    expect((await limits.admitCall(p, from, req('sip:+4421@x'))).ok).toBe(false);
    const a0 = await metric('peergate_priority_calls_total', { peer: 'pa', kind: 'emergency', result: 'admitted' });
    const r0 = await metric('peergate_priority_calls_total', { peer: 'pa', kind: 'emergency', result: 'refused' });
    expect((await limits.admitCall(p, from, req('sip:911@x'))).ok).toBe(true);
    expect((await limits.admitCall(p, from, req('sip:112@x'))).ok).toBe(false);
    expect(await metric('peergate_priority_calls_total', { peer: 'pa', kind: 'emergency', result: 'admitted' })).toBe(a0 + 1);
    expect(await metric('peergate_priority_calls_total', { peer: 'pa', kind: 'emergency', result: 'refused' })).toBe(r0 + 1);
  });
});
