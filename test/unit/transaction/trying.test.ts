// RFC 3261 §17.2.1's 100 Trying deferred: "the server transaction MUST generate a 100 (Trying)
// response unless it knows that the TU will generate a provisional or final response within
// 200 ms". A TU that asks with deferTrying() is called back (tu.trying) only when nothing was
// sent 200 ms after the INVITE, or at once for a retransmission before that. Fake clock.
import { describe, expect, it } from 'vitest';
import { InviteServerTransaction, buildResponse, type ServerTransaction } from '../../../src/engine/transaction/index.js';
import { eventsOf, from, harness, request, type Harness } from './support.js';

const alice = () => from('udp', '192.0.2.10', 5062);
const firstLines = (hs: Harness) => hs.sent.map((s) => `${s.at} ${s.text.split('\r\n')[0]}`);

/** A layer whose TU defers the 100 for each new INVITE and renders it when told. */
function deferring(trying = 200) {
  const hs = harness({ trying, unanswered: 0 }); // unanswered 0: the only timers are the 100's
  hs.onRequest = (txn) => { if (txn instanceof InviteServerTransaction) txn.deferTrying(); };
  hs.onTrying = (txn) => { txn.sendOwnTrying(Buffer.from(`SIP/2.0 100 Trying\r\nCall-ID: ${txn.request.headers.find((h) => h.name === 'call-id')!.value}\r\n\r\n`)); };
  return hs;
}

function invite(hs: Harness, branch: string) {
  const req = request('INVITE', { branch, callId: `${branch}@test` });
  expect(hs.layer.receive(req, alice())).toBe('new');
  const reqs = eventsOf(hs, 'request');
  return { req, txn: reqs[reqs.length - 1]!.txn as ServerTransaction as InviteServerTransaction };
}

describe('deferred 100 Trying (RFC 3261 §17.2.1)', () => {
  it('no response from the TU: the 100 goes out 200 ms after the INVITE, once, with one timer for all INVITEs', () => {
    const hs = deferring();
    invite(hs, 'z9hG4bKd1');
    hs.clock.advance(50);
    invite(hs, 'z9hG4bKd2');
    expect(hs.clock.pending).toBe(1); // the trying list's one timer
    hs.clock.advance(149);
    expect(hs.sent).toHaveLength(0);
    hs.clock.advance(1);
    expect(firstLines(hs)).toEqual(['200 SIP/2.0 100 Trying']);
    hs.clock.advance(50);
    expect(firstLines(hs)).toEqual(['200 SIP/2.0 100 Trying', '250 SIP/2.0 100 Trying']);
    hs.clock.advance(10_000);
    expect(hs.sent).toHaveLength(2);
  });

  it('a 180 or a final response before 200 ms: no 100 at all', () => {
    const hs = deferring();
    const a = invite(hs, 'z9hG4bKr1');
    const b = invite(hs, 'z9hG4bKr2');
    hs.clock.advance(30);
    expect(a.txn.respond(buildResponse(a.req, 180, 'Ringing', { toTag: 'u1' }))).toBe(true);
    hs.clock.advance(100);
    expect(b.txn.respond(buildResponse(b.req, 486, 'Busy Here', { toTag: 'u2' }))).toBe(true);
    hs.clock.advance(1_000);
    expect(firstLines(hs).filter((l) => !l.endsWith('486 Busy Here'))).toEqual(['30 SIP/2.0 180 Ringing']);
    expect(hs.sent.some((s) => s.text.startsWith('SIP/2.0 100'))).toBe(false);
  });

  it('a retransmitted INVITE before 200 ms gets the 100 at once, and later copies get it again (the latest provisional, §17.2.1)', () => {
    const hs = deferring();
    const { req, txn } = invite(hs, 'z9hG4bKx1');
    hs.clock.advance(120);
    expect(hs.layer.receive(req, alice())).toBe('absorbed');
    expect(firstLines(hs)).toEqual(['120 SIP/2.0 100 Trying']);
    hs.clock.advance(200); // the deadline passes: nothing more
    expect(hs.sent).toHaveLength(1);
    hs.layer.receive(req, alice());
    expect(firstLines(hs)).toEqual(['120 SIP/2.0 100 Trying', '320 SIP/2.0 100 Trying']);
    expect(hs.layer.counters.retransmissionsSent).toBe(1);
    // A provisional from the TU replaces it as the response to resend.
    txn.respond(buildResponse(req, 180, 'Ringing', { toTag: 'u1' }));
    hs.layer.receive(req, alice());
    expect(firstLines(hs).slice(2)).toEqual(['320 SIP/2.0 180 Ringing', '320 SIP/2.0 180 Ringing']);
    expect(eventsOf(hs, 'request')).toHaveLength(1);
  });

  it('a transaction that ended before its deadline (a 2xx, a terminate()) gets no 100', () => {
    const hs = deferring();
    const a = invite(hs, 'z9hG4bKe1');
    const b = invite(hs, 'z9hG4bKe2');
    a.txn.respond(buildResponse(a.req, 200, 'OK', { toTag: 'u1' }));
    b.txn.terminate();
    hs.clock.advance(500);
    expect(firstLines(hs)).toEqual(['0 SIP/2.0 200 OK']);
  });

  it('trying 0: the TU is called back at once, and the stack\'s own 100 is not repeated for a retransmission (sofia-sip, golden trace 05)', () => {
    const hs = deferring(0);
    const { req } = invite(hs, 'z9hG4bKz1');
    expect(firstLines(hs)).toEqual(['0 SIP/2.0 100 Trying']);
    expect(hs.clock.pending).toBe(0);
    hs.layer.receive(req, alice());
    expect(hs.sent).toHaveLength(1);
  });

  it('a negative or non-numeric trying delay is a configuration error', () => {
    expect(() => harness({ trying: -1 })).toThrow(/timer trying/);
    expect(() => harness({ trying: Number.NaN })).toThrow(/timer trying/);
  });
});
