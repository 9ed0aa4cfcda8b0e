// RFC 6404 §2.3.2.1 at the UA core: a request within a dialog, its ACK and a CANCEL are taken
// only from the peer that owns the dialog (UDP: the same host; TCP/TLS: the same connection).
// Anyone else gets 481 as if there were no dialog, the app never hears of it, the call goes on.
import { describe, expect, it } from 'vitest';
import { Dialog } from '../../../src/engine/dialog/dialog.js';
import { LOCAL, PEER, coreHarness, startLines, token } from './support.js';

const OTHER = { protocol: 'udp' as const, address: '127.0.0.9', port: 6000 };

const INVITE = (callId: string) => `INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${callId}\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 10 INVITE\r\n` +
  `Contact: <sip:a@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n`;
const CANCEL = (callId: string) => `CANCEL sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${callId}\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n`;
const inDialog = (method: string, callId: string, tag: string, cseq: number, branch: string) =>
  `${method} sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${branch}\r\nMax-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=${tag}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\nContent-Length: 0\r\n\r\n`;

function harness() {
  const h = coreHarness({ routes: ['invite'] });
  const from = (source: typeof PEER, text: string) => h.core.onPacket({ data: Buffer.from(text), source, local: LOCAL });
  return { ...h, from };
}

describe('requests within a dialog are bound to the dialog’s peer', () => {
  it('BYE, re-INVITE, UPDATE, INFO and ACK from another host: 481 (ACK dropped), counted, the app never sees them; the owner’s BYE ends the call', () => {
    const h = harness();
    h.feed(INVITE('bind-1'));
    const txnId = token(h.frames.shift()!, 8);
    h.fromApp('m1', txnId, '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
    const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(h.sent.filter((s) => s.text.startsWith('SIP/2.0 200')).pop()!.text)![1]!;
    h.frames.length = 0;
    const before = h.sent.length;
    h.from(OTHER, inDialog('ACK', 'bind-1', tag, 10, 'ack-x'));
    for (const [m, seq] of [['BYE', 11], ['INVITE', 12], ['UPDATE', 13], ['INFO', 14]] as const) h.from(OTHER, inDialog(m, 'bind-1', tag, seq, `x-${m}`));
    expect(h.frames).toHaveLength(0);
    const refusals = h.sent.slice(before);
    expect(startLines(refusals)).toEqual(Array(4).fill('SIP/2.0 481 Call/Transaction Does Not Exist'));
    for (const r of refusals) expect(r.target.address).toBe('127.0.0.9');
    expect(h.core.counters.foreignDialogRequests).toBe(5);
    expect(h.core.dialogs.size).toBe(1);
    // The owner's ACK and BYE (another port of the same host is the same peer over UDP).
    h.core.onPacket({ data: Buffer.from(inDialog('ACK', 'bind-1', tag, 10, 'ack-ok')), source: { ...PEER, port: 6001 }, local: LOCAL });
    expect(h.frames).toHaveLength(1);
    h.feed(inDialog('BYE', 'bind-1', tag, 15, 'bye-ok'));
    expect(h.frames).toHaveLength(2);
    expect(h.frames[1]).toContain('\r\nBYE sip:svc@127.0.0.1:5070 SIP/2.0\r\n');
    expect(h.core.dialogs.size).toBe(0);
  });

  it('a CANCEL from another host gets 481 and the INVITE rings on; the caller’s CANCEL gets 200 and 487', () => {
    const h = harness();
    h.feed(INVITE('bind-2'));
    const txnId = token(h.frames.shift()!, 8);
    h.fromApp('m1', txnId, '', 'SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
    h.frames.length = 0;
    const before = h.sent.length;
    h.from(OTHER, CANCEL('bind-2'));
    expect(startLines(h.sent.slice(before))).toEqual(['SIP/2.0 481 Call/Transaction Does Not Exist']);
    expect(h.frames).toHaveLength(0);
    expect(h.core.counters.foreignDialogRequests).toBe(1);
    h.feed(CANCEL('bind-2'));
    expect(startLines(h.sent.slice(before + 1))).toEqual(['SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated']);
    expect(h.frames).toHaveLength(1);
  });
  it('after the 2xx (the INVITE in Accepted keeps only its dialog): a CANCEL from another host gets 481 and no BYE; the caller’s ends the call', () => {
    const h = harness();
    h.feed(INVITE('bind-3'));
    const txnId = token(h.frames.shift()!, 8);
    h.fromApp('m1', txnId, '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
    h.frames.length = 0;
    const before = h.sent.length;
    h.from(OTHER, CANCEL('bind-3'));
    expect(startLines(h.sent.slice(before))).toEqual(['SIP/2.0 481 Call/Transaction Does Not Exist']);
    expect(h.core.counters.foreignDialogRequests).toBe(1);
    expect(h.core.dialogs.size).toBe(1);
    h.feed(CANCEL('bind-3'));
    const after = startLines(h.sent.slice(before + 1));
    expect(after[0]).toBe('SIP/2.0 481 Call/Transaction Does Not Exist');
    expect(after.some((l) => l.startsWith('BYE '))).toBe(true);
    expect(h.core.dialogs.size).toBe(0);
  });
});

describe('Dialog.acceptsFrom', () => {
  const make = (protocol: 'udp' | 'tcp' | 'tls', connectionId: string | undefined) => Dialog.asUas({
    callId: 'c', from: '<sip:a@x>;tag=1', to: '<sip:b@y>', cseq: 1, contact: '<sip:a@10.0.0.1>', recordRoute: [], localTag: 'l',
  }, { protocol, address: '192.0.2.1', port: 5060, connectionId, localKey: 'k', appId: 1 });

  it('UDP: same host (a v4-mapped form included), any port; another host or transport is refused', () => {
    const d = make('udp', undefined);
    expect(d.acceptsFrom({ protocol: 'udp', address: '192.0.2.1', connectionId: undefined })).toBe(true);
    expect(d.acceptsFrom({ protocol: 'udp', address: '::ffff:192.0.2.1', connectionId: undefined })).toBe(true);
    expect(d.acceptsFrom({ protocol: 'udp', address: '192.0.2.2', connectionId: undefined })).toBe(false);
    expect(d.acceptsFrom({ protocol: 'tcp', address: '192.0.2.1', connectionId: 'c1' })).toBe(false);
  });

  it('TCP/TLS: the same connection only, even from the same host', () => {
    for (const p of ['tcp', 'tls'] as const) {
      const d = make(p, 'conn-1');
      expect(d.acceptsFrom({ protocol: p, address: '192.0.2.1', connectionId: 'conn-1' })).toBe(true);
      expect(d.acceptsFrom({ protocol: p, address: '192.0.2.1', connectionId: 'conn-2' })).toBe(false);
      expect(d.acceptsFrom({ protocol: 'udp', address: '192.0.2.1', connectionId: undefined })).toBe(false);
    }
  });

  it('UAC: a dialog we created is bound to the target we sent the INVITE to', () => {
    const d = Dialog.asUac({ callId: 'c', from: '<sip:a@x>;tag=1', cseq: 1, requestUri: 'sip:b@198.51.100.7', to: '<sip:b@y>;tag=2', contact: '<sip:b@203.0.113.9>', recordRoute: [] },
      { protocol: 'udp', address: '198.51.100.7', port: 5060, connectionId: undefined, localKey: 'k', appId: 1 });
    expect(d.acceptsFrom({ protocol: 'udp', address: '198.51.100.7', connectionId: undefined })).toBe(true);
    // The remote target (Contact) is where our requests go, not a second owner.
    expect(d.acceptsFrom({ protocol: 'udp', address: '203.0.113.9', connectionId: undefined })).toBe(false);
  });
});
