// The policy's way to a worker (src/app/workers/policy-pipe.ts): frames written by PolicyText,
// read back by PolicyFrames however the socket cuts them, over a real socket pair as well.
import { describe, it, expect, vi, afterEach } from 'vitest';
import { createServer, connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { PolicyFrames, PolicyText } from '../../../src/app/workers/policy-pipe.js';

/** What PolicyText writes, as one Buffer. */
function bytesOf(t: PolicyText): Buffer {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (d: Buffer) => parts.push(d));
  t.writeTo(out);
  return Buffer.concat(parts);
}

afterEach(() => { vi.useRealTimers(); });

describe('policy frames', () => {
  const texts = ['{"a":1}', JSON.stringify({ routes: Array.from({ length: 3000 }, (_, i) => ({ to: 'core', called_prefix: `+1555${i}`, note: 'é—ü' })) }), ''];

  it('reads every frame back whole, at any cut of the stream (header split, several frames in one read)', async () => {
    const stream = Buffer.concat(texts.map((t, i) => bytesOf(new PolicyText(i + 1, t))));
    for (const cut of [1, 3, 7, 8, 9, 1000, 65_536, stream.length]) {
      const f = new PolicyFrames();
      for (let at = 0; at < stream.length; at += cut) f.push(stream.subarray(at, at + cut));
      // Asked in order, each is there (the older ones are forgotten as newer ones are asked for).
      for (let i = 0; i < texts.length; i++) expect(await f.take(i + 1), `cut ${cut}, frame ${i + 1}`).toBe(texts[i]);
    }
  });

  it('answers an ask made before its frame arrives', async () => {
    const f = new PolicyFrames();
    const asked = f.take(7);
    const b = bytesOf(new PolicyText(7, texts[1]!));
    f.push(b.subarray(0, 5));
    f.push(b.subarray(5));
    expect(await asked).toBe(texts[1]);
  });

  it('answers the same frame asked for twice (one policy handed over twice), before or after it arrives', async () => {
    vi.useFakeTimers();
    const f = new PolicyFrames(1000);
    const b = bytesOf(new PolicyText(3, '{"v":3}'));
    const both = [f.take(3), f.take(3)];
    f.push(b);
    expect(await Promise.all(both)).toEqual(['{"v":3}', '{"v":3}']);
    // The second hand-over's copy arrives after its ask, which waits for it.
    const again = f.take(3);
    f.push(b);
    expect(await again).toBe('{"v":3}');
    // No timer of an answered ask is left to fire.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('forgets older frames once a newer one is asked for, and keeps only a few unasked', async () => {
    vi.useFakeTimers();
    const f = new PolicyFrames(1000);
    for (let seq = 1; seq <= 6; seq++) f.push(bytesOf(new PolicyText(seq, `{"v":${seq}}`)));
    // 1 and 2 were dropped as the sixth arrived (four kept); 3 is still there.
    const one = f.take(1).catch((e: Error) => e.message);
    vi.advanceTimersByTime(1000);
    expect(await one).toMatch(/did not arrive from the primary within 1000 ms/);
    expect(await f.take(5)).toBe('{"v":5}');
    const three = f.take(3).catch((e: Error) => e.message);
    vi.advanceTimersByTime(1000);
    expect(await three).toMatch(/frame 3/);
    expect(await f.take(6)).toBe('{"v":6}');
  });

  it('tells a waiting ask when the stream ends or is corrupt', async () => {
    const f = new PolicyFrames();
    const asked = f.take(1);
    f.fail(new Error('policy stream closed by the primary'));
    await expect(asked).rejects.toThrow('policy stream closed by the primary');
    await expect(f.take(2)).rejects.toThrow('policy stream closed by the primary');

    const g = new PolicyFrames();
    const waiting = g.take(1);
    const bad = Buffer.alloc(8);
    bad.writeUInt32BE(1, 0);
    bad.writeUInt32BE(0xffff_ffff, 4);
    g.push(bad);
    await expect(waiting).rejects.toThrow(/a frame of 4294967295 bytes \(the stream is corrupt\)/);
  });

  it('carries a carrier-size policy over a real socket, written to two readers from one encoding', async () => {
    const big = JSON.stringify({ routes: Array.from({ length: 11_000 }, (_, i) => ({ from: 'peers', to: 'core', called_prefix: `+1555${String(i).padStart(5, '0')}` })) });
    const got: Promise<string>[] = [];
    const server = createServer((s: Socket) => {
      const f = new PolicyFrames();
      s.on('data', (d: Buffer) => f.push(d));
      got.push(f.take(42));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const clients = await Promise.all([0, 1].map(() => new Promise<Socket>((r) => { const c = connect(port, '127.0.0.1', () => r(c)); })));
    const text = new PolicyText(42, big);
    for (const c of clients) text.writeTo(c);
    for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toHaveLength(2);
    for (const g of await Promise.all(got)) expect(g).toBe(big);
    for (const c of clients) c.destroy();
    await new Promise((r) => server.close(r));
  });

  it('writes nothing to a socket that is already gone', () => {
    const out = new PassThrough();
    out.destroy();
    expect(() => new PolicyText(1, '{}').writeTo(out)).not.toThrow();
    expect(() => new PolicyText(1, '{}').writeTo(null)).not.toThrow();
  });
});
