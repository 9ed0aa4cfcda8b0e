// SRTP policy end to end through `peergate start` (RFC 6404 §4.13): a peer that must encrypt
// calls the core over SIP; its SRTP reaches the core as plain RTP with identical payloads and
// back; a plain offer from it is refused with 488 (the bid-down defence); no session is left
// on rtpengine afterwards.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { freePorts, waitFor, stopInOrder } from '../helpers/procs.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { RtpEndpoint, Srtp, audioSdp, makeStream, newInlineKey, parseRtp, sdpCrypto, sdpMediaAddress, sendAll } from '../helpers/rtp.js';

let pg: RunningPeergate;
let p: { peer: number; core: number; ops: number };
let rtpengine: TestRtpengine;
let coreSip: Socket;
let coreRtp: RtpEndpoint;
/** The SDP the core received in the last INVITE. */
let coreGotSdp = '';

/** A SIP message's header value and body (enough for these tests). */
function header(msg: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(msg)?.[1]?.trim();
}
const bodyOf = (msg: string) => msg.slice(msg.indexOf('\r\n\r\n') + 4);

/** The core: answers INVITE 200 with plain RTP toward `coreRtp`, BYE 200. */
async function startCore(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, CORE_IP, () => r()));
  s.on('message', (m, rinfo) => {
    const msg = m.toString();
    const method = msg.slice(0, msg.indexOf(' '));
    if (method !== 'INVITE' && method !== 'BYE') return;
    const vias = msg.split('\r\n').filter((l) => /^Via:/i.test(l)).join('\r\n');
    const common = `${vias}\r\nFrom: ${header(msg, 'From')}\r\nTo: ${header(msg, 'To')}${method === 'INVITE' ? ';tag=core1' : ''}\r\nCall-ID: ${header(msg, 'Call-ID')}\r\nCSeq: ${header(msg, 'CSeq')}\r\n`;
    if (method === 'INVITE') {
      coreGotSdp = bodyOf(msg);
      const sdp = audioSdp({ port: coreRtp.port, origin: 'core 1 1 IN IP4 127.0.0.1' });
      s.send(`SIP/2.0 200 OK\r\n${common}Contact: <sip:core@${CORE_IP}:${port}>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`, rinfo.port, rinfo.address);
    } else {
      s.send(`SIP/2.0 200 OK\r\n${common}Content-Length: 0\r\n\r\n`, rinfo.port, rinfo.address);
    }
  });
  return s;
}

/** The peer's side of one call: INVITE with `sdp`, waits for the final response, ACKs a 200. */
async function peerCall(sdp: string) {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, PEER_IP, () => r()));
  const lp = s.address().port;
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  const callId = `media-${Math.random().toString(16).slice(2)}`;
  const base = (method: string, cseq: number, branch: string, toTag = '') =>
    `Via: SIP/2.0/UDP ${PEER_IP}:${lp};branch=z9hG4bK-${branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001@${PEER_IP}>;tag=peer1\r\n` +
    `To: <sip:+15551230000@127.0.0.1>${toTag}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\nContact: <sip:peer@${PEER_IP}:${lp}>\r\n`;
  s.send(`INVITE sip:+15551230000@127.0.0.1:${p.peer} SIP/2.0\r\n${base('INVITE', 1, 'inv')}Content-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`, p.peer, '127.0.0.1');
  const final = (await waitFor(() => got.find((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m)), 10_000, 20, 'final response'))!;
  const status = Number(final.slice(8, 11));
  const toTag = /;tag=[^;\s>]+/.exec(header(final, 'To') ?? '')?.[0] ?? '';
  const contact = /<([^>]+)>/.exec(header(final, 'Contact') ?? '')?.[1] ?? `sip:127.0.0.1:${p.peer}`;
  if (status === 200) s.send(`ACK ${contact} SIP/2.0\r\n${base('ACK', 1, 'ack', toTag)}Content-Length: 0\r\n\r\n`, p.peer, '127.0.0.1');
  return {
    status, final, answer: bodyOf(final),
    async bye() {
      const n = got.length;
      s.send(`BYE ${contact} SIP/2.0\r\n${base('BYE', 2, 'bye', toTag)}Content-Length: 0\r\n\r\n`, p.peer, '127.0.0.1');
      await waitFor(() => got.slice(n).some((m) => m.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/i.test(m)), 5000, 20, '200 to BYE');
      s.close();
    },
    close: () => s.close(),
  };
}

