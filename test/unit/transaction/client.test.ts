// RFC 3261 §17.1 client transactions through the TransactionLayer, with a fake clock.
import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/engine/message/parser.js';
import type { SipRequest } from '../../../src/engine/message/types.js';
import { InviteClientTransaction, NonInviteClientTransaction } from '../../../src/engine/transaction/index.js';
import { TCP_PEER, UDP_PEER, eventsOf, from, harness, request, response, sentTimes } from './support.js';

const peerUdp = () => from('udp', UDP_PEER.address, UDP_PEER.port);

function invite(branch = 'z9hG4bKict1', extra: SipRequest['headers'] = []): SipRequest {
  return request('INVITE', { branch, sentBy: '203.0.113.1:5060', extra });
}

describe('INVITE client transaction over UDP', () => {
  it('Timer A retransmits at T1 doubling (no T2 cap); Timer B times out at 64*T1 with a timeout event', () => {
    const hs = harness();
    const txn = hs.layer.sendRequest(invite(), UDP_PEER);
    expect(txn).toBeInstanceOf(InviteClientTransaction);
    expect(txn.state).toBe('Calling');
    hs.clock.advance(31_999);
    expect(sentTimes(hs, 'INVITE ')).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(eventsOf(hs, 'timeout')).toHaveLength(0);
    hs.clock.advance(1);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([32_000]);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.clientCount).toBe(0);
    expect(hs.layer.counters.timeouts).toBe(1);
    expect(hs.layer.counters.retransmissionsSent).toBe(6);
    expect(hs.clock.pending).toBe(0);
  });

  it('a provisional moves Calling → Proceeding: retransmissions and Timer B stop', () => {
    const hs = harness();
    const req = invite();
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    hs.clock.advance(700);
    expect(hs.layer.receive(response(req, 100, 'Trying'), peerUdp())).toBe('delivered');
    expect(txn.state).toBe('Proceeding');
    hs.clock.advance(120_000);
    expect(sentTimes(hs, 'INVITE ')).toEqual([0, 500]);
    expect(eventsOf(hs, 'timeout')).toHaveLength(0);
    expect(hs.layer.receive(response(req, 180, 'Ringing', { toTag: 'a' }), peerUdp())).toBe('delivered');
    expect(eventsOf(hs, 'response').map((e) => e.status)).toEqual([100, 180]);
  });

  it('non-2xx final: ACK generated per §17.1.1.3, response delivered once, retransmissions re-ACKed, Timer D', () => {
    const hs = harness();
    const req = invite('z9hG4bKict2', [{ name: 'route', raw: 'Route', value: '<sip:proxy.example;lr>' }]);
    hs.layer.sendRequest(req, UDP_PEER);
    hs.clock.advance(100);
    const busy = response(req, 486, 'Busy Here', { toTag: 'totag-486' });
    expect(hs.layer.receive(busy, peerUdp())).toBe('delivered');
    const acks = hs.sent.filter((s) => s.text.startsWith('ACK '));
    expect(acks).toHaveLength(1);
    expect(acks[0]!.target).toMatchObject({ protocol: 'udp', address: UDP_PEER.address, port: UDP_PEER.port });
    const parsed = parseMessage(acks[0]!.bytes);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('ACK did not parse');
    const ack = parsed.message;
    const get = (n: string) => ack.headers.filter((f) => f.name === n).map((f) => f.value);
    expect(ack.method).toBe('ACK');
    expect(ack.uri).toBe(req.uri);
    expect(get('via')).toEqual(['SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKict2']);
    expect(get('call-id')).toEqual(['call-1@atlanta.example']);
    expect(get('from')).toEqual(['"Alice" <sip:alice@atlanta.example>;tag=ftag1']);
    expect(get('to')).toEqual(['<sip:bob@biloxi.example>;tag=totag-486']);
    expect(get('cseq')).toEqual(['1 ACK']);
    expect(get('route')).toEqual(['<sip:proxy.example;lr>']);
    expect(get('content-length')).toEqual(['0']);

    // Retransmitted 486: ACKed again, not re-delivered.
    expect(hs.layer.receive(busy, peerUdp())).toBe('absorbed');
    expect(sentTimes(hs, 'ACK ')).toHaveLength(2);
    expect(eventsOf(hs, 'response').map((e) => e.status)).toEqual([486]);
    expect(hs.layer.counters.responseRetransmissionsAbsorbed).toBe(1);

    // Timer D: 32 s after the final (at 100 ms).
    hs.clock.advanceTo(32_099);
    expect(hs.layer.clientCount).toBe(1);
    hs.clock.advance(1);
    expect(hs.layer.clientCount).toBe(0);
    expect(eventsOf(hs, 'terminated').map((e) => e.at)).toEqual([32_100]);
    // No INVITE retransmission after the final.
    expect(sentTimes(hs, 'INVITE ')).toEqual([0]);
  });

  it('2xx: Accepted (RFC 6026) delivers a retransmitted 2xx as retransmitted2xx, a forked 2xx as a response; Timer M', () => {
    const hs = harness();
    const req = invite('z9hG4bKict3');
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    hs.clock.advance(200);
    const ok = response(req, 200, 'OK', { toTag: 'fork-a' });
    expect(hs.layer.receive(ok, peerUdp())).toBe('delivered');
    expect(txn.state).toBe('Accepted');
    expect(sentTimes(hs, 'ACK ')).toEqual([]); // the ACK for a 2xx is the TU's job
    expect(hs.layer.receive(ok, peerUdp())).toBe('absorbed');
    expect(eventsOf(hs, 'retransmitted2xx')).toHaveLength(1);
    expect(hs.layer.receive(response(req, 200, 'OK', { toTag: 'fork-b' }), peerUdp())).toBe('delivered');
    expect(eventsOf(hs, 'response').map((e) => e.status)).toEqual([200, 200]);
    expect(hs.layer.receive(response(req, 180, 'Ringing', { toTag: 'fork-c' }), peerUdp())).toBe('absorbed');
    hs.clock.advanceTo(200 + 31_999);
    expect(txn.state).toBe('Accepted');
    expect(sentTimes(hs, 'INVITE ')).toEqual([0]);
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.receive(ok, peerUdp())).toBe('stray');
  });

  it('reliable provisionals: a retransmission with the same RSeq is absorbed (RFC 3262)', () => {
    const hs = harness();
    const req = invite('z9hG4bKict4');
    hs.layer.sendRequest(req, UDP_PEER);
    const rel = (rseq: string) => response(req, 183, 'Session Progress', { toTag: 't', extra: [{ name: 'rseq', raw: 'RSeq', value: rseq }] });
    expect(hs.layer.receive(rel('1'), peerUdp())).toBe('delivered');
    expect(hs.layer.receive(rel('1'), peerUdp())).toBe('absorbed');
    expect(hs.layer.receive(rel('2'), peerUdp())).toBe('delivered');
    expect(eventsOf(hs, 'response')).toHaveLength(2);
  });

  it('reliable provisionals: the RSeq values kept are bounded (32, oldest first out) and let go with the final answer', () => {
    const hs = harness();
    const req = invite('z9hG4bKict6');
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    const rel = (rseq: number) => response(req, 183, 'Session Progress', { toTag: 't', extra: [{ name: 'rseq', raw: 'RSeq', value: String(rseq) }] });
    for (let i = 1; i <= 40; i++) expect(hs.layer.receive(rel(i), peerUdp())).toBe('delivered');
    const kept = () => (txn as unknown as { rseqs: string[] | undefined }).rseqs;
    expect(kept()).toHaveLength(32);
    expect(hs.layer.receive(rel(40), peerUdp())).toBe('absorbed');
    expect(hs.layer.receive(rel(9), peerUdp())).toBe('absorbed');
    // The oldest went first: its copy is passed up again (and kept again).
    expect(hs.layer.receive(rel(1), peerUdp())).toBe('delivered');
    expect(hs.layer.receive(response(req, 200, 'OK', { toTag: 't' }), peerUdp())).toBe('delivered');
    expect(txn.state).toBe('Accepted');
    expect(kept()).toBeUndefined();
    expect(hs.layer.receive(rel(41), peerUdp())).toBe('absorbed');
  });

  it('configurable T1 scales Timers A and B', () => {
    const hs = harness({ T1: 100 });
    hs.layer.sendRequest(invite('z9hG4bKict5'), UDP_PEER);
    hs.clock.advance(10_000);
    expect(sentTimes(hs, 'INVITE ')).toEqual([0, 100, 300, 700, 1500, 3100, 6300]);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([6_400]);
  });
});

