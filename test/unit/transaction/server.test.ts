// RFC 3261 §17.2 server transactions through the TransactionLayer, with a fake clock.
import { describe, expect, it } from 'vitest';
import { InviteServerTransaction, NonInviteServerTransaction, buildResponse } from '../../../src/engine/transaction/index.js';
import type { ServerTransaction } from '../../../src/engine/transaction/index.js';
import { eventsOf, from, harness, request, response, sentTimes, type Harness } from './support.js';

const alice = () => from('udp', '192.0.2.10', 5062);
const aliceTcp = (cid = 'tcp-1') => from('tcp', '192.0.2.10', 49152, cid);

function lastServerTxn(hs: Harness): ServerTransaction {
  const reqs = eventsOf(hs, 'request');
  return reqs[reqs.length - 1]!.txn as ServerTransaction;
}

function newInvite(hs: Harness, branch = 'z9hG4bKist1', meta = alice(), transport = 'UDP') {
  const req = request('INVITE', { branch, transport, extra: [{ name: 'timestamp', raw: 'Timestamp', value: '54' }] });
  expect(hs.layer.receive(req, meta)).toBe('new');
  const txn = lastServerTxn(hs);
  expect(txn).toBeInstanceOf(InviteServerTransaction);
  return { req, txn: txn as InviteServerTransaction };
}

