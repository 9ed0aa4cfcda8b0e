// The ban list of the store reaching the engine shield (src/store/bans.ts), with TLS identity
// bans (issue #17.4): both kinds share the store's list and events, and each lands in its own
// set of a real Shield; a resync lifts what the store no longer holds. Also the store key of an
// identity (ban-key.ts) and whom a strike counts against (app/state.ts strikeKey).
import { describe, it, expect } from 'vitest';
import { MemoryStore, syncBans, identityBanKey, banTarget, normalizeFingerprint } from '../../../src/store/index.js';
import { Shield } from '../../../src/engine/shield/index.js';
import { strikeKey } from '../../../src/app/state.js';

const FP = 'AB:'.repeat(31) + 'CD';

describe('ban keys', () => {
  it('normalises fingerprints and tells identities from addresses', () => {
    expect(normalizeFingerprint(FP.replace(/:/g, '').toLowerCase())).toBe(FP);
    expect(normalizeFingerprint(` ${FP} `)).toBe(FP);
    expect(normalizeFingerprint('AB:CD')).toBeUndefined();
    expect(normalizeFingerprint('G'.repeat(64))).toBeUndefined();
    expect(banTarget(identityBanKey(FP))).toEqual({ kind: 'identity', fingerprint256: FP });
    expect(banTarget('2001:db8::1')).toEqual({ kind: 'address', address: '2001:db8::1' });
  });

  it('strikes with a verified TLS identity count against it unless the policy turns it off', () => {
    expect(strikeKey({ by_tls_identity: true }, '192.0.2.1', FP)).toBe(`tls:${FP}`);
    expect(strikeKey({}, '192.0.2.1', FP)).toBe(`tls:${FP}`);
    expect(strikeKey({ by_tls_identity: false }, '192.0.2.1', FP)).toBe('192.0.2.1');
    expect(strikeKey({ by_tls_identity: true }, '192.0.2.1', undefined)).toBe('192.0.2.1');
  });
});

describe('syncBans with identity bans', () => {
  it('routes address and identity bans to their own sets, follows unbans and resyncs', async () => {
    const store = new MemoryStore({ reportUp: false });
    const shield = new Shield();
    await store.ban(identityBanKey(FP), 60_000, 'before start');
    const sync = await syncBans(store, shield);
    expect(shield.isIdentityBanned(FP)).toBe(true);
    expect(shield.bans()).toEqual([]);
    await store.ban('192.0.2.7', 60_000, 'scanner');
    expect(shield.isBanned('192.0.2.7')).toBe(true);
    expect(shield.identityBans().map((b) => b.fingerprint256)).toEqual([FP]);
    await store.unban(identityBanKey(FP));
    expect(shield.isIdentityBanned(FP)).toBe(false);
    expect(shield.isBanned('192.0.2.7')).toBe(true);
    // A ban the store lost while the node was away is lifted by a resync.
    shield.banIdentity('EE', 60_000);
    await sync.resync();
    expect(shield.identityBans()).toEqual([]);
    expect(shield.isBanned('192.0.2.7')).toBe(true);
    // Strikes past the threshold on an identity key ban the identity, not an address.
    for (let i = 0; i < 3; i++) await store.strike(identityBanKey(FP), 'malformed', { threshold: 3, windowMs: 60_000, banMs: 30_000 });
    expect(shield.isIdentityBanned(FP)).toBe(true);
    expect(shield.bans().map((b) => b.address)).toEqual(['192.0.2.7']);
    sync.stop();
    shield.close();
  });
});