beforeAll(async () => {
  const [peer, core, ops, coreSipPort] = await freePorts(4);
  p = { peer: peer!, core: core!, ops: ops! };
  coreRtp = await RtpEndpoint.open();
  coreSip = await startCore(coreSipPort!);
  rtpengine = await startRtpengine();
  pg = await startPeergate({
    listen: [listener('peer-udp', p.peer), listener('core-udp', p.core)],
    core: { targets: [`sip:${CORE_IP}:${coreSipPort}`], media: { srtp: 'forbidden' } },
    // An external rtpengine (production mode), so the test can kill and restart it.
    media: { rtpengine: [{ address: rtpengine.address }], health_interval_ms: 200, retry_after_s: 7 },
    ops: { port: p.ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, media: { srtp: 'required', suites: ['AES_CM_128_HMAC_SHA1_80'] } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg, coreSip, coreRtp, rtpengine));

describe('SRTP policy through peergate start, with real packets', () => {
  it('peer SRTP ↔ core plain RTP with identical payloads both ways; nothing left on rtpengine after BYE', async () => {
    const peerRtp = await RtpEndpoint.open();
    const peerKey = newInlineKey();
    const call = await peerCall(audioSdp({ port: peerRtp.port, address: PEER_IP, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${peerKey}`] }));
    expect(call.status).toBe(200);
    // The core was offered plain RTP on rtpengine; the peer got SRTP with rtpengine's key.
    const towardCore = sdpMediaAddress(coreGotSdp);
    expect(towardCore.proto).toBe('RTP/AVP');
    expect(coreGotSdp).not.toContain(PEER_IP);
    const towardPeer = sdpMediaAddress(call.answer);
    expect(towardPeer.proto).toBe('RTP/SAVP');
    expect(call.answer).not.toContain(CORE_IP);
    const [crypto] = sdpCrypto(call.answer);
    expect(crypto?.suite).toBe('AES_CM_128_HMAC_SHA1_80');

    const tx = Srtp.fromInline(peerKey);
    const rx = Srtp.fromInline(crypto!.inline);
    const fromPeer = makeStream(5, 0x31313131);
    await sendAll(peerRtp, fromPeer.map((pkt) => tx.protect(pkt)), towardPeer.port);
    const atCore = await coreRtp.waitFor(5);
    expect(atCore.length).toBe(5);
    for (let i = 0; i < 5; i++) expect(parseRtp(atCore[i]!.data).payload.equals(parseRtp(fromPeer[i]!).payload)).toBe(true);

    const fromCore = makeStream(5, 0x32323232, 7000);
    await sendAll(coreRtp, fromCore, towardCore.port);
    const atPeer = await peerRtp.waitFor(5);
    expect(atPeer.length).toBe(5);
    for (let i = 0; i < 5; i++) {
      const clear = rx.unprotect(atPeer[i]!.data);
      expect(clear).toBeDefined();
      expect(parseRtp(clear!).payload.equals(parseRtp(fromCore[i]!).payload)).toBe(true);
    }
    await call.bye();
    await peerRtp.close();
    await waitFor(async () => (await pg.metric('peergate_media_sessions')) === 0, 5000, 100, 'no media sessions left');
    expect(await rtpengine.calls()).toEqual([]);
  });

  it('refuses a plain-RTP offer from the SRTP-required peer with 488 and a Warning', async () => {
    const call = await peerCall(audioSdp({ port: 40000, address: PEER_IP }));
    expect(call.status).toBe(488);
    expect(header(call.final, 'Warning')).toMatch(/^3\d\d peergate "/);
    call.close();
  });

  it('refuses an offer that asks for UNENCRYPTED_SRTCP', async () => {
    const call = await peerCall(audioSdp({ port: 40002, address: PEER_IP, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${newInlineKey()} UNENCRYPTED_SRTCP`] }));
    expect(call.status).toBe(488);
    call.close();
  });

  it('rtpengine killed: the call that was up ends cleanly, new calls get 503 with Retry-After, and calls work again after its restart without restarting peergate', async () => {
    const srtpOffer = () => audioSdp({ port: 40004, address: PEER_IP, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${newInlineKey()}`] });
    const existing = await peerCall(srtpOffer());
    expect(existing.status).toBe(200);
    await rtpengine.kill();
    // The call that was up ends cleanly: its BYE is answered on both legs.
    await existing.bye();
    const down = await peerCall(srtpOffer());
    expect(down.status).toBe(503);
    expect(header(down.final, 'Retry-After')).toBe('7');
    down.close();
    await rtpengine.restart();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${p.ops}/ready`)).status === 200, 10_000, 100, 'ready again');
    const up = await peerCall(srtpOffer());
    expect(up.status).toBe(200);
    await up.bye();
  });
});