describe('INVITE server transaction over UDP', () => {
  it('100 Trying on request, to the source (rport); retransmitted INVITE absorbed and answered with the last provisional', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    expect(txn.state).toBe('Proceeding');
    expect(txn.sendTrying()).toBe(true);
    expect(txn.sendTrying()).toBe(false); // once only
    const trying = hs.sent[0]!;
    expect(trying.text.startsWith('SIP/2.0 100 Trying\r\n')).toBe(true);
    expect(trying.text).toContain('Timestamp: 54\r\n');
    expect(trying.text).toContain('To: <sip:bob@biloxi.example>\r\n');
    expect(trying.target).toMatchObject({ protocol: 'udp', address: '192.0.2.10', port: 5062 });
    expect(hs.layer.receive(req, alice())).toBe('absorbed');
    expect(hs.sent.map((s) => s.text.split('\r\n')[0])).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 100 Trying']);
    expect(txn.respond(buildResponse(req, 180, 'Ringing', { toTag: 'uas1' }))).toBe(true);
    hs.layer.receive(req, alice());
    expect(hs.sent.map((s) => s.text.split('\r\n')[0]).slice(2)).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 180 Ringing']);
    expect(eventsOf(hs, 'request')).toHaveLength(1);
    expect(hs.layer.counters.requestRetransmissionsAbsorbed).toBe(2);
    // No timers in Proceeding: the TU decides how long to wait.
    expect(hs.clock.pending).toBe(0);
  });

  it('autoTrying: 100 Trying goes out before the TU hears of the INVITE, and only for INVITE', () => {
    const hs = harness(undefined, { autoTrying: true });
    let sentBeforeTu = -1;
    hs.onRequest = () => (sentBeforeTu = hs.sent.length);
    const req = request('INVITE', { branch: 'z9hG4bKauto' });
    hs.layer.receive(req, alice());
    expect(sentBeforeTu).toBe(1);
    expect(hs.sent[0]!.text.startsWith('SIP/2.0 100 Trying')).toBe(true);
    hs.layer.receive(req, alice());
    expect(sentTimes(hs, 'SIP/2.0 100')).toHaveLength(2); // the retransmission gets the 100 again
    hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKauto2' }), alice());
    expect(hs.sent).toHaveLength(2);
  });

  it('pre-rendered responses: the stack\'s own 100 goes out once and is not repeated; a TU provisional is; respondRaw keeps the bytes', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    const own = Buffer.from('SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n');
    expect(txn.sendOwnTrying(own)).toBe(true);
    expect(txn.sendOwnTrying(own)).toBe(false);
    hs.layer.receive(req, alice());
    expect(hs.sent.map((s) => s.text.split('\r\n')[0])).toEqual(['SIP/2.0 100 Trying']);
    const ringing = Buffer.from('SIP/2.0 180 Ringing\r\nX-Layout: kept\r\nContent-Length: 0\r\n\r\n');
    expect(txn.respondRaw(180, ringing)).toBe(true);
    hs.layer.receive(req, alice());
    expect(hs.sent.slice(1).map((s) => s.text)).toEqual([ringing.toString(), ringing.toString()]);
    expect(txn.accepts(486)).toBe(true);
    expect(txn.respondRaw(486, Buffer.from('SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n'))).toBe(true);
    expect(txn.state).toBe('Completed');
    expect(txn.accepts(200)).toBe(false);
    expect(txn.sendOwnTrying(own)).toBe(false);
  });

  it('non-2xx final: Timer G retransmits T1 doubling to T2; Timer H at 64*T1 reports a timeout', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    expect(txn.respond(buildResponse(req, 486, 'Busy Here', { toTag: 'b' }))).toBe(true);
    expect(txn.state).toBe('Completed');
    hs.clock.advance(31_999);
    expect(sentTimes(hs, 'SIP/2.0 486')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(eventsOf(hs, 'timeout')).toHaveLength(0);
    hs.clock.advance(1);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([32_000]);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.serverCount).toBe(0);
  });

  it('retransmitted INVITE in Completed gets the final again; late responses from the TU are refused', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    txn.respond(buildResponse(req, 404, 'Not Found', { toTag: 'n' }));
    hs.clock.advance(100);
    expect(hs.layer.receive(req, alice())).toBe('absorbed');
    expect(sentTimes(hs, 'SIP/2.0 404')).toEqual([0, 100]);
    expect(txn.respond(buildResponse(req, 200, 'OK', { toTag: 'n' }))).toBe(false);
    expect(sentTimes(hs, 'SIP/2.0 200')).toEqual([]);
  });

  it('ACK of the non-2xx: Confirmed, absorbed (not passed to the TU), Timer G/H stop, Timer I = T4', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    txn.respond(buildResponse(req, 486, 'Busy Here', { toTag: 'b' }));
    hs.clock.advance(600);
    const ack = request('ACK', { branch: 'z9hG4bKist1', toTag: 'b' });
    expect(hs.layer.receive(ack, alice())).toBe('absorbed');
    expect(txn.state).toBe('Confirmed');
    expect(hs.layer.receive(ack, alice())).toBe('absorbed'); // ACK retransmission
    expect(eventsOf(hs, 'ack')).toHaveLength(0);
    hs.clock.advanceTo(600 + 4_999);
    expect(txn.state).toBe('Confirmed');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(sentTimes(hs, 'SIP/2.0 486')).toEqual([0, 500]);
    expect(eventsOf(hs, 'timeout')).toHaveLength(0);
  });

  it('stateless final (RFC 3261 §8.2.7): sent once, the transaction ends with it; a retransmission is new, the ACK goes to the TU', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    const bytes = Buffer.from('SIP/2.0 503 Service Unavailable\r\n\r\n');
    // Only a final non-2xx, and only while nothing above 100 went out.
    expect(txn.respondStatelessly(200, bytes)).toBe(false);
    expect(txn.respondStatelessly(503, bytes)).toBe(true);
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.serverCount).toBe(0);
    expect(hs.clock.pending).toBe(0); // no Timer G, H or I
    expect(txn.respondStatelessly(503, bytes)).toBe(false);
    hs.clock.advance(64 * 500);
    expect(sentTimes(hs, 'SIP/2.0 503')).toEqual([0]);
    expect(hs.layer.receive(request('ACK', { branch: 'z9hG4bKist1', toTag: 'x' }), alice())).toBe('ack');
    expect(eventsOf(hs, 'ack')).toHaveLength(1);
    expect(hs.layer.receive(req, alice())).toBe('new');
    const ringing = newInvite(hs, 'z9hG4bKist2');
    ringing.txn.respond(buildResponse(ringing.req, 180, 'Ringing', { toTag: 'r' }));
    expect(ringing.txn.respondStatelessly(503, bytes)).toBe(false);
    expect(ringing.txn.state).toBe('Proceeding');
  });

  it('2xx: Accepted (RFC 6026) absorbs INVITE retransmissions without resending; ACK for 2xx goes to the TU; Timer L', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs);
    txn.sendTrying();
    expect(txn.respond(buildResponse(req, 200, 'OK', { toTag: 'ok' }))).toBe(true);
    expect(txn.state).toBe('Accepted');
    expect(hs.layer.receive(req, alice())).toBe('absorbed');
    expect(eventsOf(hs, 'request')).toHaveLength(1);
    expect(hs.sent).toHaveLength(2); // 100 and 200, nothing for the retransmission
    // The core's 2xx retransmission passes through; other responses do not.
    expect(txn.respond(buildResponse(req, 200, 'OK', { toTag: 'ok' }))).toBe(true);
    expect(txn.respond(buildResponse(req, 180, 'Ringing', { toTag: 'ok' }))).toBe(false);
    expect(txn.respond(buildResponse(req, 500, 'Oops', { toTag: 'ok' }))).toBe(false);
    // ACK for a 2xx has its own branch: no transaction, passed to the TU.
    expect(hs.layer.receive(request('ACK', { branch: 'z9hG4bKack2xx', toTag: 'ok' }), alice())).toBe('ack');
    // An ACK reusing the INVITE's branch while Accepted is also the TU's, with the transaction.
    expect(hs.layer.receive(request('ACK', { branch: 'z9hG4bKist1', toTag: 'ok' }), alice())).toBe('ack');
    expect(eventsOf(hs, 'ack').map((e) => e.invite)).toEqual([undefined, txn]);
    hs.clock.advance(31_999);
    expect(txn.state).toBe('Accepted');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
  });
});

