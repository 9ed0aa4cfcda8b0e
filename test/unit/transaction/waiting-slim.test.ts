// What a transaction that only absorbs retransmissions keeps (issue #18.5): no per-instance
// fields for what is constant per class or readable from the key, one shared target per peer,
// an ICT's single 2xx To-tag as a string; and the RFC 3261/6026 behaviour of those states is
// unchanged (fake clock, the transaction tests' harness).
import { describe, expect, it } from 'vitest';
import { MAX_2XX_FORKS, SharedTargets, buildResponse, type ServerTransaction } from '../../../src/engine/transaction/index.js';
import type { InboundPacket, SendTarget } from '../../../src/engine/transport/types.js';
import { UDP_PEER, eventsOf, from, harness, request, response, sentTimes } from './support.js';

const peer = () => from('udp', UDP_PEER.address, UDP_PEER.port);

describe('waiting transactions keep no fields for constants', () => {
  it('NIST Completed: kind, method and branch are read, not stored; Timer J still answers retransmissions and ends it', () => {
    const hs = harness();
    const req = request('BYE', { branch: 'z9hG4bKslim1', sentBy: '192.0.2.10:5060' });
    hs.layer.receiveRequest(req, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    expect(txn.respond(buildResponse(req, 200, 'OK'))).toBe(true);
    expect(txn.state).toBe('Completed');
    expect(txn.kind).toBe('nist');
    expect(txn.method).toBe('BYE');
    expect(txn.branch).toBe('z9hG4bKslim1');
    const fields = Object.keys(txn);
    for (const f of ['kind', 'branch', 'expiry']) expect(fields).not.toContain(f);
    expect(hs.layer.expiryList(32_000).size).toBe(1);
    hs.layer.receiveRequest(request('BYE', { branch: 'z9hG4bKslim1' }), peer());
    hs.clock.advance(10_000);
    hs.layer.receiveRequest(request('BYE', { branch: 'z9hG4bKslim1' }), peer());
    expect(sentTimes(hs, 'SIP/2.0 200')).toEqual([0, 0, 10_000]);
    hs.clock.advance(21_999);
    expect(txn.state).toBe('Completed');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.serverCount).toBe(0);
    expect(hs.layer.expiryList(32_000).size).toBe(0);
  });

  it('IST Accepted: INVITE retransmissions absorbed, the ACK passed to the TU with the transaction, 2xx from the TU still sent (RFC 6026 §7.1)', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKslim2' });
    hs.layer.receiveRequest(inv, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    const ok = buildResponse(inv, 200, 'OK', { toTag: 'uas1' });
    txn.respond(ok);
    expect(txn.state).toBe('Accepted');
    expect(txn.kind).toBe('ist');
    expect(txn.method).toBe('INVITE');
    expect(Object.keys(txn)).not.toContain('method');
    expect(hs.layer.receiveRequest(request('INVITE', { branch: 'z9hG4bKslim2' }), peer())).toBe('absorbed');
    expect(txn.respond(ok)).toBe(true); // the core's 2xx retransmission (§13.3.1.4)
    expect(sentTimes(hs, 'SIP/2.0 200')).toEqual([0, 0]);
    expect(hs.layer.receiveRequest(request('ACK', { branch: 'z9hG4bKslim2', toTag: 'uas1', cseqMethod: 'ACK' }), peer())).toBe('ack');
    expect(eventsOf(hs, 'ack')[0]!.invite).toBe(txn);
    hs.clock.advance(32_000);
    expect(txn.state).toBe('Terminated');
  });

  it('a waiting transaction ended early leaves its expiry list at once', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKslim3' });
    hs.layer.receiveRequest(req, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    txn.respond(buildResponse(req, 200, 'OK'));
    expect(hs.layer.expiryList(32_000).size).toBe(1);
    txn.terminate();
    expect(hs.layer.expiryList(32_000).size).toBe(0);
    expect(eventsOf(hs, 'terminated').map((e) => e.at)).toEqual([0]);
    hs.clock.advance(40_000);
    expect(eventsOf(hs, 'terminated')).toHaveLength(1);
  });

  it('an RFC 2543 request (no magic cookie): the branch is still read from the key', () => {
    const hs = harness();
    hs.layer.receiveRequest(request('OPTIONS', { branch: 'old-style-7' }), peer());
    hs.layer.receiveRequest(request('MESSAGE', { branch: '', callId: 'c2' }), peer());
    const [a, b] = eventsOf(hs, 'request').map((e) => e.txn as ServerTransaction);
    expect(a!.branch).toBe('old-style-7');
    expect(b!.branch).toBe('');
  });

  it('ICT Accepted: one 2xx To-tag, then a second fork; retransmissions of each are passed to the TU, not delivered (RFC 6026 §8.4)', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKslim4' });
    const txn = hs.layer.sendRequest(inv, UDP_PEER);
    const a = response(inv, 200, 'OK', { toTag: 'fork-a' });
    const b = response(inv, 200, 'OK', { toTag: 'fork-b' });
    expect(hs.layer.receive(a, peer())).toBe('delivered');
    expect(hs.layer.receive(a, peer())).toBe('absorbed');
    expect(hs.layer.receive(b, peer())).toBe('delivered');
    expect(hs.layer.receive(b, peer())).toBe('absorbed');
    expect(hs.layer.receive(a, peer())).toBe('absorbed');
    expect(hs.layer.receive(response(inv, 200, 'OK', { toTag: 'fork-c' }), peer())).toBe('delivered');
    expect(eventsOf(hs, 'response')).toHaveLength(3);
    expect(eventsOf(hs, 'retransmitted2xx')).toHaveLength(3);
    expect(txn.state).toBe('Accepted');
    expect(Object.keys(txn)).not.toContain('kind');
  });

  it('ICT Accepted: at most MAX_2XX_FORKS forks are delivered; a 2xx with yet another To-tag is dropped and counted, copies of the accepted ones still reach the TU', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKforks' });
    const txn = hs.layer.sendRequest(inv, UDP_PEER);
    const fork = (i: number) => response(inv, 200, 'OK', { toTag: `fork-${i}` });
    for (let i = 0; i < MAX_2XX_FORKS; i++) expect(hs.layer.receive(fork(i), peer())).toBe('delivered');
    expect(hs.layer.receive(fork(MAX_2XX_FORKS), peer())).toBe('absorbed');
    expect(hs.layer.receive(fork(MAX_2XX_FORKS + 1), peer())).toBe('absorbed');
    expect(eventsOf(hs, 'response')).toHaveLength(MAX_2XX_FORKS);
    expect(hs.layer.counters.excessForks).toBe(2);
    // Neither is a retransmission: the TU is not asked to re-send an ACK for them.
    expect(eventsOf(hs, 'retransmitted2xx')).toHaveLength(0);
    expect(hs.layer.receive(fork(3), peer())).toBe('absorbed');
    expect(eventsOf(hs, 'retransmitted2xx')).toHaveLength(1);
    expect(hs.layer.counters.excessForks).toBe(2);
    expect(txn.state).toBe('Accepted');
  });
});

