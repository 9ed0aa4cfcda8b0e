// The rtpengine pool's selection and health bookkeeping, against a UDP port where nothing
// answers (no rtpengine needed: silence is exactly what a dead instance looks like).
import { describe, it, expect, afterEach } from 'vitest';
import { RtpenginePool, RtpengineInstance, NgUnavailable, DOWN_AFTER_FAILURES } from '../../../src/sbc/media/rtpengine.js';
import { freePort } from '../../helpers/procs.js';

const pools: RtpenginePool[] = [];
afterEach(() => { for (const p of pools.splice(0)) p.close(); });

describe('RtpenginePool', () => {
  it('spreads new calls by smooth weighted round robin over healthy instances only', () => {
    const pool = new RtpenginePool([{ address: '127.0.0.1:1', weight: 5 }, { address: '127.0.0.1:2', weight: 1 }, { address: '127.0.0.1:3', weight: 1 }], { timeoutMs: 100, healthIntervalMs: 1000 });
    pools.push(pool);
    expect(pool.candidates()).toEqual([]);
    for (const i of pool.instances) i.healthy = true;
    const firsts = Array.from({ length: 7 }, () => pool.candidates()[0]!.port);
    expect(firsts.filter((p) => p === 1)).toHaveLength(5);
    expect(firsts.filter((p) => p === 2)).toHaveLength(1);
    expect(firsts.filter((p) => p === 3)).toHaveLength(1);
    expect(firsts[0]).toBe(1);
    expect(firsts[1]).not.toBe(firsts[2]); // interleaved, not 5 in a row
    // Every candidate list names each healthy instance once, for failover.
    expect(new Set(pool.candidates().map((i) => i.port)).size).toBe(3);
    pool.instances[0]!.healthy = false;
    expect(pool.candidates().map((i) => i.port).sort()).toEqual([2, 3]);
  });

  it(`takes an instance out of rotation after ${DOWN_AFTER_FAILURES} unanswered commands, not one`, async () => {
    const port = await freePort();
    const pool = new RtpenginePool([{ address: `127.0.0.1:${port}`, weight: 1 }], { timeoutMs: 60, healthIntervalMs: 60_000 });
    pools.push(pool);
    const inst = pool.instances[0]!;
    inst.healthy = true;
    await expect(pool.command(inst, 'query', { 'call-id': 'x' })).rejects.toBeInstanceOf(NgUnavailable);
    expect(inst.healthy).toBe(true);
    await expect(pool.command(inst, 'query', { 'call-id': 'x' })).rejects.toBeInstanceOf(NgUnavailable);
    expect(inst.healthy).toBe(false);
    expect(await pool.check(inst)).toBe(false);
  });

  it('rejects bad addresses', () => {
    expect(() => new RtpengineInstance('nohost', 1)).toThrow(/bad rtpengine address/);
    expect(() => new RtpengineInstance('127.0.0.1:70000', 1)).toThrow(/bad rtpengine address/);
    expect(new RtpengineInstance('[::1]:22222', 1)).toMatchObject({ host: '::1', port: 22222 });
  });
});
