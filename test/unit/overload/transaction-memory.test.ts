// Memory contract of the transaction layer (issue #18.5): once the final response is sent or
// received, a transaction keeps only what absorbing retransmissions needs, and still absorbs
// them exactly as RFC 3261 §17 says (fake clock, the transaction tests' harness).
import { describe, expect, it } from 'vitest';
import { buildResponse, type ServerTransaction } from '../../../src/engine/transaction/index.js';
import { UDP_PEER, eventsOf, from, harness, request, response, sentTimes } from '../transaction/support.js';

const peer = () => from('udp', UDP_PEER.address, UDP_PEER.port);

describe('waiting transactions release what they no longer need', () => {
  it('non-INVITE server: after the final the request, meta and appData are gone; a retransmission still gets the final (Timer J)', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKm1' });
    hs.layer.receiveRequest(req, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    txn.appData = { big: 'x'.repeat(1000) };
    expect(txn.request).toBe(req);
    expect(txn.respond(buildResponse(req, 200, 'OK'))).toBe(true);
    expect(() => txn.request).toThrow(/released/);
    expect(() => txn.meta).toThrow(/released/);
    expect(txn.appData).toBeUndefined();
    hs.layer.receiveRequest(request('OPTIONS', { branch: 'z9hG4bKm1' }), peer());
    expect(sentTimes(hs, 'SIP/2.0 200')).toEqual([0, 0]);
    hs.clock.advance(31_999);
    expect(hs.layer.serverCount).toBe(1);
    hs.clock.advance(1);
    expect(hs.layer.serverCount).toBe(0);
  });

  it('INVITE server, non-2xx: Timer G still retransmits the final after the release, the ACK ends it via Timer I', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKi1' });
    hs.layer.receiveRequest(inv, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    txn.respond(buildResponse(inv, 486, 'Busy Here', { toTag: 't1' }));
    expect(() => txn.request).toThrow(/released/);
    hs.clock.advance(1500);
    expect(sentTimes(hs, 'SIP/2.0 486')).toEqual([0, 500, 1500]);
    hs.layer.receiveRequest(request('ACK', { branch: 'z9hG4bKi1', toTag: 't1', cseqMethod: 'ACK' }), peer());
    expect(txn.state).toBe('Confirmed');
    hs.clock.advance(5000);
    expect(txn.state).toBe('Terminated');
  });

  it('INVITE server, 2xx (Accepted): keeps the TU appData, absorbs INVITE retransmissions silently', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKi2' });
    hs.layer.receiveRequest(inv, peer());
    const txn = eventsOf(hs, 'request')[0]!.txn as ServerTransaction;
    txn.appData = 'core record';
    txn.respond(buildResponse(inv, 200, 'OK', { toTag: 't2' }));
    expect(txn.state).toBe('Accepted');
    expect(txn.appData).toBe('core record');
    hs.layer.receiveRequest(request('INVITE', { branch: 'z9hG4bKi2' }), peer());
    expect(hs.sent).toHaveLength(1);
    expect(hs.layer.counters.requestRetransmissionsAbsorbed).toBe(1);
  });

  it('INVITE client, non-2xx: the request is released, a retransmitted final is still ACKed (Timer D)', () => {
    const hs = harness();
    const inv = request('INVITE', { branch: 'z9hG4bKc1' });
    const txn = hs.layer.sendRequest(inv, UDP_PEER);
    hs.layer.receiveResponse(response(inv, 486, 'Busy', { toTag: 'b1' }), peer());
    expect(() => txn.request).toThrow(/released/);
    expect(txn.lastResponse).toBeUndefined();
    hs.layer.receiveResponse(response(inv, 486, 'Busy', { toTag: 'b1' }), peer());
    expect(hs.sent.filter((s) => s.text.startsWith('ACK '))).toHaveLength(2);
    hs.clock.advance(32_000);
    expect(txn.state).toBe('Terminated');
    expect(sentTimes(hs, 'INVITE ')).toEqual([0]); // no Timer A after the final
  });

  it('non-INVITE client: Completed absorbs retransmitted finals without the request (Timer K)', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKc2' });
    const txn = hs.layer.sendRequest(req, UDP_PEER);
    hs.layer.receiveResponse(response(req, 200, 'OK', { toTag: 'o1' }), peer());
    expect(() => txn.request).toThrow(/released/);
    expect(hs.layer.receiveResponse(response(req, 200, 'OK', { toTag: 'o1' }), peer())).toBe('absorbed');
    expect(eventsOf(hs, 'response')).toHaveLength(1);
    hs.clock.advance(5000);
    expect(txn.state).toBe('Terminated');
    expect(sentTimes(hs, 'OPTIONS ')).toEqual([0]);
  });
});
