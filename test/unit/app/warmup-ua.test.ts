// The warm-up's caller and callee (src/app/warmup/ua.ts) on real loopback sockets, facing each
// other with nothing between: every call goes INVITE, 180, 200, ACK, BYE, 200; a caller facing
// a port where nothing answers counts its calls failed and still ends by the deadline.
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { WarmupCallee, WarmupCaller } from '../../../src/app/warmup/ua.js';
import { warmupPolicy } from '../../../src/app/warmup/index.js';
import { PolicySchema } from '../../../src/policy/schema.js';

const opened: { close(): void }[] = [];
afterEach(() => { for (const o of opened.splice(0)) o.close(); });

describe('warm-up caller and callee', () => {
  it('complete every call placed, at the rate asked', async () => {
    const callee = await WarmupCallee.open();
    opened.push(callee);
    const caller = await WarmupCaller.open(callee.address);
    opened.push(caller);
    const t0 = Date.now();
    const r = await caller.run(40, 200, Date.now() + 5000);
    expect(r).toMatchObject({ placed: 40, completed: 40, failed: 0 });
    // 40 calls at 200/s take ≈ 200 ms: paced, not sent at once, and well before the deadline.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(r.ms).toBeLessThan(3000);
  });

  it('counts calls nobody answers as failed and stops at the deadline', async () => {
    const sink = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    const port = sink.address().port;
    opened.push({ close: () => sink.close() });
    let invites = 0;
    sink.on('message', (b) => { if (b.toString('latin1').startsWith('INVITE ')) invites++; });
    const caller = await WarmupCaller.open({ address: '127.0.0.1', port });
    opened.push(caller);
    const t0 = Date.now();
    const r = await caller.run(1000, 100, Date.now() + 600);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(1500);
    expect(r.completed).toBe(0);
    expect(r.placed).toBeGreaterThan(0);
    expect(r.placed).toBeLessThan(1000);
    expect(r.failed).toBe(r.placed);
    expect(invites).toBe(r.placed);
  });

  it('has a policy of its own that the schema accepts: one peer, media not anchored', () => {
    const node = PolicySchema.parse({ listen: [{ name: 'p', side: 'peer', transport: 'udp', address: '127.0.0.1', port: 5060 }, { name: 'c', side: 'core', transport: 'udp', address: '127.0.0.1', port: 5080 }], core: { targets: ['sip:10.0.0.1'] }, log: { level: 'error' } });
    const p = warmupPolicy(node, { address: '127.0.0.1', port: 40001 }, { address: '127.0.0.1', port: 40002 }, { address: '127.0.0.1', port: 40003 });
    expect(p.listen.map((l) => `${l.side}/${l.port}`)).toEqual(['peer/40001', 'core/40002']);
    expect(p.peers.map((x) => x.id)).toEqual(['warm-up']);
    expect(p.core.targets).toEqual(['sip:127.0.0.1:40003']);
    expect(p.media.anchoring).toBe(false);
    expect(p.log.level).toBe('error');
    expect(p.cdr).toBeUndefined();
  });
});
