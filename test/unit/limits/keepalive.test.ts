// The limits stage keeps its node's session slots alive at the policy's ttl from the first
// call on (fake clock, MemoryStore): start() runs before any policy ttl is known.
import { describe, it, expect, vi, afterEach } from 'vitest';
import { MemoryStore } from '../../../src/store/memory.js';
import { Limits } from '../../../src/sbc/limits/index.js';

afterEach(() => { vi.useRealTimers(); });

describe('limits keepalive', () => {
  it('a policy ttl shorter than the default re-arms the keepalive: live slots never expire', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const store = new MemoryStore();
    const limits = new Limits({ store, nodeId: 'n1' }); // default ttl 30 s
    await limits.start();
    const a = await limits.admit('p', { peer: { sessions: 5 }, global: { session_ttl_s: 3 } });
    expect(a.admit).toBe(true);
    for (let s = 0; s < 12; s++) {
      await vi.advanceTimersByTimeAsync(1000);
      expect(await store.count('peer:p')).toBe(1);
    }
    // Released: nothing keeps it, and nothing brings it back.
    if (a.admit) await a.release();
    await vi.advanceTimersByTimeAsync(4000);
    expect(await store.count('peer:p')).toBe(0);
    limits.stop();
    await store.close();
  });
});
