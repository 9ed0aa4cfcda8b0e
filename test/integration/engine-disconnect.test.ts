// App disconnects (spec §7.1): requests still waiting for the app get 503; requests inside its
// dialogs get 481 (and a BYE still tears the dialog down).
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/procs.js';
import { cleanUpAfterEach, startConnectedApp, startTestEngine } from '../helpers/engine.js';
import { UdpPeer, header } from '../helpers/engine-sip.js';

const peers = cleanUpAfterEach<UdpPeer>();

const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
function invite(peer: UdpPeer, sipPort: number, callId: string): string {
  return `INVITE sip:svc@127.0.0.1:${sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bK-${callId}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:${peer.port}>\r\n` +
    `Content-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;
}

describe('app disconnect', () => {
  it('a request waiting for the app is answered 503 when the app goes away', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, { ANSWER: 'none' }, ['invite']);
    const peer = await UdpPeer.open(); peers.push(peer);
    await peer.send(invite(peer, e.sipPort, 'gone-1'), e.sipPort);
    await peer.take((t) => t.startsWith('SIP/2.0 100'), 5000, '100');
    await app.waitEvent((x) => x.event === 'invite');
    await app.stop();
    const r = await peer.take((t) => t.startsWith('SIP/2.0 '), 5000, 'final');
    expect(r.startsWith('SIP/2.0 503')).toBe(true);
    expect(header(r, 'To')).toMatch(/;tag=/);
  });

  it('requests inside a dialog of a gone app get 481; the dialog is removed', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, {}, ['invite']);
    const peer = await UdpPeer.open(); peers.push(peer);
    await peer.send(invite(peer, e.sipPort, 'gone-2'), e.sipPort);
    const ok = await peer.take((t) => t.startsWith('SIP/2.0 200'), 5000, '200');
    const to = header(ok, 'To')!;
    const inDialog = (m: string, seq: number) => `${m} sip:svc@127.0.0.1:${e.sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bK-g2-${seq}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: ${to}\r\nCall-ID: gone-2\r\nCSeq: ${seq} ${m}\r\nContent-Length: 0\r\n\r\n`;
    await peer.send(inDialog('ACK', 1), e.sipPort);
    await app.waitEvent((x) => x.event === 'uas-dialog');
    expect(e.core.dialogs.size).toBe(1);
    await app.stop();
    await waitFor(() => e.wire.connectedApps() === 0, 5000, 20, 'app gone');
    await peer.send(inDialog('INFO', 2), e.sipPort);
    expect((await peer.take((t) => /CSeq: 2 INFO/.test(t), 5000, 'INFO answer')).startsWith('SIP/2.0 481')).toBe(true);
    await peer.send(inDialog('BYE', 3), e.sipPort);
    expect((await peer.take((t) => /CSeq: 3 BYE/.test(t), 5000, 'BYE answer')).startsWith('SIP/2.0 481')).toBe(true);
    expect(e.core.dialogs.size).toBe(0);
  });
});

describe('CANCEL after the 2xx, before the ACK', () => {
  it('gets 481; the engine sends BYE with a Reason and tells the app with an unsolicited BYE', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, {}, ['invite']);
    const peer = await UdpPeer.open(); peers.push(peer);
    const inv = invite(peer, e.sipPort, 'late-cancel');
    await peer.send(inv, e.sipPort);
    await peer.take((t) => t.startsWith('SIP/2.0 200'), 5000, '200');
    const cancel = inv.replace(/^INVITE /, 'CANCEL ').replace('CSeq: 1 INVITE', 'CSeq: 1 CANCEL')
      .replace(/Content-Type:[^\r]*\r\n/, '').replace(/Content-Length: \d+\r\n\r\n[\s\S]*$/, 'Content-Length: 0\r\n\r\n');
    await peer.send(cancel, e.sipPort);
    expect((await peer.take((t) => /CSeq: 1 CANCEL/.test(t), 5000, 'CANCEL answer')).startsWith('SIP/2.0 481')).toBe(true);
    const bye = await peer.take((t) => t.startsWith('BYE '), 5000, 'BYE from the engine');
    expect(header(bye, 'Reason')).toBe('SIP ;cause=200 ;text="CANCEL after 200 OK"');
    await app.waitEvent((x) => x.event === 'destroy', 5000, 'app dialog destroyed by the unsolicited BYE');
  });
});
