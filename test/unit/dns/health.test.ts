import { describe, it, expect } from 'vitest';
import { TargetHealth, FORGET_AFTER_ROUNDS, hopKey, targetUp, type HealthSide, type ProbeTarget } from '../../../src/routing/health.js';

const hop = (port: number) => ({ transport: 'udp' as const, address: '192.0.2.1', port });
const health = { probe: true, interval_ms: 1000, timeout_ms: 100, failure_threshold: 2, success_threshold: 3 };

describe('target health (OPTIONS probing state)', () => {
  it('goes down after failure_threshold failures, up after success_threshold answers', async () => {
    const answers = new Map<number, Array<number | 'timeout'>>([[5060, [200, 'timeout', 408, 503, 404, 200, 200, 200]], [5070, [500, 486, 200]]]);
    const changes: Array<[string, boolean]> = [];
    const h = new TargetHealth(async (t) => answers.get(t.hop.port)!.shift() ?? 200, (k, up) => changes.push([k, up]));
    let targets: ProbeTarget[] = [5060, 5070].map((p) => ({ uri: 'sip:x.test', hop: hop(p), side: 'peer' }));
    let complete = true;
    const side: HealthSide = { side: 'carrier-a', health, hops: async () => ({ targets, complete }) };
    const a = hopKey(hop(5060));
    const seen: boolean[] = [];
    for (let i = 0; i < 8; i++) { await h.probeSide(side); seen.push(h.isUp(a)); }
    // 200 up; timeout (1 fail) up; 408 (2 fails) down; 503 down; 404 alive 1; 200 2; 200 3 → up.
    expect(seen).toEqual([true, true, false, false, false, false, true, true]);
    expect(changes).toEqual([[a, false], [a, true]]);
    // Any final response but 408/503 is alive, even 486 or 500.
    expect(h.isUp(hopKey(hop(5070)))).toBe(true);
    expect((await targetUp.get()).values.find((v) => v.labels.target === a)?.value).toBe(1);
    const snap = h.snapshot().find((s) => s.target === a)!;
    expect(snap).toMatchObject({ side: 'carrier-a', uri: 'sip:x.test', up: true, last_status: 200 });
    // A failed lookup forgets nothing; a hop the side no longer has is forgotten after
    // FORGET_AFTER_ROUNDS complete rounds without it.
    const all = targets;
    targets = [];
    complete = false;
    await h.probeSide(side);
    expect(h.snapshot()).toHaveLength(2);
    targets = all.slice(0, 1);
    complete = true;
    for (let i = 1; i < FORGET_AFTER_ROUNDS; i++) { await h.probeSide(side); expect(h.snapshot()).toHaveLength(2); }
    await h.probeSide(side);
    expect(h.snapshot().map((s) => s.target)).toEqual([a]);
    expect(h.isUp('udp:203.0.113.1:5060')).toBe(true);
    h.stop();
  });

  it('a dead hop missing from one complete round stays down (it does not come back up)', async () => {
    const h = new TargetHealth(async (t) => (t.hop.port === 5060 ? 'timeout' : 200));
    const both: ProbeTarget[] = [5060, 5070].map((p) => ({ uri: 'sip:x.test', hop: hop(p), side: 'peer' }));
    let targets = both;
    const side: HealthSide = { side: 'carrier-a', health, hops: async () => ({ targets, complete: true }) };
    const dead = hopKey(hop(5060));
    await h.probeSide(side);
    await h.probeSide(side);
    expect(h.isUp(dead)).toBe(false);
    const since = h.snapshot().find((s) => s.target === dead)!.since;
    // One short answer lists only the live hop, the next lists both again.
    targets = both.slice(1);
    await h.probeSide(side);
    expect(h.isUp(dead)).toBe(false);
    targets = both;
    await h.probeSide(side);
    expect(h.isUp(dead)).toBe(false);
    expect(h.snapshot().find((s) => s.target === dead)).toMatchObject({ up: false, since });
    h.stop();
  });

  it('sync starts one loop per probing side and stops those no longer probing', async () => {
    let probes = 0;
    const h = new TargetHealth(async () => { probes++; return 200; });
    const side = (name: string, probe: boolean): HealthSide => ({ side: name, health: { ...health, probe, interval_ms: 50 }, hops: async () => ({ targets: [{ uri: 'sip:x.test', hop: hop(5060), side: 'core' as const }], complete: true }) });
    h.sync([side('core', true), side('carrier-b', false)]);
    await new Promise((r) => setTimeout(r, 130));
    const first = probes;
    expect(first).toBeGreaterThanOrEqual(2);
    h.sync([side('core', false)]);
    await new Promise((r) => setTimeout(r, 120));
    expect(probes - first).toBeLessThanOrEqual(1);
    expect(h.snapshot()).toEqual([]);
    h.stop();
  });
});

describe('target health shared between processes (workers)', () => {
  it('applyRemote: a hop the node\'s prober saw down is down here until it says up; local probes win', () => {
    const h = new TargetHealth(async () => 200);
    expect(h.isUp('udp:192.0.2.1:5060')).toBe(true);
    h.applyRemote('udp:192.0.2.1:5060', false);
    expect(h.isUp('udp:192.0.2.1:5060')).toBe(false);
    expect(h.isUp('udp:192.0.2.2:5060')).toBe(true);
    h.applyRemote('udp:192.0.2.1:5060', true);
    expect(h.isUp('udp:192.0.2.1:5060')).toBe(true);
    h.stop();
  });

  it('onChange hears every change of this process\'s probes, and "up" when a down hop is forgotten', async () => {
    let answer: number | 'timeout' = 'timeout';
    const h = new TargetHealth(async () => answer);
    const heard: [string, boolean][] = [];
    h.onChange((k, up) => heard.push([k, up]));
    const side = (probe: boolean): HealthSide => ({
      side: 'core', health: { probe, interval_ms: 10, timeout_ms: 5, failure_threshold: 1, success_threshold: 1 },
      hops: async () => ({ targets: [{ uri: 'sip:192.0.2.9', side: 'core', hop: { transport: 'udp', address: '192.0.2.9', port: 5060 } as ProbeTarget['hop'] }], complete: true }),
    });
    h.sync([side(true)]);
    await new Promise((r) => setTimeout(r, 60));
    expect(heard).toContainEqual(['udp:192.0.2.9:5060', false]);
    // The side stops probing: the down hop is forgotten and counts as up, and listeners hear it.
    h.sync([side(false)]);
    expect(heard.at(-1)).toEqual(['udp:192.0.2.9:5060', true]);
    expect(h.isUp('udp:192.0.2.9:5060')).toBe(true);
    answer = 200;
    h.stop();
  });
});