describe('INVITE server transaction over TCP', () => {
  it('no Timer G; Timer H still 64*T1; ACK → Terminated at once (Timer I = 0); responses on the connection', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs, 'z9hG4bKtcp', aliceTcp(), 'TCP');
    txn.respond(buildResponse(req, 486, 'Busy Here', { toTag: 'b' }));
    expect(hs.sent[0]!.target).toMatchObject({ protocol: 'tcp', address: '192.0.2.10', port: 49152, connectionId: 'tcp-1' });
    hs.clock.advance(10_000);
    expect(sentTimes(hs, 'SIP/2.0 486')).toEqual([0]);
    hs.layer.receive(request('ACK', { branch: 'z9hG4bKtcp', transport: 'TCP', toTag: 'b' }), aliceTcp());
    expect(txn.state).toBe('Terminated');

    const second = newInvite(hs, 'z9hG4bKtcp2', aliceTcp(), 'TCP');
    second.txn.respond(buildResponse(second.req, 486, 'Busy Here', { toTag: 'c' }));
    hs.clock.advance(32_000);
    expect(eventsOf(hs, 'timeout').map((e) => e.at)).toEqual([42_000]);
  });
});

describe('non-INVITE server transaction', () => {
  it('UDP: Trying absorbs silently; Proceeding resends the provisional; Completed resends the final; Timer J = 64*T1', () => {
    const hs = harness();
    const req = request('BYE', { branch: 'z9hG4bKnist1', toTag: 'x' });
    expect(hs.layer.receive(req, alice())).toBe('new');
    const txn = lastServerTxn(hs);
    expect(txn).toBeInstanceOf(NonInviteServerTransaction);
    expect(txn.state).toBe('Trying');
    expect(hs.layer.receive(req, alice())).toBe('absorbed');
    expect(hs.sent).toHaveLength(0);
    txn.respond(buildResponse(req, 100, 'Trying'));
    expect(txn.state).toBe('Proceeding');
    hs.layer.receive(req, alice());
    expect(sentTimes(hs, 'SIP/2.0 100')).toEqual([0, 0]);
    hs.clock.advance(10);
    expect(txn.respond(buildResponse(req, 200, 'OK'))).toBe(true);
    expect(txn.state).toBe('Completed');
    expect(txn.respond(buildResponse(req, 500, 'Late'))).toBe(false);
    hs.clock.advance(10);
    hs.layer.receive(req, alice());
    expect(sentTimes(hs, 'SIP/2.0 200')).toEqual([10, 20]);
    expect(eventsOf(hs, 'request')).toHaveLength(1);
    hs.clock.advanceTo(10 + 31_999);
    expect(txn.state).toBe('Completed');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    // After J, a retransmission would be a new transaction (the RFC's intent: J covers them).
    expect(hs.layer.receive(req, alice())).toBe('new');
  });

  it('TCP: final → Terminated at once (Timer J = 0)', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKnist2', transport: 'TCP' });
    hs.layer.receive(req, aliceTcp());
    const txn = lastServerTxn(hs);
    txn.respond(buildResponse(req, 200, 'OK', { toTag: 't' }));
    expect(txn.state).toBe('Terminated');
    expect(hs.layer.serverCount).toBe(0);
    expect(hs.clock.pending).toBe(0);
  });

  it('a failed send terminates the transaction with a transportError', () => {
    const hs = harness();
    hs.sendResult = () => ({ ok: false, reason: 'closed' });
    const req = request('OPTIONS', { branch: 'z9hG4bKnist3', transport: 'TCP' });
    hs.layer.receive(req, aliceTcp());
    const txn = lastServerTxn(hs);
    txn.respond(buildResponse(req, 200, 'OK'));
    expect(txn.state).toBe('Terminated');
    expect(eventsOf(hs, 'transportError').map((e) => e.reason)).toEqual(['closed']);
  });
});

