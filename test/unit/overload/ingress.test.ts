// The priority ingress (overload/ingress.ts) with a fake clock and a turn scheduler the test runs
// by hand; then in front of the real UA core and gate (refusals, retransmissions, RFC 3261 §17.2.1).
import { describe, expect, it } from 'vitest';
import type { InboundPacket } from '../../../src/engine/transport/types.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { gatedCore, LOCAL, PEER } from '../../helpers/gated-core.js';
import { PriorityIngress, type IngressOptions } from '../../../src/engine/overload/index.js';

const INVITE = (id: string, branch = id) => `INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${branch}\r\nMax-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${id}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n`;
const BYE = (id: string) => `BYE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-bye-${id}\r\nMax-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=t1\r\nCall-ID: ${id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`;

/** A scheduler whose turns the test runs: what setImmediate would run after a read. */
function turns() {
  const q: (() => void)[] = [];
  return { schedule: (fn: () => void) => { q.push(fn); }, run: () => { const fns = q.splice(0); for (const f of fns) f(); return fns.length; }, get waiting() { return q.length; } };
}

function ingressAlone(opts: Partial<IngressOptions> = {}) {
  const clock = new ManualClock();
  const t = turns();
  const out: { id: string; overdue: boolean }[] = [];
  const ing = new PriorityIngress(clock, opts, t.schedule);
  ing.attach((p: InboundPacket) => out.push({ id: /Call-ID: (\S+)/.exec(p.data.toString())![1]!, overdue: p.overdue === true }));
  const offer = (text: string) => {
    const held = ing.hold(Buffer.from(text), PEER.address, PEER.port, LOCAL);
    if (!held) out.push({ id: /Call-ID: (\S+)/.exec(text)![1]!, overdue: false });
    return held;
  };
  return { clock, t, out, ing, offer };
}

describe('priority ingress', () => {
  it('processes in-dialog requests at once and new INVITEs one slice per turn, oldest first', () => {
    const h = ingressAlone({ slice: 2, sojournMs: 40 });
    expect(h.offer(INVITE('i1'))).toBe(true);
    expect(h.offer(INVITE('i2'))).toBe(true);
    expect(h.offer(INVITE('i3'))).toBe(true);
    expect(h.offer(BYE('b1'))).toBe(false);
    expect(h.out.map((o) => o.id)).toEqual(['b1']); // the BYE went ahead of three INVITEs read before it
    expect(h.t.run()).toBe(1);
    expect(h.out.map((o) => o.id)).toEqual(['b1', 'i1', 'i2']);
    h.offer(BYE('b2'));
    h.t.run();
    expect(h.out.map((o) => o.id)).toEqual(['b1', 'i1', 'i2', 'b2', 'i3']);
    expect(h.t.waiting).toBe(0);
    expect(h.out.every((o) => !o.overdue)).toBe(true);
  });

  it('with no interval, an INVITE that waited past the sojourn target is released overdue; one within it is not', () => {
    const h = ingressAlone({ slice: 1, sojournMs: 40, intervalMs: 0 });
    h.offer(INVITE('old'));
    h.clock.advance(30);
    h.offer(INVITE('young'));
    h.clock.advance(11); // old waited 41 ms, young 11
    h.t.run();
    h.t.run();
    expect(h.out).toEqual([{ id: 'old', overdue: true }, { id: 'young', overdue: false }]);
    expect(h.ing.counts).toMatchObject({ held: 2, overdue: 1, overflow: 0, depth: 0, maxDepth: 2 });
  });

  it('a lone stall shorter than the interval refuses nothing; a queue standing past it refuses what is late (CoDel)', () => {
    const h = ingressAlone({ slice: 1, sojournMs: 40, intervalMs: 100 });
    // A 90 ms stall: three INVITEs wait 90 ms, then the loop runs freely again.
    for (const id of ['s1', 's2', 's3']) h.offer(INVITE(id));
    h.clock.advance(90);
    h.t.run(); h.t.run(); h.t.run();
    expect(h.out.map((o) => o.overdue)).toEqual([false, false, false]);
    // A standing queue: every turn comes 60 ms late, so each INVITE released has waited > 40 ms.
    h.out.length = 0;
    for (let i = 0; i < 6; i++) h.offer(INVITE(`q${i}`));
    for (let i = 0; i < 6; i++) { h.clock.advance(60); h.t.run(); }
    // Above the target since the first release (t+60): refusing from t+160 on (100 ms later).
    expect(h.out.map((o) => o.overdue)).toEqual([false, false, true, true, true, true]);
    // One that comes out within the target ends the refusing.
    h.out.length = 0;
    h.offer(INVITE('fresh'));
    h.clock.advance(5);
    h.t.run();
    h.offer(INVITE('next'));
    h.clock.advance(60);
    h.t.run();
    expect(h.out).toEqual([{ id: 'fresh', overdue: false }, { id: 'next', overdue: false }]);
  });

  it('a full ring refuses its oldest at once and keeps the newest', () => {
    const h = ingressAlone({ maxQueue: 2, slice: 10 });
    h.offer(INVITE('a'));
    h.offer(INVITE('b'));
    h.offer(INVITE('c'));
    expect(h.out).toEqual([{ id: 'a', overdue: true }]);
    h.t.run();
    expect(h.out.slice(1)).toEqual([{ id: 'b', overdue: false }, { id: 'c', overdue: false }]);
    expect(h.ing.counts).toMatchObject({ overflow: 1, overdue: 1 });
  });

  it('detach releases what it holds, unmarked, and holds nothing more', () => {
    const h = ingressAlone();
    h.offer(INVITE('a'));
    h.clock.advance(500);
    h.ing.detach();
    expect(h.out).toEqual([{ id: 'a', overdue: false }]);
    expect(h.ing.hold(Buffer.from(INVITE('b')), PEER.address, PEER.port, LOCAL)).toBe(false);
  });

  it('refuses bad settings', () => {
    expect(() => new PriorityIngress(new ManualClock(), { sojournMs: 0 })).toThrow(/sojournMs/);
    expect(() => new PriorityIngress(new ManualClock(), { maxQueue: 1.5 })).toThrow(/maxQueue/);
    expect(() => new PriorityIngress(new ManualClock(), { slice: 0 })).toThrow(/slice/);
    expect(() => new PriorityIngress(new ManualClock(), { intervalMs: -1 })).toThrow(/intervalMs/);
  });
});

