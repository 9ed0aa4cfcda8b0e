// Forged responses (RFC 6404 §2.3.2.2): right Call-ID but wrong source, or an unknown branch,
// never reach the app; the real response from where the request went does.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/procs.js';
import { cleanUpAfterEach, startConnectedApp, startTestEngine } from '../helpers/engine.js';
import { UdpPeer, header } from '../helpers/engine-sip.js';

const peers = cleanUpAfterEach<UdpPeer>();

function responseTo(invite: string, status: string, opts: { toTag?: string; branch?: string; contactPort?: number } = {}): string {
  let via = header(invite, 'Via')!;
  if (opts.branch) via = via.replace(/branch=[^;]+/, `branch=${opts.branch}`);
  const contact = opts.contactPort ? `Contact: <sip:uas@127.0.0.1:${opts.contactPort}>\r\n` : '';
  return `SIP/2.0 ${status}\r\nVia: ${via}\r\nFrom: ${header(invite, 'From')}\r\nTo: ${header(invite, 'To')};tag=${opts.toTag ?? 'uas1'}\r\n` +
    `Call-ID: ${header(invite, 'Call-ID')}\r\nCSeq: ${header(invite, 'CSeq')}\r\n${contact}Content-Length: 0\r\n\r\n`;
}

describe('forged responses', () => {
  it('wrong source address/port or unknown branch: dropped and counted; the real one is delivered', async () => {
    const e = await startTestEngine();
    const uas = await UdpPeer.open(); peers.push(uas);
    const attacker = await UdpPeer.open(); peers.push(attacker);
    const app = await startConnectedApp('uac.mjs', e, { UAC_TARGET: `sip:uas@127.0.0.1:${uas.port}`, CALLS: '1', HOLD_MS: '50' });
    const invite = await uas.take((t) => t.startsWith('INVITE '), 5000, 'INVITE at the uas');
    const before = e.counters().core.forgedResponses;
    // Right Call-ID and branch, wrong source port: a forged 200.
    await attacker.send(responseTo(invite, '200 OK', { contactPort: attacker.port }), e.sipPort);
    // Right source, unknown branch.
    await uas.send(responseTo(invite, '200 OK', { branch: 'z9hG4bKforgedbranch1', contactPort: uas.port }), e.sipPort);
    await waitFor(() => e.counters().core.forgedResponses >= before + 2, 3000, 10, 'forged counted');
    await new Promise((r) => setTimeout(r, 200));
    expect(app.events().some((x) => x.event === 'answered')).toBe(false);
    // The genuine answer: rejected with 486 -> the app sees exactly that.
    await uas.send(responseTo(invite, '486 Busy Here'), e.sipPort);
    const failed = await app.waitEvent((x) => x.event === 'uac-failed');
    expect(failed.status).toBe(486);
    // The engine ACKs the 486 itself, with the INVITE's branch (RFC 3261 §17.1.1.3).
    const ack = await uas.take((t) => t.startsWith('ACK '), 3000, 'ACK for 486');
    expect(/branch=([^;\s]+)/.exec(header(ack, 'Via')!)![1]).toBe(/branch=([^;\s]+)/.exec(header(invite, 'Via')!)![1]);
    expect(attacker.received.length).toBe(0);
  });

  it('a network copy of the TLS identity header never reaches the app over UDP', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, {}, ['options']);
    const peer = await UdpPeer.open(); peers.push(peer);
    await peer.send(`OPTIONS sip:x@127.0.0.1:${e.sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=z9hG4bK-o1\r\n` +
      `From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: forged-id-1\r\nCSeq: 1 OPTIONS\r\n` +
      `X-Peergate-TLS-Identity: subject="CN=bank";san="";fp256=AA\r\nx-peergate-tls-identity: subject="CN=bank2"\r\nContent-Length: 0\r\n\r\n`, e.sipPort);
    await peer.take((t) => t.startsWith('SIP/2.0 200'), 5000, '200');
    const ev = await app.waitEvent((x) => x.event === 'options');
    expect(ev.tls).toBeNull();
  });
});