describe('CANCEL of an outgoing INVITE', () => {
  it('layer.cancel: own transaction, same branch, 200 to CANCEL and 487 to INVITE each delivered once, 487 ACKed', () => {
    const hs = harness();
    const req = invite('z9hG4bKcancel1');
    const inv = hs.layer.sendRequest(req, UDP_PEER) as InviteClientTransaction;
    hs.layer.receive(response(req, 180, 'Ringing', { toTag: 'r' }), peerUdp());
    const c = hs.layer.cancel(inv)!;
    expect(c).toBeInstanceOf(NonInviteClientTransaction);
    expect(c.branch).toBe(inv.branch);
    const cancelSent = hs.sent.filter((s) => s.text.startsWith('CANCEL '));
    expect(cancelSent).toHaveLength(1);
    expect(cancelSent[0]!.text).toContain('CSeq: 1 CANCEL\r\n');
    expect(hs.layer.receive(response(c.request, 200, 'OK', { toTag: 'r' }), peerUdp())).toBe('delivered');
    expect(hs.layer.receive(response(req, 487, 'Request Terminated', { toTag: 'r' }), peerUdp())).toBe('delivered');
    expect(eventsOf(hs, 'response').map((e) => `${e.txn.method} ${e.status}`)).toEqual(['INVITE 180', 'CANCEL 200', 'INVITE 487']);
    expect(sentTimes(hs, 'ACK ')).toHaveLength(1);
    expect(inv.state).toBe('Completed');
    expect(hs.layer.cancel(inv)).toBeUndefined(); // nothing left to cancel
  });
});

