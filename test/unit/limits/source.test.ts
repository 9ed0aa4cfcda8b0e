import { describe, it, expect } from 'vitest';
import { Limits } from '../../../src/sbc/limits/index.js';
import { MemoryStore } from '../../../src/store/index.js';
import { PolicySchema, type Policy } from '../../../src/policy/schema.js';

function policy(embedded: boolean): Policy {
  return PolicySchema.parse({
    listen: [
      { name: 'p', side: 'peer', transport: 'udp', address: '127.0.0.1', port: 5060 },
      { name: 'c', side: 'core', transport: 'udp', address: '127.0.0.1', port: 5080 },
    ],
    engine: embedded ? { embedded: true } : { embedded: false, wire: { secret: 'cymru' } },
    core: { targets: ['sip:127.0.0.1:5090'] },
    peers: [{ id: 'a', match: { addresses: ['10.0.0.1/32'] }, limits: { per_source_pps: 5 } }],
  });
}

describe('per-source rate in the app (external drachtio-server)', () => {
  it('drops a peer source over its packet rate only when no embedded shield did it', () => {
    let t = 1_000_000;
    const limits = new Limits({ store: new MemoryStore(), nodeId: 'n', now: () => t });
    const ext = policy(false);
    const side = { kind: 'peer' as const, peer: ext.peers[0]! };
    const results = Array.from({ length: 30 }, () => limits.sourceAllowed(ext, side, '10.0.0.1'));
    const allowed = results.filter(Boolean).length;
    expect(allowed).toBeGreaterThanOrEqual(5);
    expect(allowed).toBeLessThanOrEqual(11); // rate 5/s with a burst of at most twice that
    t += 2000; // tokens come back with time
    expect(limits.sourceAllowed(ext, side, '10.0.0.1')).toBe(true);
    const emb = policy(true);
    expect(Array.from({ length: 30 }, () => limits.sourceAllowed(emb, { kind: 'peer', peer: emb.peers[0]! }, '10.0.0.1')).every(Boolean)).toBe(true);
  });
});
