// Bad input from the network: invalid requests get 400, invalid responses are dropped, values
// that would break a wire leader never reach an app, and the engine keeps serving.
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { freePort, runSipp, waitFor } from '../helpers/procs.js';
import { FrameDecoder, encodeFrame } from '../../src/engine/wire/framing.js';
import { cleanUpAfterEach, startConnectedApp, startTestEngine } from '../helpers/engine.js';
import { UdpPeer } from '../helpers/engine-sip.js';

const peers = cleanUpAfterEach<UdpPeer>();

const opt = (port: number, sipPort: number, callId: string, extra = '') =>
  `OPTIONS sip:x@127.0.0.1:${sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${Math.random().toString(36).slice(2)}\r\n` +
  `From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length: 0\r\n\r\n`;

describe('engine robustness', () => {
  it('400 for invalid requests, silence for invalid responses, service continues', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, {}, ['options']);
    const peer = await UdpPeer.open(); peers.push(peer);
    // CSeq method differs from the request method.
    await peer.send(opt(peer.port, e.sipPort, 'bad-1').replace('CSeq: 1 OPTIONS', 'CSeq: 1 INVITE'), e.sipPort);
    expect((await peer.take((t) => t.includes('bad-1'), 5000, 'answer to bad-1')).startsWith('SIP/2.0 400')).toBe(true);
    // A '|' in the Call-ID would split a wire leader: refused, never passed up.
    await peer.send(opt(peer.port, e.sipPort, 'bad|2'), e.sipPort);
    expect((await peer.take((t) => t.includes('bad|2'), 5000, 'answer to bad|2')).startsWith('SIP/2.0 400')).toBe(true);
    // Garbage and a malformed response: nothing comes back, nothing crashes.
    await peer.send('\x00\x01garbage\r\n\r\n', e.sipPort);
    await peer.send('SIP/2.0 2OO OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n', e.sipPort);
    await peer.send(`SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:${e.sipPort};branch=z9hG4bKnotours\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, e.sipPort);
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.received.length).toBe(0);
    // Still serving.
    await peer.send(opt(peer.port, e.sipPort, 'good-1'), e.sipPort);
    expect((await peer.take((t) => t.includes('good-1'), 5000, 'answer to good-1')).startsWith('SIP/2.0 200')).toBe(true);
    expect(app.events().filter((x) => x.event === 'options')).toHaveLength(1);
    const c = e.counters().core;
    expect(c.badRequests).toBeGreaterThanOrEqual(2);
    expect(c.forgedResponses + c.parseErrors).toBeGreaterThanOrEqual(2);
  });

  it('a retransmitted request reaches the app once and gets the same final response again', async () => {
    const e = await startTestEngine();
    const app = await startConnectedApp('uas.mjs', e, {}, ['options']);
    const peer = await UdpPeer.open(); peers.push(peer);
    const m = opt(peer.port, e.sipPort, 'rt-1');
    await peer.send(m, e.sipPort);
    const first = await peer.take((t) => t.startsWith('SIP/2.0 200'), 5000, 'first 200');
    await peer.send(m, e.sipPort);
    const again = await peer.take((t) => t.startsWith('SIP/2.0 200'), 5000, 'resent 200');
    expect(again).toBe(first);
    await new Promise((r) => setTimeout(r, 200));
    expect(app.events().filter((x) => x.event === 'options')).toHaveLength(1);
  });
});

describe('cdr events (cdrs: true)', () => {
  it('an app that routed cdr:* gets attempt, start (uas) and stop (normal-release) for a call', async () => {
    const e = await startTestEngine({ cdrs: true });
    await startConnectedApp('uas.mjs', e, {}, ['invite']);
    const s = connect({ host: '127.0.0.1', port: e.wirePort });
    await new Promise((r) => s.once('connect', r));
    const frames: string[] = [];
    const d = new FrameDecoder();
    s.on('data', (b) => frames.push(...d.push(b).frames));
    s.write(encodeFrame('c0|authenticate|cymru|'));
    for (const k of ['attempt', 'start', 'stop']) s.write(encodeFrame(`c-${k}|route|cdr:${k}`));
    await waitFor(() => e.wire.hasRoute('cdr:stop'), 3000, 10, 'cdr routes');
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-m', '1'], { timeoutS: 15 });
    expect(r.successful).toBe(1);
    await waitFor(() => frames.some((f) => f.includes('|cdr:stop|')), 5000, 10, 'cdr:stop');
    s.destroy();
    const cdr = frames.filter((f) => /^[^|]*\|cdr:/.test(f)).map((f) => f.split('\r\n')[0]!.split('|'));
    expect(cdr.map((t) => t[1])).toEqual(['cdr:attempt', 'cdr:start', 'cdr:stop']);
    expect(cdr[0]![2]).toBe('network');
    expect(cdr[0]).toHaveLength(4);
    expect(cdr[1]!.slice(2)).toEqual(['application', expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{6}$/), 'uas']);
    expect(cdr[2]!.slice(2)).toEqual(['network', expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{6}$/), 'normal-release']);
    expect(frames.find((f) => f.includes('|cdr:start|'))).toContain('\r\nSIP/2.0 200 OK\r\n');
  });
  it('answers a malformed request with fixed wording, never echoing the input (fuzz finding F1)', async () => {
    const e = await startTestEngine();
    const peer = await UdpPeer.open(); peers.push(peer);
    const long = '0'.repeat(1000);
    // A 1,000-byte method whose CSeq names another method.
    await peer.send(opt(peer.port, e.sipPort, 'f1-method').replace(/^OPTIONS /, `${long} `), e.sipPort);
    const a = await peer.take((t) => t.includes('f1-method'), 5000, 'answer to f1-method');
    expect(a.slice(0, a.indexOf('\r\n'))).toBe('SIP/2.0 400 Bad Request');
    expect(a).not.toContain('0000000000');
    // A SIP version other than 2.0: 505 in peergate's words, the version not echoed.
    await peer.send(opt(peer.port, e.sipPort, 'f1-version').replace(' SIP/2.0\r\n', ' SIP/7.0\r\n'), e.sipPort);
    const b = await peer.take((t) => t.includes('f1-version'), 5000, 'answer to f1-version');
    expect(b.slice(0, b.indexOf('\r\n'))).toBe('SIP/2.0 505 Version Not Supported');
    expect(b).not.toContain('SIP/7.0');
  });
  it('consumes the X-Peergate TLS app headers: never on the wire, and a pin that cannot apply refuses the request', async () => {
    const e = await startTestEngine();
    const uas = await UdpPeer.open(); peers.push(uas);
    const target = `sip:uas@127.0.0.1:${uas.port}`;
    const named = await startConnectedApp('uac.mjs', e, { UAC_TARGET: target, CALLS: '1', HOLD_MS: '0', UAC_HEADERS: JSON.stringify({ 'X-Peergate-TLS-Server-Name': 'name.test' }) });
    const invite = await uas.take((t) => t.startsWith('INVITE '), 5000, 'INVITE at the uas');
    expect(invite).toContain('X-Call-Index: 0');
    expect(invite).not.toMatch(/^X-Peergate-/im);
    named.stop();
    // A pin for a next hop that is not TLS cannot be enforced: refused, nothing sent.
    const other = await UdpPeer.open(); peers.push(other);
    const pinned = await startConnectedApp('uac.mjs', e, { UAC_TARGET: `sip:uas@127.0.0.1:${other.port}`, CALLS: '1', UAC_HEADERS: JSON.stringify({ 'X-Peergate-TLS-Pin': 'san=x.test' }) });
    const failed = await pinned.waitEvent((x) => x.event === 'uac-failed', 5000, 'uac-failed');
    expect(String(failed.message)).toMatch(/invalid TLS pin/);
    await new Promise((r) => setTimeout(r, 300));
    expect(other.received).toHaveLength(0);
  });
});