describe('INVITE client transaction over TCP (reliable)', () => {
  it('no Timer A; Timer B still 64*T1', () => {
    const hs = harness();
    hs.layer.sendRequest(invite('z9hG4bKtcp1'), TCP_PEER);
    hs.clock.advance(40_000);
    expect(sentTimes(hs, 'INVITE ')).toEqual([0]);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([32_000]);
  });

  it('non-2xx: ACK on the same connection, then Terminated at once (Timer D = 0)', () => {
    const hs = harness();
    hs.sendResult = () => ({ ok: true, local: { protocol: 'tcp', address: '127.0.0.1', port: 40000 }, connectionId: 'c-7', bytes: 1 });
    const req = invite('z9hG4bKtcp2');
    const txn = hs.layer.sendRequest(req, TCP_PEER);
    expect(txn.connectionId).toBe('c-7');
    expect(hs.layer.receive(response(req, 603, 'Decline', { toTag: 'x' }), from('tcp', TCP_PEER.address, TCP_PEER.port, 'c-7'))).toBe('delivered');
    const ack = hs.sent.find((s) => s.text.startsWith('ACK '));
    expect(ack?.target.connectionId).toBe('c-7');
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.clientCount).toBe(0);
  });
});

describe('non-INVITE client transaction', () => {
  it('UDP: Timer E doubles to T2 in Trying; Timer F times out at 64*T1', () => {
    const hs = harness();
    const txn = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKn1' }), UDP_PEER);
    expect(txn).toBeInstanceOf(NonInviteClientTransaction);
    expect(txn.state).toBe('Trying');
    hs.clock.advance(40_000);
    expect(sentTimes(hs, 'OPTIONS ')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([32_000]);
    expect(txn.state).toBe('Terminated');
  });

  it('UDP: in Proceeding Timer E fires every T2', () => {
    const hs = harness();
    const req = request('BYE', { branch: 'z9hG4bKn2', toTag: 'tt' });
    hs.layer.sendRequest(req, UDP_PEER);
    hs.clock.advance(600);
    expect(hs.layer.receive(response(req, 100, 'Trying'), peerUdp())).toBe('delivered');
    hs.clock.advance(12_000);
    // 0, 500, then the already-armed E at 1500, then every T2.
    expect(sentTimes(hs, 'BYE ')).toEqual([0, 500, 1500, 5500, 9500]);
  });

  it('UDP: final → Completed; retransmitted final absorbed; Timer K = T4', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKn3' });
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    hs.clock.advance(1_000);
    const ok = response(req, 200, 'OK', { toTag: 'r' });
    expect(hs.layer.receive(ok, peerUdp())).toBe('delivered');
    expect(txn.state).toBe('Completed');
    expect(hs.layer.receive(ok, peerUdp())).toBe('absorbed');
    expect(eventsOf(hs, 'response')).toHaveLength(1);
    hs.clock.advanceTo(5_999);
    expect(txn.state).toBe('Completed');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(sentTimes(hs, 'OPTIONS ')).toEqual([0, 500]);
  });

  it('TCP: no Timer E; final → Terminated at once (Timer K = 0)', () => {
    const hs = harness();
    const req = request('MESSAGE', { branch: 'z9hG4bKn4', transport: 'TCP' });
    const txn = hs.layer.sendRequest(req, TCP_PEER);
    hs.clock.advance(10_000);
    expect(sentTimes(hs, 'MESSAGE ')).toEqual([0]);
    hs.layer.receive(response(req, 202, 'Accepted', { toTag: 'r' }), from('tcp', TCP_PEER.address, TCP_PEER.port));
    expect(txn.state).toBe('Terminated');
  });
});