describe('SharedTargets: one SendTarget per peer', () => {
  const local = { protocol: 'udp' as const, address: '127.0.0.1', port: 5060 };
  const pkt = (address: string, port: number, l = local, connectionId?: string): InboundPacket =>
    ({ data: Buffer.alloc(0), source: { protocol: connectionId ? 'tcp' : 'udp', address, port }, local: l, ...(connectionId ? { connectionId } : {}) });

  it('responses to the same peer on the same listener share one target; another port, listener or connection gets its own', () => {
    const t = new SharedTargets();
    const first = t.reply(pkt('198.51.100.7', 5080));
    expect(first).toEqual({ protocol: 'udp', address: '198.51.100.7', port: 5080, connectionId: undefined, local });
    // A fresh address string per datagram, as the UDP socket gives: still the same target.
    expect(t.reply(pkt(['198', '51', '100', '7'].join('.'), 5080))).toBe(first);
    expect(t.reply(pkt('198.51.100.7', 5081))).not.toBe(first);
    const other = { ...local, port: 5070 };
    const viaOther = t.reply(pkt('198.51.100.7', 5080, other));
    expect(viaOther.local).toBe(other);
    const tcp = t.reply(pkt('198.51.100.7', 40000, local, 'c1'));
    expect(tcp.connectionId).toBe('c1');
    expect(t.reply(pkt('198.51.100.7', 40000, local, 'c1'))).toBe(tcp);
  });

  it('request targets: an equal one is shared, one with TLS checks of its own never is', () => {
    const t = new SharedTargets();
    const a: SendTarget = { protocol: 'udp', address: '203.0.113.9', port: 5060, local };
    expect(t.share(a)).toBe(a);
    expect(t.share({ protocol: 'udp', address: '203.0.113.9', port: 5060, local })).toBe(a);
    expect(t.share({ protocol: 'udp', address: '203.0.113.9', port: 5060 })).not.toBe(a);
    const tls: SendTarget = { protocol: 'tls', address: '203.0.113.9', port: 5061, serverName: 'peer.example' };
    expect(t.share(tls)).toBe(tls);
    expect(t.share({ ...tls })).not.toBe(tls);
  });

  it('bounded: a flood of sources starts the table over instead of growing it', () => {
    const t = new SharedTargets();
    const first = t.reply(pkt('10.0.0.1', 1));
    for (let i = 2; i <= 5000; i++) t.reply(pkt('10.0.0.1', i));
    expect(t.reply(pkt('10.0.0.1', 1))).not.toBe(first);
    expect(t.size).toBeLessThanOrEqual(4096);
  });

  it('client transactions to one peer share their target', () => {
    const hs = harness();
    const x = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKsh1' }), { ...UDP_PEER });
    const y = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKsh2' }), { ...UDP_PEER });
    expect(y.target).toBe(x.target);
    expect(hs.layer.receive(response(request('OPTIONS', { branch: 'z9hG4bKsh2' }), 200, 'OK'), peer())).toBe('delivered');
  });
});
