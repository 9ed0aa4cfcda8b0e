import { describe, it, expect } from 'vitest';
import { Shield, normalizeAddress } from '../../../src/engine/shield/index.js';
import type { Clock } from '../../../src/engine/transport/types.js';

/** A clock the test moves by hand; timers fire when advanced past their deadline. */
class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void { this.timers = this.timers.filter((x) => x.id !== h); }
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
  get pending(): number { return this.timers.length; }
}

describe('Shield', () => {
  it('admits everything with no configuration and counts it', () => {
    const s = new Shield({}, new FakeClock());
    for (let i = 0; i < 5; i++) expect(s.admit('192.0.2.1')).toBe(true);
    expect(s.counters.admitted).toBe(5);
    expect(s.trackedSources).toBe(0);
  });

  it('drops banned sources until the ban expires', () => {
    const clock = new FakeClock();
    const s = new Shield({}, clock);
    s.ban('198.51.100.7', 5_000);
    expect(s.admit('198.51.100.7')).toBe(false);
    expect(s.admit('198.51.100.8')).toBe(true);
    expect(s.counters.dropped.ban).toBe(1);
    expect(s.bans()).toEqual([{ address: '198.51.100.7', expiresAt: clock.t + 5_000 }]);
    clock.advance(4_999);
    expect(s.admit('198.51.100.7')).toBe(false);
    clock.advance(1);
    expect(s.admit('198.51.100.7')).toBe(true);
    expect(s.bans()).toEqual([]);
  });

  it('bounds the ban set: expired bans go first, then the oldest', () => {
    const clock = new FakeClock();
    const s = new Shield({ maxBans: 3 }, clock);
    s.ban('192.0.2.1', 100);
    s.ban('192.0.2.2', 10_000);
    s.ban('192.0.2.3', 10_000);
    clock.advance(200);
    s.ban('192.0.2.4', 10_000);
    expect(s.bans().map((b) => b.address).sort()).toEqual(['192.0.2.2', '192.0.2.3', '192.0.2.4']);
    s.ban('192.0.2.5', 10_000);
    expect(s.bans().map((b) => b.address).sort()).toEqual(['192.0.2.3', '192.0.2.4', '192.0.2.5']);
    // Re-banning an address already banned extends it without evicting anyone.
    s.ban('192.0.2.3', 50_000);
    expect(s.bans()).toHaveLength(3);
  });

  it('unban lifts a ban at once', () => {
    const s = new Shield({}, new FakeClock());
    s.ban('2001:db8::1', 60_000);
    expect(s.isBanned('2001:db8::1')).toBe(true);
    expect(s.unban('2001:db8::1')).toBe(true);
    expect(s.admit('2001:db8::1')).toBe(true);
    expect(s.unban('2001:db8::1')).toBe(false);
  });

  it('denies deny-listed CIDRs and addresses (v4, v6, v4-mapped)', () => {
    const s = new Shield({ deny: ['203.0.113.0/24', '2001:db8:bad::/48', '192.0.2.99'] }, new FakeClock());
    expect(s.admit('203.0.113.5')).toBe(false);
    expect(s.admit('::ffff:203.0.113.6')).toBe(false);
    expect(s.admit('2001:db8:bad:1::5')).toBe(false);
    expect(s.admit('192.0.2.99')).toBe(false);
    expect(s.admit('192.0.2.98')).toBe(true);
    expect(s.admit('203.0.114.1')).toBe(true);
    expect(s.counters.dropped.deny).toBe(4);
    expect(s.counters.admitted).toBe(2);
  });

  it('with an allow list, admits only allowed sources; deny wins over allow', () => {
    const s = new Shield({ allow: ['10.0.0.0/8'], deny: ['10.9.9.9'] }, new FakeClock());
    expect(s.admit('10.1.2.3')).toBe(true);
    expect(s.admit('11.1.2.3')).toBe(false);
    expect(s.admit('10.9.9.9')).toBe(false);
    expect(s.counters.dropped.notAllowed).toBe(1);
    expect(s.counters.dropped.deny).toBe(1);
  });

  it('ban is checked before the ACL', () => {
    const s = new Shield({ allow: ['10.0.0.0/8'] }, new FakeClock());
    s.ban('10.0.0.1', 1000);
    expect(s.check('10.0.0.1')).toBe('ban');
  });

  it('rate-limits each source with a token bucket (burst, then rate)', () => {
    const clock = new FakeClock();
    const s = new Shield({ rate: { ratePerSec: 10, burst: 5 } }, clock);
    let ok = 0;
    for (let i = 0; i < 20; i++) if (s.admit('192.0.2.1')) ok++;
    expect(ok).toBe(5);
    expect(s.counters.dropped.rateLimited).toBe(15);
    // Another source has its own bucket.
    expect(s.admit('192.0.2.2')).toBe(true);
    // 10/s: after 100 ms one token, after 1 s back to the burst of 5 (not 10).
    clock.advance(100);
    expect(s.admit('192.0.2.1')).toBe(true);
    expect(s.admit('192.0.2.1')).toBe(false);
    clock.advance(1_000);
    ok = 0;
    for (let i = 0; i < 20; i++) if (s.admit('192.0.2.1')) ok++;
    expect(ok).toBe(5);
  });

  it('holds the configured rate over a long run', () => {
    const clock = new FakeClock();
    const s = new Shield({ rate: { ratePerSec: 50, burst: 10 } }, clock);
    let ok = 0;
    // 1000 packets/s offered for 10 s.
    for (let ms = 0; ms < 10_000; ms++) { if (s.admit('192.0.2.1')) ok++; clock.advance(1); }
    expect(ok).toBeGreaterThanOrEqual(500);
    expect(ok).toBeLessThanOrEqual(511);
  });

  it('caps the source table and sweeps idle buckets', () => {
    const clock = new FakeClock();
    const s = new Shield({ rate: { ratePerSec: 100, burst: 10 }, maxSources: 100, sweepIntervalMs: 1_000 }, clock);
    for (let i = 0; i < 1000; i++) s.admit(`10.0.${i >> 8}.${i & 255}`);
    expect(s.trackedSources).toBe(100);
    // Buckets refill in 100 ms; the sweep (every 1 s) drops them.
    clock.advance(1_000);
    expect(s.trackedSources).toBe(0);
    s.close();
    expect(clock.pending).toBe(0);
  });

  it('keeps a busy source through sweeps', () => {
    const clock = new FakeClock();
    const s = new Shield({ rate: { ratePerSec: 1, burst: 1 }, sweepIntervalMs: 500 }, clock);
    for (let i = 0; i < 10; i++) { s.admit('192.0.2.1'); clock.advance(200); }
    expect(s.trackedSources).toBe(1);
    s.close();
  });

  it('reconfigure re-evaluates cached ACL verdicts and keeps bans', () => {
    const s = new Shield({ deny: ['192.0.2.0/24'] }, new FakeClock());
    s.ban('198.51.100.1', 10_000);
    expect(s.admit('192.0.2.1')).toBe(false);
    s.configure({ deny: ['203.0.113.0/24'] });
    expect(s.admit('192.0.2.1')).toBe(true);
    expect(s.admit('203.0.113.1')).toBe(false);
    expect(s.admit('198.51.100.1')).toBe(false);
  });

  it('a bad configuration throws and leaves the previous one in force', () => {
    const s = new Shield({ deny: ['192.0.2.0/24'] }, new FakeClock());
    expect(() => s.configure({ deny: ['not-an-ip'] })).toThrow(/not-an-ip/);
    expect(() => s.configure({ allow: ['10.0.0.0/33'] })).toThrow(/prefix/);
    expect(() => s.configure({ rate: { ratePerSec: 0, burst: 1 } })).toThrow(/ratePerSec/);
    expect(s.admit('192.0.2.1')).toBe(false);
  });
});

describe('shield helpers', () => {
  it('normalizes v4-mapped addresses only', () => {
    expect(normalizeAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeAddress('::ffff:c000:201')).toBe('::ffff:c000:201');
    expect(normalizeAddress('192.0.2.1')).toBe('192.0.2.1');
  });
  it('a bad ACL entry is named and the previous configuration stays', () => {
    const s = new Shield();
    s.configure({ allow: ['10.0.0.0/8'] });
    expect(() => s.configure({ allow: ['10.0.0.0/8', '1.2.3'] })).toThrow(/shield allow: "1.2.3"/);
    expect(() => s.configure({ deny: ['10.0.0.0/33'] })).toThrow(/shield deny: "10.0.0.0\/33" has a bad prefix length/);
    expect(s.admit('10.255.0.1')).toBe(true);
    expect(s.admit('11.0.0.1')).toBe(false);
  });
});