describe('response matching and RFC 6404 §2.3.2.2 forged responses', () => {
  it('a response from another port or address is dropped and counted as forged', () => {
    const hs = harness();
    const req = invite('z9hG4bKsec1');
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    const forged = response(req, 200, 'OK', { toTag: 'evil' });
    expect(hs.layer.receive(forged, from('udp', UDP_PEER.address, 5099))).toBe('forged');
    expect(hs.layer.receive(forged, from('udp', '203.0.113.66', UDP_PEER.port))).toBe('forged');
    expect(hs.layer.receive(forged, from('tcp', UDP_PEER.address, UDP_PEER.port))).toBe('forged');
    expect(hs.layer.counters.forgedResponses).toBe(3);
    expect(eventsOf(hs, 'response')).toHaveLength(0);
    expect(txn.state).toBe('Calling');
    // The genuine one still gets through.
    expect(hs.layer.receive(response(req, 180, 'Ringing', { toTag: 'good' }), peerUdp())).toBe('delivered');
  });

  it('unknown branch, or the right branch with another CSeq method, is stray', () => {
    const hs = harness();
    const req = invite('z9hG4bKsec2');
    hs.layer.sendRequest(req, UDP_PEER);
    const other = response(request('INVITE', { branch: 'z9hG4bKnotours', sentBy: '203.0.113.1:5060' }), 302, 'Moved');
    expect(hs.layer.receive(other, peerUdp())).toBe('stray');
    const wrongMethod = response(request('BYE', { branch: 'z9hG4bKsec2', sentBy: '203.0.113.1:5060' }), 200, 'OK');
    expect(hs.layer.receive(wrongMethod, peerUdp())).toBe('stray');
    expect(hs.layer.counters.strayResponses).toBe(2);
    expect(eventsOf(hs, 'response')).toHaveLength(0);
  });

  it('TCP: a response on another connection is forged even from the same address:port', () => {
    const hs = harness();
    hs.sendResult = () => ({ ok: true, local: { protocol: 'tcp', address: '127.0.0.1', port: 40001 }, connectionId: 'conn-A', bytes: 1 });
    const req = request('OPTIONS', { branch: 'z9hG4bKsec3', transport: 'TCP' });
    hs.layer.sendRequest(req, TCP_PEER);
    expect(hs.layer.receive(response(req, 200, 'OK'), from('tcp', TCP_PEER.address, TCP_PEER.port, 'conn-B'))).toBe('forged');
    expect(hs.layer.receive(response(req, 200, 'OK'), from('tcp', TCP_PEER.address, TCP_PEER.port, 'conn-A'))).toBe('delivered');
  });

  it('TCP over an inbound connection: matched by connection id, not the ephemeral port', () => {
    const hs = harness();
    const req = request('BYE', { branch: 'z9hG4bKsec4', transport: 'TCP', toTag: 'x' });
    hs.layer.sendRequest(req, { protocol: 'tcp', address: '198.51.100.9', port: 51234, connectionId: 'in-1' });
    expect(hs.layer.receive(response(req, 200, 'OK'), from('tcp', '198.51.100.9', 51234, 'in-2'))).toBe('forged');
    expect(hs.layer.receive(response(req, 200, 'OK'), from('tcp', '198.51.100.9', 51234, 'in-1'))).toBe('delivered');
  });

  it('IPv6: bracketed target and bare source address compare equal', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKsec5' });
    hs.layer.sendRequest(req, { protocol: 'udp', address: '[2001:DB8::1]', port: 5060 });
    expect(hs.layer.receive(response(req, 200, 'OK'), from('udp', '2001:db8::2', 5060))).toBe('forged');
    expect(hs.layer.receive(response(req, 200, 'OK'), from('udp', '2001:db8::1', 5060))).toBe('delivered');
  });

  it('responses without Via/CSeq are invalid and dropped', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKsec6' });
    hs.layer.sendRequest(req, UDP_PEER);
    const bad = response(req, 200, 'OK');
    bad.headers = bad.headers.filter((f) => f.name !== 'cseq');
    expect(hs.layer.receive(bad, peerUdp())).toBe('invalid');
    expect(hs.layer.counters.invalidMessages).toBe(1);
  });
});