describe('unanswered server transactions (drachtio: forgotten after 64 s)', () => {
  it('an INVITE answered only with 100 is dropped silently at 64 s; a later response is refused', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs, 'z9hG4bKun1');
    txn.sendTrying();
    hs.clock.advance(63_999);
    expect(txn.state).toBe('Proceeding');
    hs.clock.advance(1);
    expect(txn.state).toBe('Terminated');
    expect(eventsOf(hs, 'terminated').map((e) => e.at)).toEqual([64_000]);
    expect(eventsOf(hs, 'timeout')).toHaveLength(0);
    expect(hs.layer.counters.unansweredDropped).toBe(1);
    expect(txn.respond(buildResponse(req, 200, 'OK', { toTag: 'late' }))).toBe(false);
    expect(hs.sent.map((s) => s.text.split('\r\n')[0])).toEqual(['SIP/2.0 100 Trying']);
  });

  it('a ringing INVITE (180 sent) is not dropped; a non-INVITE needs a final in time', () => {
    const hs = harness();
    const { req, txn } = newInvite(hs, 'z9hG4bKun2');
    txn.respond(buildResponse(req, 180, 'Ringing', { toTag: 'r' }));
    const bye = request('BYE', { branch: 'z9hG4bKun3', toTag: 'x' });
    hs.layer.receive(bye, alice());
    const nist = lastServerTxn(hs);
    nist.respond(buildResponse(bye, 100, 'Trying'));
    hs.clock.advance(200_000);
    expect(txn.state).toBe('Proceeding');
    expect(nist.state).toBe('Terminated');
    expect(hs.layer.counters.unansweredDropped).toBe(1);
  });

  it('unanswered: 0 disables the drop', () => {
    const hs = harness({ unanswered: 0 });
    hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKun4' }), alice());
    hs.clock.advance(1_000_000);
    expect(hs.layer.serverCount).toBe(1);
    expect(hs.clock.pending).toBe(0);
  });
});

