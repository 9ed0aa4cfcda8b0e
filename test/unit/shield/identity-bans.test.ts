// TLS identity bans in the shield (issue #17.4): keyed by certificate fingerprint, apart from
// address bans, never withheld by `protect`, bounded, expiring on the shield's clock, and
// reported to subscribers (the transports close the identity's connections).
import { describe, it, expect } from 'vitest';
import { Shield } from '../../../src/engine/shield/index.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const FP_A = 'AA:'.repeat(31) + 'AA';
const FP_B = 'BB:'.repeat(31) + 'BB';

describe('Shield identity bans', () => {
  it('bans an identity for its ttl, apart from addresses, and tells subscribers', () => {
    const clock = new ManualClock();
    const s = new Shield({ protect: ['127.0.0.2'] }, clock);
    const told: Array<[string, number]> = [];
    const off = s.onIdentityBan((fp, ttl) => told.push([fp, ttl]));
    s.banIdentity(FP_A, 60_000);
    expect(s.isIdentityBanned(FP_A)).toBe(true);
    expect(s.isIdentityBanned(FP_B)).toBe(false);
    // The address set is untouched: the address the identity came from still passes.
    expect(s.admit('127.0.0.2')).toBe(true);
    expect(s.bans()).toEqual([]);
    expect(s.identityBans()).toEqual([{ fingerprint256: FP_A, expiresAt: clock.now() + 60_000 }]);
    expect(told).toEqual([[FP_A, 60_000]]);
    expect(s.counters.identity.bans).toBe(1);
    expect(s.counters.bansWithheld).toBe(0);
    clock.advance(59_999);
    expect(s.isIdentityBanned(FP_A)).toBe(true);
    clock.advance(1);
    expect(s.isIdentityBanned(FP_A)).toBe(false);
    expect(s.identityBans()).toEqual([]);
    off();
    s.banIdentity(FP_B, 1000);
    expect(told).toHaveLength(1);
    expect(s.unbanIdentity(FP_B)).toBe(true);
    expect(s.unbanIdentity(FP_B)).toBe(false);
    expect(s.isIdentityBanned(FP_B)).toBe(false);
    s.close();
  });

  it('ignores a zero ttl, survives a throwing subscriber, is bounded by maxBans and swept', () => {
    const clock = new ManualClock();
    const s = new Shield({ maxBans: 2 }, clock);
    s.onIdentityBan(() => { throw new Error('subscriber bug'); });
    s.banIdentity(FP_A, 0);
    expect(s.isIdentityBanned(FP_A)).toBe(false);
    s.banIdentity('01', 1000);
    s.banIdentity('02', 5000);
    s.banIdentity('03', 5000);
    // Full: the oldest went.
    expect(s.identityBans().map((b) => b.fingerprint256)).toEqual(['02', '03']);
    clock.advance(5000);
    s.sweep();
    expect(s.identityBans()).toEqual([]);
    s.close();
  });
});