describe('transport errors (RFC 3261 §17.1.4)', () => {
  it('a failed send reports transportError and terminates', () => {
    const hs = harness();
    hs.sendResult = () => ({ ok: false, reason: 'refused' });
    const txn = hs.layer.sendRequest(invite('z9hG4bKte1'), TCP_PEER);
    expect(eventsOf(hs, 'transportError').map((e) => e.reason)).toEqual(['refused']);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.clientCount).toBe(0);
    expect(hs.clock.pending).toBe(0);
    expect(hs.layer.counters.transportErrors).toBe(1);
  });

  it('an async failure (rejected promise or ok:false) also terminates', async () => {
    const hs = harness();
    hs.sendResult = () => Promise.resolve({ ok: false as const, reason: 'unreachable' as const });
    const a = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte2' }), UDP_PEER);
    hs.sendResult = () => Promise.reject(new Error('boom'));
    const b = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte3' }), UDP_PEER);
    await new Promise((r) => setImmediate(r));
    expect(a.state).toBe('Terminated');
    expect(b.state).toBe('Terminated');
    expect(eventsOf(hs, 'transportError').map((e) => e.reason).sort()).toEqual(['exception', 'unreachable']);
  });

  it('a transport that answers through `done` (no promise, the engine\'s own): a failure terminates, success teaches the connection', async () => {
    const hs = harness();
    const later: Array<() => void> = [];
    hs.sendResult = (t, _b, done) => {
      later.push(() => done(t.port === 9 ? { ok: false, reason: 'unreachable', detail: 'no route' }
        : { ok: true, local: { protocol: 'tcp', address: '127.0.0.1', port: 40002 }, connectionId: 'k-done', bytes: 1 }));
    };
    const failed = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte7' }), { ...UDP_PEER, port: 9 });
    const tcp = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte8', transport: 'TCP' }), TCP_PEER);
    expect(failed.state).toBe('Trying'); // nothing known until the transport calls back
    for (const f of later.splice(0)) f();
    expect(failed.state).toBe('Terminated');
    expect(eventsOf(hs, 'transportError').map((e) => e.reason)).toEqual(['unreachable']);
    expect(tcp.state).toBe('Trying');
    expect(tcp.connectionId).toBe('k-done');
    hs.layer.connectionClosed('k-done');
    expect(tcp.state).toBe('Terminated');
  });

  it('connectionClosed and destinationUnreachable fail the pending transactions they concern', () => {
    const hs = harness();
    hs.sendResult = (t) => ({ ok: true, local: { protocol: t.protocol, address: '127.0.0.1', port: 1 }, connectionId: t.protocol === 'tcp' ? 'k1' : undefined, bytes: 1 });
    const tcp = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte4', transport: 'TCP' }), TCP_PEER);
    const udp = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte5' }), UDP_PEER);
    const other = hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKte6' }), { ...UDP_PEER, port: 9 });
    hs.layer.connectionClosed('k1');
    expect(tcp.state).toBe('Terminated');
    expect(udp.state).toBe('Trying');
    hs.layer.destinationUnreachable(UDP_PEER);
    expect(udp.state).toBe('Terminated');
    expect(other.state).toBe('Trying');
    expect(eventsOf(hs, 'transportError').map((e) => e.reason)).toEqual(['closed', 'unreachable']);
  });
});

