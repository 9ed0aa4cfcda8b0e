// Transactions that only absorb retransmissions (NIST Completed, NICT Completed, IST Accepted and
// Confirmed, ICT Accepted and Completed) wait out their window on the layer's expiry lists
// (expiry.ts): one timer per window length, however many wait. Fake clock throughout.
import { describe, expect, it } from 'vitest';
import { ExpiryList, type Expirable } from '../../../src/engine/transaction/expiry.js';
import { buildResponse } from '../../../src/engine/transaction/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../../../src/engine/transaction/index.js';
import { FakeClock, UDP_PEER, eventsOf, from, harness, request, response, sentTimes, type Harness } from './support.js';

const alice = () => from('udp', '192.0.2.10', 5062);
const peerUdp = () => from('udp', UDP_PEER.address, UDP_PEER.port);

class Item implements Expirable {
  terminated = false;
  expiredAt: number | undefined;
  constructor(private readonly clock: FakeClock) {}
  expire(): void { this.expiredAt = this.clock.now(); this.terminated = true; }
}

function lastServerTxn(hs: Harness): ServerTransaction {
  const reqs = eventsOf(hs, 'request');
  return reqs[reqs.length - 1]!.txn as ServerTransaction;
}

describe('ExpiryList', () => {
  it('ends each entry exactly one window after it joined, with one timer for the whole list', () => {
    const clock = new FakeClock();
    const list = new ExpiryList(clock, 1_000);
    const items = [0, 0, 250, 600, 999].map((at) => { clock.advanceTo(at); const it = new Item(clock); list.add(it); return it; });
    expect(clock.pending).toBe(1);
    expect(list.size).toBe(5);
    clock.advanceTo(999);
    expect(items.every((i) => i.expiredAt === undefined)).toBe(true);
    clock.advanceTo(1_000);
    expect(items.map((i) => i.expiredAt)).toEqual([1_000, 1_000, undefined, undefined, undefined]);
    clock.advanceTo(5_000);
    expect(items.map((i) => i.expiredAt)).toEqual([1_000, 1_000, 1_250, 1_600, 1_999]);
    expect(list.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('skips an entry that ended early, and clear() stops the timer without expiring anything', () => {
    const clock = new FakeClock();
    const list = new ExpiryList(clock, 100);
    const a = new Item(clock);
    const b = new Item(clock);
    list.add(a);
    list.add(b);
    a.terminated = true; // e.g. a transport error terminated it
    clock.advance(100);
    expect(a.expiredAt).toBeUndefined();
    expect(b.expiredAt).toBe(100);
    const c = new Item(clock);
    list.add(c);
    list.clear();
    expect(clock.pending).toBe(0);
    clock.advance(1_000);
    expect(c.expiredAt).toBeUndefined();
    expect(list.size).toBe(0);
  });

  it('remove() takes an entry out at once, by the position add() returned, also after compaction', () => {
    const clock = new FakeClock();
    const list = new ExpiryList(clock, 100);
    const first = Array.from({ length: 3_000 }, () => new Item(clock));
    for (const it of first) { list.add(it); clock.advance(1); }
    clock.advance(2_000); // all expired: the arrays start again, positions go on
    const a = new Item(clock);
    const b = new Item(clock);
    const pa = list.add(a);
    const pb = list.add(b);
    expect(pb).toBe(pa + 1);
    expect(pa).toBe(3_000);
    expect(list.size).toBe(2);
    list.remove(pa, a);
    list.remove(pa, b); // not the entry at that position: ignored
    expect(list.size).toBe(1);
    clock.advance(100);
    expect(a.expiredAt).toBeUndefined();
    expect(b.expiredAt).toBe(clock.now());
    expect(list.size).toBe(0);
    list.remove(pb, b); // already expired: ignored
    expect(list.size).toBe(0);
  });

  it('stays exact over many entries joining and leaving (arrays compacted as it goes)', () => {
    const clock = new FakeClock();
    const list = new ExpiryList(clock, 500);
    const items: Item[] = [];
    for (let i = 0; i < 5_000; i++) {
      clock.advance(1);
      const it = new Item(clock);
      items.push(it);
      list.add(it);
    }
    clock.advance(10_000);
    expect(items.every((it, i) => it.expiredAt === i + 1 + 500)).toBe(true);
    expect(clock.pending).toBe(0);
  });
});

describe('absorbing transactions on the expiry lists', () => {
  it('NIST Completed: retransmitted requests re-answered with the final until Timer J, then gone at exactly 64*T1; one timer for all', () => {
    const hs = harness();
    const reqs = ['z9hG4bKj1', 'z9hG4bKj2', 'z9hG4bKj3'].map((branch, i) => {
      hs.clock.advanceTo(i * 100);
      const req = request('OPTIONS', { branch });
      expect(hs.layer.receive(req, alice())).toBe('new');
      expect(lastServerTxn(hs).respond(buildResponse(req, 200, 'OK', { toTag: `t${i}` }))).toBe(true);
      return req;
    });
    expect(hs.layer.serverCount).toBe(3);
    expect(hs.clock.pending).toBe(1);
    hs.clock.advanceTo(31_999);
    expect(hs.layer.receive(reqs[0]!, alice())).toBe('absorbed');
    const resent = hs.sent[hs.sent.length - 1]!;
    expect(resent.text.startsWith('SIP/2.0 200 OK\r\n')).toBe(true);
    expect(resent.text).toContain(';tag=t0');
    expect(resent.target).toMatchObject({ address: '192.0.2.10', port: 5062 });
    expect(hs.layer.counters.requestRetransmissionsAbsorbed).toBe(1);
    hs.clock.advanceTo(32_000);
    expect(hs.layer.serverCount).toBe(2);
    expect(eventsOf(hs, 'terminated').map((e) => e.at)).toEqual([32_000]);
    hs.clock.advanceTo(32_200);
    expect(eventsOf(hs, 'terminated').map((e) => e.at)).toEqual([32_000, 32_100, 32_200]);
    expect(hs.layer.serverCount).toBe(0);
    expect(hs.clock.pending).toBe(0);
    // After Timer J the same request is new again.
    expect(hs.layer.receive(reqs[0]!, alice())).toBe('new');
  });

  it('IST Accepted: INVITE copies absorbed and ACKs passed to the TU with the transaction until Timer L; IST Confirmed until Timer I', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKl1' });
    hs.layer.receive(inv, alice());
    const ist = lastServerTxn(hs) as InviteServerTransaction;
    ist.respond(buildResponse(inv, 200, 'OK', { toTag: 'uas' }));
    expect(ist.state).toBe('Accepted');
    const sent = hs.sent.length;
    expect(hs.layer.receive(inv, alice())).toBe('absorbed');
    expect(hs.sent.length).toBe(sent); // Accepted resends nothing: the 2xx is the core's
    expect(hs.layer.receive(request('ACK', { branch: 'z9hG4bKl1', toTag: 'uas' }), alice())).toBe('ack');
    expect(eventsOf(hs, 'ack')[0]!.invite).toBe(ist);
    // A rejected INVITE, ACKed: Confirmed for T4 (Timer I) on a list of its own.
    hs.clock.advanceTo(1_000);
    const inv2 = request('INVITE', { branch: 'z9hG4bKi2', callId: 'c2' });
    hs.layer.receive(inv2, alice());
    const ist2 = lastServerTxn(hs) as InviteServerTransaction;
    ist2.respond(buildResponse(inv2, 486, 'Busy Here', { toTag: 'b' }));
    expect(hs.layer.receive(request('ACK', { branch: 'z9hG4bKi2', callId: 'c2', toTag: 'b' }), alice())).toBe('absorbed');
    expect(ist2.state).toBe('Confirmed');
    hs.clock.advanceTo(5_999);
    expect(ist2.state).toBe('Confirmed');
    hs.clock.advanceTo(6_000);
    expect(ist2.state).toBe('Terminated');
    hs.clock.advanceTo(31_999);
    expect(ist.state).toBe('Accepted');
    expect(hs.layer.serverCount).toBe(1);
    hs.clock.advanceTo(32_000);
    expect(ist.state).toBe('Terminated');
    expect(hs.layer.serverCount).toBe(0);
    expect(hs.clock.pending).toBe(0);
  });

  it('ICT Accepted and Completed, NICT Completed: 2xx copies to the TU until Timer M, finals re-ACKed until Timer D, Timer K', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKm1', sentBy: '203.0.113.1:5060' });
    const ict = hs.layer.sendRequest(inv, UDP_PEER);
    const ok = response(inv, 200, 'OK', { toTag: 'a' });
    expect(hs.layer.receive(ok, peerUdp())).toBe('delivered');
    const rej = request('INVITE', { branch: 'z9hG4bKd1', sentBy: '203.0.113.1:5060', callId: 'c2' });
    const ict2 = hs.layer.sendRequest(rej, UDP_PEER);
    const busy = response(rej, 486, 'Busy Here', { toTag: 'b' });
    expect(hs.layer.receive(busy, peerUdp())).toBe('delivered');
    const opt = request('OPTIONS', { branch: 'z9hG4bKk1', sentBy: '203.0.113.1:5060', callId: 'c3' });
    const nict = hs.layer.sendRequest(opt, UDP_PEER);
    expect(hs.layer.receive(response(opt, 200, 'OK', { toTag: 'c' }), peerUdp())).toBe('delivered');
    expect(hs.layer.clientCount).toBe(3);
    expect(hs.clock.pending).toBe(2); // 32 s (Timers M and D share it: D = 64*T1 here) and T4
    hs.clock.advanceTo(4_999);
    expect(hs.layer.receive(response(opt, 200, 'OK', { toTag: 'c' }), peerUdp())).toBe('absorbed');
    hs.clock.advanceTo(5_000);
    expect(nict.state).toBe('Terminated');
    hs.clock.advanceTo(31_999);
    expect(hs.layer.receive(ok, peerUdp())).toBe('absorbed');
    expect(eventsOf(hs, 'retransmitted2xx')).toHaveLength(1);
    // A copy from elsewhere is still refused (RFC 6404 §2.3.2.2).
    expect(hs.layer.receive(ok, from('udp', '198.51.100.99', UDP_PEER.port))).toBe('forged');
    expect(hs.layer.receive(busy, peerUdp())).toBe('absorbed');
    expect(sentTimes(hs, 'ACK ')).toEqual([0, 31_999]);
    hs.clock.advanceTo(32_000);
    expect(ict.state).toBe('Terminated');
    expect(ict2.state).toBe('Terminated');
    expect(hs.layer.clientCount).toBe(0);
    expect(hs.clock.pending).toBe(0);
    expect(hs.layer.receive(ok, peerUdp())).toBe('stray');
  });

  it('close() drops the waiting transactions and their lists: no timer left, no TU event', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKc1' });
    hs.layer.receive(req, alice());
    lastServerTxn(hs).respond(buildResponse(req, 200, 'OK'));
    expect(hs.clock.pending).toBe(1);
    hs.layer.close();
    expect(hs.clock.pending).toBe(0);
    hs.clock.advance(40_000);
    expect(eventsOf(hs, 'terminated')).toHaveLength(0);
  });
});
