// Wire ids (src/engine/wire/leaders.ts newId): a per-process random prefix and a counter, shaped
// like the UUIDs drachtio-server sends (the golden traces mask ids by that shape).
import { describe, expect, it, vi } from 'vitest';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('wire ids', () => {
  it('are UUID-shaped (version 4, RFC 4122 variant), all different, one prefix per process', async () => {
    const { newId } = await import('../../../src/engine/wire/leaders.js');
    const ids = Array.from({ length: 100_000 }, () => newId());
    expect(ids.every((id) => UUID_V4.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids.map((id) => id.slice(0, 24))).size).toBe(1);
    // Consecutive: the last 12 hex digits count up.
    expect(parseInt(ids[99_999]!.slice(24), 16) - parseInt(ids[0]!.slice(24), 16)).toBe(99_999);
  });

  it('another process (a fresh module: a restart, a worker) takes another random prefix', async () => {
    const a = (await import('../../../src/engine/wire/leaders.js')).newId();
    vi.resetModules();
    const b = (await import('../../../src/engine/wire/leaders.js')).newId();
    expect(a.slice(0, 24)).not.toBe(b.slice(0, 24));
  });

  it('a Call-ID the engine makes up stays random (RFC 3261 §8.1.1.4), not a counter', async () => {
    const { newCallId } = await import('../../../src/engine/wire/leaders.js');
    const [x, y] = [newCallId(), newCallId()];
    expect(x).toMatch(UUID_V4);
    expect(x.slice(0, 24)).not.toBe(y.slice(0, 24));
  });
});