describe('priority ingress in front of the UA core and the gate', () => {
  function harness(opts: Partial<IngressOptions> = {}, tryingMs = 0) {
    const { clock, sent, frames, core, gate } = gatedCore({ probeMs: 20, intervalMs: 100 }, tryingMs, { transactions: () => 0, dialogs: () => 0 });
    const t = turns();
    const ing = new PriorityIngress(clock, { sojournMs: 40, intervalMs: 0, ...opts }, t.schedule);
    ing.attach((p) => core.onPacket(p));
    const read = (text: string) => {
      const data = Buffer.from(text);
      if (!ing.hold(data, PEER.address, PEER.port, LOCAL)) core.onPacket({ data, source: PEER, local: LOCAL });
    };
    return { clock, t, sent, frames, gate, ing, read };
  }
  const status = (s: string) => s.split('\r\n')[0];

  it('an overdue INVITE gets the gate\'s 503 with Retry-After (queue_sojourn) and never reaches the app', () => {
    const h = harness();
    h.read(INVITE('late'));
    h.clock.advance(41);
    h.t.run();
    expect(h.frames).toHaveLength(0);
    expect(h.sent.map(status)).toEqual(['SIP/2.0 503 Service Unavailable']);
    expect(h.sent[0]).toMatch(/\r\nRetry-After: 2\r\n/);
    expect(h.gate.totals().queue_sojourn).toBe(1);
    // The refusal left no transaction (RFC 3261 §8.2.7): its retransmission, overdue too, is a
    // new request, refused again (a fresh To tag) and counted again.
    h.read(INVITE('late'));
    h.clock.advance(50);
    h.t.run();
    expect(h.sent.map(status)).toEqual(['SIP/2.0 503 Service Unavailable', 'SIP/2.0 503 Service Unavailable']);
    expect(h.sent[1]!.replace(/;tag=\w+\r\nCall-ID/, '')).toBe(h.sent[0]!.replace(/;tag=\w+\r\nCall-ID/, ''));
    expect(h.gate.totals().queue_sojourn).toBe(2);
  });

  it('a retransmission of an admitted INVITE that waits past the target still reaches its transaction, not the gate', () => {
    // A deferred 100 Trying (200 ms): the transaction sends it at once for a retransmitted INVITE.
    const h = harness({}, 200);
    h.read(INVITE('ok'));
    h.t.run();
    expect(h.frames).toHaveLength(1); // admitted: the app has it, no response yet
    expect(h.sent).toHaveLength(0);
    h.read(INVITE('ok'));
    h.clock.advance(100);
    h.t.run();
    // Released overdue, yet the transaction layer matched it (§17.2.1): its 100 now, no 503,
    // nothing counted, no second frame.
    expect(h.sent.map(status)).toEqual(['SIP/2.0 100 Trying']);
    expect(h.gate.totals().queue_sojourn).toBe(0);
    expect(h.frames).toHaveLength(1);
  });
});