describe('server transaction matching (RFC 3261 §17.2.3)', () => {
  it('CANCEL is its own transaction; findInviteServerTransaction returns the INVITE it targets', () => {
    const hs = harness();
    const { txn: inv } = newInvite(hs, 'z9hG4bKcan1');
    let found: unknown = 'not called';
    hs.onRequest = (txn) => {
      if (txn.method === 'CANCEL') found = hs.layer.findInviteServerTransaction(txn.request);
    };
    const cancel = request('CANCEL', { branch: 'z9hG4bKcan1' });
    expect(hs.layer.receive(cancel, alice())).toBe('new');
    expect(found).toBe(inv);
    const cancelTxn = lastServerTxn(hs);
    expect(cancelTxn).toBeInstanceOf(NonInviteServerTransaction);
    expect(cancelTxn).not.toBe(inv);
    // A retransmitted CANCEL is absorbed by the CANCEL transaction, not the INVITE.
    expect(hs.layer.receive(cancel, alice())).toBe('absorbed');
    // CANCEL for another branch or another sent-by matches nothing.
    expect(hs.layer.findInviteServerTransaction(request('CANCEL', { branch: 'z9hG4bKcan2' }))).toBeUndefined();
    expect(hs.layer.findInviteServerTransaction(request('CANCEL', { branch: 'z9hG4bKcan1', sentBy: '192.0.2.99:5060' }))).toBeUndefined();
  });

  it('same branch from another sent-by, or with another method, is a different transaction', () => {
    const hs = harness();
    hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKsame' }), alice());
    expect(hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKsame', sentBy: '192.0.2.11:5060' }), alice())).toBe('new');
    expect(hs.layer.receive(request('INFO', { branch: 'z9hG4bKsame' }), alice())).toBe('new');
    expect(hs.layer.serverCount).toBe(3);
  });

  it('sent-by compares host case-insensitively and tolerates LWS around the colon', () => {
    const hs = harness();
    hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKlws', sentBy: 'Host.Example:5060' }), alice());
    expect(hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKlws', sentBy: 'host.example : 5060' }), alice())).toBe('absorbed');
  });

  it('RFC 2543 fallback (no magic cookie): retransmission and ACK of a non-2xx are matched', () => {
    const hs = harness();
    const old = request('INVITE', { branch: '' });
    expect(hs.layer.receive(old, alice())).toBe('new');
    const txn = lastServerTxn(hs) as InviteServerTransaction;
    expect(hs.layer.receive(old, alice())).toBe('absorbed');
    txn.respond(buildResponse(old, 480, 'Unavailable', { toTag: 'z' }));
    expect(hs.layer.receive(request('ACK', { branch: '', toTag: 'z' }), alice())).toBe('absorbed');
    expect(txn.state).toBe('Confirmed');
    // Another Call-ID is another transaction.
    expect(hs.layer.receive(request('INVITE', { branch: '', callId: 'other' }), alice())).toBe('new');
  });

  it('requests without Via, with a garbled CSeq, or a CSeq method mismatch are invalid and create nothing', () => {
    const hs = harness();
    const noVia = request('OPTIONS');
    noVia.headers = noVia.headers.filter((f) => f.name !== 'via');
    expect(hs.layer.receive(noVia, alice())).toBe('invalid');
    const badCseq = request('OPTIONS');
    badCseq.headers = badCseq.headers.map((f) => (f.name === 'cseq' ? { ...f, value: 'x OPTIONS' } : f));
    expect(hs.layer.receive(badCseq, alice())).toBe('invalid');
    expect(hs.layer.receive(request('OPTIONS', { cseqMethod: 'INVITE' }), alice())).toBe('invalid');
    expect(hs.layer.counters.invalidMessages).toBe(3);
    expect(hs.layer.serverCount).toBe(0);
    expect(eventsOf(hs, 'request')).toHaveLength(0);
  });

  it('an exception in a TU callback is reported to onError and does not break the layer', () => {
    const hs = harness();
    hs.onRequest = () => {
      throw new Error('TU bug');
    };
    expect(hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKthrow' }), alice())).toBe('new');
    expect(hs.errors).toHaveLength(1);
    expect(hs.layer.receive(request('OPTIONS', { branch: 'z9hG4bKthrow' }), alice())).toBe('absorbed');
  });

  it('response() helper and the layer agree: a response built by the test matches its client transaction', () => {
    // Guards the test helpers themselves against drifting from the layer's matching rules.
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKself' });
    hs.layer.sendRequest(req, { protocol: 'udp', address: '192.0.2.10', port: 5062 });
    expect(hs.layer.receive(response(req, 200, 'OK'), alice())).toBe('delivered');
  });
});