describe('sendRequest input checks', () => {
  it('rejects ACK, a missing/RFC 2543 branch, a CSeq mismatch and a duplicate branch with clear errors', () => {
    const hs = harness();
    expect(() => hs.layer.sendRequest(request('ACK'), UDP_PEER)).toThrow(/ACK/);
    expect(() => hs.layer.sendRequest(request('OPTIONS', { branch: '' }), UDP_PEER)).toThrow(/z9hG4bK/);
    expect(() => hs.layer.sendRequest(request('OPTIONS', { branch: 'old2543' }), UDP_PEER)).toThrow(/z9hG4bK/);
    expect(() => hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKq', cseqMethod: 'INFO' }), UDP_PEER)).toThrow(/CSeq/);
    hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKdup' }), UDP_PEER);
    expect(() => hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKdup' }), UDP_PEER)).toThrow(/already exists/);
    expect(() => hs.layer.sendRequest(request('OPTIONS', { branch: 'z9hG4bKdns' }), { protocol: 'udp', address: 'sip.example.com', port: 5060 })).toThrow(/IP literal/);
    expect(hs.layer.clientCount).toBe(1);
  });

  it('IPv4-mapped IPv6 sources match an IPv4 target', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKmapped' });
    hs.layer.sendRequest(req, { protocol: 'udp', address: '192.0.2.44', port: 5060 });
    expect(hs.layer.receive(response(req, 200, 'OK'), from('udp', '::ffff:192.0.2.44', 5060))).toBe('delivered');
  });
});

describe('clientsAwaitingFinal (what a stopping node waits for)', () => {
  it('counts Calling, Trying and Proceeding; not Accepted, Completed, or those past them', () => {
    const hs = harness();
    const inv = invite('z9hG4bKaw1');
    const bye = request('BYE', { branch: 'z9hG4bKaw2', toTag: 'tt' });
    const opts = request('OPTIONS', { branch: 'z9hG4bKaw3' });
    hs.layer.sendRequest(inv, UDP_PEER);
    hs.layer.sendRequest(bye, UDP_PEER);
    hs.layer.sendRequest(opts, UDP_PEER);
    expect(hs.layer.clientsAwaitingFinal()).toBe(3);
    hs.layer.receive(response(inv, 180, 'Ringing', { toTag: 'a' }), peerUdp());
    expect(hs.layer.clientsAwaitingFinal()).toBe(3); // Proceeding still waits
    hs.layer.receive(response(inv, 200, 'OK', { toTag: 'a' }), peerUdp());
    hs.layer.receive(response(bye, 200, 'OK', { toTag: 'tt' }), peerUdp());
    expect(hs.layer.clientsAwaitingFinal()).toBe(1); // Accepted and Completed only absorb
    expect(hs.layer.clientCount).toBe(3);
    hs.clock.advance(32_000); // OPTIONS: Timer F
    expect(hs.layer.clientsAwaitingFinal()).toBe(0);
  });
});
