// The media stage against a real userspace rtpengine, driven as the B2BUA drives it, with
// real RTP/SRTP packets between loopback test endpoints.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import client from 'prom-client';
import { MediaStage, type SideMedia } from '../../src/sbc/media/index.js';
import { SideMediaSchema } from '../../src/sbc/media/schema.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { stopInOrder, stopProcessNow } from '../helpers/procs.js';
import {
  RtpEndpoint, DtlsSrtpPeer, Srtp, audioSdp, rtcpReceiverReport, makeStream, newInlineKey, parseRtp, sdpCrypto, sdpMediaAddress, sendAll,
} from '../helpers/rtp.js';

const side = (p: Record<string, unknown> = {}): SideMedia => SideMediaSchema.parse(p);
const carrier = side({ srtp: 'required', suites: ['AES_CM_128_HMAC_SHA1_80'], dtls: 'refused' });
const core = side({ srtp: 'forbidden' });
const legacy = side({ srtp: 'optional' });
const webrtc = side({ srtp: 'required', dtls: 'required' });

/** What the core side's SDP says about itself; none of it may reach a peer. */
const CORE_ORIGIN = 'core-pbx-internal 77 1 IN IP4 10.20.30.40';
const CORE_CANDIDATE = 'a=candidate:1 1 UDP 2130706431 10.20.30.40 40000 typ host';

let rtpe: TestRtpengine;
let stage: MediaStage;
const endpoints: { close(): Promise<void> }[] = [];
const callIds: string[] = [];

async function ep(): Promise<RtpEndpoint> {
  const e = await RtpEndpoint.open();
  endpoints.push(e);
  return e;
}
function newCallId(): string {
  const id = `media-it-${randomBytes(6).toString('hex')}`;
  callIds.push(id);
  return id;
}
async function refusals(reason: string): Promise<number> {
  const m = await client.register.getSingleMetric('peergate_media_refusals_total')!.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
/** Assert an SDP sent toward a peer carries nothing of the core side. */
function expectNoCoreTopology(sdp: string, corePort: number): void {
  expect(sdp).not.toContain('10.20.30.40');
  expect(sdp).not.toContain('core-pbx-internal');
  expect(sdp).not.toMatch(new RegExp(`^m=audio ${corePort} `, 'm'));
  expect(sdp).not.toContain('a=candidate');
  expect(sdp).toMatch(/^o=- /m);
}

beforeAll(async () => {
  rtpe = await startRtpengine();
  stage = await MediaStage.create({ rtpengine: [{ address: rtpe.address, weight: 1 }], timeout_ms: 2000, health_interval_ms: 200 });
});

afterEach(async () => {
  for (const id of callIds.splice(0)) await stage.delete(id);
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  // The stage must leave nothing behind in rtpengine.
  expect(await rtpe.calls()).toEqual([]);
});

afterAll(() => stopInOrder(stage, rtpe));

/** Peer (SDES-SRTP) calls core (plain): offer from the peer, answer from the core. */
async function peerSrtpToCorePlain(withRtcp = false) {
  let P: RtpEndpoint, C: RtpEndpoint, Prtcp: RtpEndpoint | undefined, Crtcp: RtpEndpoint | undefined;
  if (withRtcp) {
    const p = await RtpEndpoint.openPair();
    const c = await RtpEndpoint.openPair();
    endpoints.push(p.rtp, p.rtcp, c.rtp, c.rtcp);
    ({ rtp: P, rtcp: Prtcp } = p);
    ({ rtp: C, rtcp: Crtcp } = c);
  } else {
    P = await ep();
    C = await ep();
  }
  const callId = newCallId();
  const peerKey = newInlineKey();
  const offer = await stage.offer({
    callId, fromTag: 'peer-tag', from: 'peer', fromPolicy: carrier, toPolicy: core,
    sdp: audioSdp({ port: P.port, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${peerKey}`, 'a=x-unknown-attr:passes through'] }),
  });
  expect(offer.ok).toBe(true);
  if (!offer.ok) throw new Error('offer refused');
  const towardCore = sdpMediaAddress(offer.sdp);
  expect(towardCore.proto).toBe('RTP/AVP');
  expect(sdpCrypto(offer.sdp)).toEqual([]);
  expect(offer.sdp).toContain('a=x-unknown-attr:passes through');

  const answer = await stage.answer({
    callId, fromTag: 'peer-tag', toTag: 'core-tag',
    sdp: audioSdp({ port: C.port, origin: CORE_ORIGIN, lines: [CORE_CANDIDATE] }),
  });
  expect(answer.ok).toBe(true);
  if (!answer.ok) throw new Error('answer refused');
  const towardPeer = sdpMediaAddress(answer.sdp);
  expect(towardPeer.proto).toBe('RTP/SAVP');
  expectNoCoreTopology(answer.sdp, C.port);
  const crypto = sdpCrypto(answer.sdp);
  expect(crypto.map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
  expect(answer.sdp).not.toContain('a=fingerprint');
  return {
    P, C, Prtcp, Crtcp, callId,
    peerTx: Srtp.fromInline(peerKey), // what the peer encrypts with
    peerRx: Srtp.fromInline(crypto[0]!.inline), // rtpengine's key toward the peer
    portForPeer: towardPeer.port, portForCore: towardCore.port,
  };
}

describe('media stage with a real rtpengine', () => {
  it('peer SRTP ↔ core plain RTP: payloads byte-identical both ways', async () => {
    const c = await peerSrtpToCorePlain();
    const fromPeer = makeStream(5, 0x11111111);
    await sendAll(c.P, fromPeer.map((p) => c.peerTx.protect(p)), c.portForPeer);
    const atCore = await c.C.waitFor(5);
    expect(atCore).toHaveLength(5);
    for (let i = 0; i < 5; i++) {
      const got = parseRtp(atCore[i]!.data);
      const sent = parseRtp(fromPeer[i]!);
      expect(got.payload.equals(sent.payload)).toBe(true);
      expect(got.seq).toBe(sent.seq);
      expect(got.ssrc).toBe(sent.ssrc);
    }
    const fromCore = makeStream(5, 0x22222222, 5000);
    await sendAll(c.C, fromCore, c.portForCore);
    const atPeer = await c.P.waitFor(5);
    expect(atPeer).toHaveLength(5);
    for (let i = 0; i < 5; i++) {
      expect(atPeer[i]!.data.length).toBe(fromCore[i]!.length + 10); // 80-bit tag
      const clear = c.peerRx.unprotect(atPeer[i]!.data);
      expect(clear, 'SRTP toward the peer must authenticate with the key rtpengine offered').toBeDefined();
      expect(parseRtp(clear!).payload.equals(parseRtp(fromCore[i]!).payload)).toBe(true);
    }
    const stats = await stage.query(c.callId);
    expect(stats!.packets).toBeGreaterThanOrEqual(10);
    expect(stats!.errors).toBe(0);
  });

  it('SRTCP toward the peer is encrypted and authenticated; SRTCP from the peer reaches the core as RTCP', async () => {
    const c = await peerSrtpToCorePlain(true);
    const rr = rtcpReceiverReport(0x22222222, 0x11111111);
    await sendAll(c.Crtcp!, [rr, rr], c.portForCore + 1);
    const atPeer = await c.Prtcp!.waitFor(1);
    expect(atPeer.length).toBeGreaterThan(0);
    for (const r of atPeer) {
      const opened = c.peerRx.unprotectRtcp(r.data);
      expect(opened, 'SRTCP must authenticate with the key offered to the peer').toBeDefined();
      expect(opened!.encrypted).toBe(true);
      expect(opened!.rtcp.readUInt32BE(4)).toBe(0x22222222);
    }
    const fromPeer = rtcpReceiverReport(0x11111111, 0x22222222, 'peer@example');
    await sendAll(c.Prtcp!, [c.peerTx.protectRtcp(fromPeer)], c.portForPeer + 1);
    const atCore = await c.Crtcp!.waitFor(1);
    expect(atCore.length).toBeGreaterThan(0);
    expect(atCore[0]!.data.readUInt32BE(4)).toBe(0x11111111);
    expect(atCore[0]!.data.includes(Buffer.from('peer@example'))).toBe(true);
  });

  it('drops packets with a bad auth tag and packets from a foreign source after learning', async () => {
    const c = await peerSrtpToCorePlain();
    const stream = makeStream(12, 0x33333333);
    await sendAll(c.P, stream.slice(0, 3).map((p) => c.peerTx.protect(p)), c.portForPeer);
    expect(await c.C.waitFor(3)).toHaveLength(3);

    // Tampered tags, from the right source.
    const tampered = stream.slice(3, 6).map((p) => { const s = c.peerTx.protect(p); s[s.length - 1]! ^= 0xff; return s; });
    await sendAll(c.P, tampered, c.portForPeer);
    // Correctly encrypted, but from a foreign source after the peer's address was learned.
    const F = await ep();
    await sendAll(F, stream.slice(6, 9).map((p) => c.peerTx.protect(p)), c.portForPeer);
    expect(await c.C.settle(300, 3)).toEqual([]);

    // The stream itself still works.
    await sendAll(c.P, stream.slice(9, 12).map((p) => c.peerTx.protect(p)), c.portForPeer);
    const after = await c.C.waitFor(6);
    expect(after.slice(3).map((r) => parseRtp(r.data).seq)).toEqual([1009, 1010, 1011]);

    // The core's stream too: learned from its first packet, a foreign source cannot inject.
    const coreStream = makeStream(5, 0x44444444, 7000);
    await sendAll(c.C, coreStream.slice(0, 2), c.portForCore);
    expect(await c.P.waitFor(2)).toHaveLength(2);
    const F2 = await ep();
    await sendAll(F2, coreStream.slice(2), c.portForCore);
    expect(await c.P.settle(300, 2)).toEqual([]);

    const stats = await stage.query(c.callId);
    expect(stats!.errors).toBeGreaterThanOrEqual(3);
    const final = await stage.delete(c.callId);
    expect(final!.errors).toBeGreaterThanOrEqual(3);
    expect(await stage.delete(c.callId)).toBeUndefined(); // idempotent
  });

  it('core plain → SRTP-required peer: offer toward the peer is SRTP with the allowed suite only, media decrypts', async () => {
    const C = await ep();
    const P = await ep();
    const callId = newCallId();
    const offer = await stage.offer({
      callId, fromTag: 'core-tag', from: 'core', fromPolicy: core, toPolicy: carrier,
      sdp: audioSdp({ port: C.port, origin: CORE_ORIGIN, lines: [CORE_CANDIDATE] }),
    });
    if (!offer.ok) throw new Error(`offer refused: ${offer.warning}`);
    expectNoCoreTopology(offer.sdp, C.port);
    const towardPeer = sdpMediaAddress(offer.sdp);
    expect(towardPeer.proto).toBe('RTP/SAVP');
    const offered = sdpCrypto(offer.sdp);
    expect(offered.map((x) => x.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    expect(offer.sdp).not.toContain('a=fingerprint');

    const peerKey = newInlineKey();
    const answer = await stage.answer({
      callId, fromTag: 'core-tag', toTag: 'peer-tag',
      sdp: audioSdp({ port: P.port, proto: 'RTP/SAVP', lines: [`a=crypto:${offered[0]!.tag} AES_CM_128_HMAC_SHA1_80 inline:${peerKey}`] }),
    });
    if (!answer.ok) throw new Error(`answer refused: ${answer.warning}`);
    const towardCore = sdpMediaAddress(answer.sdp);
    expect(towardCore.proto).toBe('RTP/AVP');

    const fromCore = makeStream(5, 0x55555555);
    await sendAll(C, fromCore, towardCore.port);
    const atPeer = await P.waitFor(5);
    expect(atPeer).toHaveLength(5);
    const rx = Srtp.fromInline(offered[0]!.inline);
    atPeer.forEach((r, i) => expect(parseRtp(rx.unprotect(r.data)!).payload.equals(parseRtp(fromCore[i]!).payload)).toBe(true));

    const tx = Srtp.fromInline(peerKey);
    const fromPeer = makeStream(5, 0x66666666, 3000);
    await sendAll(P, fromPeer.map((p) => tx.protect(p)), towardPeer.port);
    const atCore = await C.waitFor(5);
    expect(atCore.map((r) => parseRtp(r.data).payload.toString('hex'))).toEqual(fromPeer.map((p) => parseRtp(p).payload.toString('hex')));
  });

  it('refuses plain offers from or toward an SRTP-required side, and UNENCRYPTED_SRTCP, before asking rtpengine', async () => {
    const P = await ep();
    const before = await refusals('srtp_required');
    const plainFromCarrier = await stage.offer({ callId: newCallId(), fromTag: 'a', from: 'peer', fromPolicy: carrier, toPolicy: core, sdp: audioSdp({ port: P.port }) });
    expect(plainFromCarrier).toMatchObject({ ok: false, status: 488, reason: 'srtp_required' });
    if (plainFromCarrier.ok) return;
    expect(plainFromCarrier.warning).toMatch(/^302 peergate "SRTP required/);
    expect(await refusals('srtp_required')).toBe(before + 1);

    const plainTowardCarrier = await stage.offer({ callId: newCallId(), fromTag: 'a', from: 'peer', fromPolicy: legacy, toPolicy: carrier, sdp: audioSdp({ port: P.port }) });
    expect(plainTowardCarrier).toMatchObject({ ok: false, status: 488, reason: 'srtp_required_toward' });

    const weak = await stage.offer({
      callId: newCallId(), fromTag: 'a', from: 'peer', fromPolicy: carrier, toPolicy: core,
      sdp: audioSdp({ port: P.port, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${newInlineKey()} UNENCRYPTED_SRTCP`] }),
    });
    expect(weak).toMatchObject({ ok: false, status: 488, reason: 'insecure_srtp_params' });

    const wrongSuite = await stage.offer({
      callId: newCallId(), fromTag: 'a', from: 'peer', fromPolicy: carrier, toPolicy: core,
      sdp: audioSdp({ port: P.port, proto: 'RTP/SAVP', lines: [`a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:${newInlineKey()}`] }),
    });
    expect(wrongSuite).toMatchObject({ ok: false, status: 488, reason: 'no_allowed_suite' });
    // Nothing was anchored for any of them.
    expect(await rtpe.calls()).toEqual([]);
    expect(stage.activeCalls()).toBe(0);
  });

  it('a DTLS-SRTP peer completes a handshake with rtpengine and carries media to a plain core', async () => {
    const D = await DtlsSrtpPeer.open();
    endpoints.push(D);
    const C = await ep();
    const callId = newCallId();
    const offer = await stage.offer({
      callId, fromTag: 'peer-tag', from: 'peer', fromPolicy: webrtc, toPolicy: core,
      sdp: audioSdp({ port: D.ep.port, proto: 'UDP/TLS/RTP/SAVP', lines: D.sdpLines() }),
    });
    if (!offer.ok) throw new Error(`offer refused: ${offer.warning}`);
    expect(sdpMediaAddress(offer.sdp).proto).toBe('RTP/AVP');
    expect(offer.sdp).not.toContain('a=fingerprint');
    const answer = await stage.answer({ callId, fromTag: 'peer-tag', toTag: 'core-tag', sdp: audioSdp({ port: C.port, origin: CORE_ORIGIN }) });
    if (!answer.ok) throw new Error(`answer refused: ${answer.warning}`);
    expectNoCoreTopology(answer.sdp, C.port);
    expect(answer.sdp).toMatch(/^a=setup:active/m);
    expect(answer.sdp).toMatch(/^a=fingerprint:sha-256 /m);
    expect(sdpCrypto(answer.sdp)).toEqual([]);
    const towardPeer = sdpMediaAddress(answer.sdp);

    await Promise.race([D.connected, new Promise((_, rej) => setTimeout(() => rej(new Error('DTLS handshake timed out')), 5000))]);
    expect(D.srtpProfile).toBe(1); // SRTP_AES128_CM_HMAC_SHA1_80

    // Our side (DTLS server) finishes first; rtpengine installs its keys a moment later. Warm up
    // (same SSRC, lower sequence numbers) until media flows, bounded, then measure.
    const warmup = makeStream(60, 0x77777777, 900);
    for (let i = 0; i < warmup.length && C.received.length === 0; i++) {
      await D.ep.send(D.tx!.protect(warmup[i]!), towardPeer.port);
      await new Promise((r) => setTimeout(r, 50));
    }
    await C.settle(100);
    const base = C.received.length;
    expect(base).toBeGreaterThan(0);
    const fromPeer = makeStream(5, 0x77777777);
    await sendAll(D.ep, fromPeer.map((p) => D.tx!.protect(p)), towardPeer.port);
    const atCore = (await C.waitFor(base + 5)).slice(base);
    expect(atCore.map((r) => parseRtp(r.data).payload.toString('hex'))).toEqual(fromPeer.map((p) => parseRtp(p).payload.toString('hex')));

    const fromCore = makeStream(5, 0x78787878, 9000);
    await sendAll(C, fromCore, sdpMediaAddress(offer.sdp).port);
    const atPeer = await D.ep.waitFor(5);
    expect(atPeer).toHaveLength(5);
    atPeer.forEach((r, i) => expect(parseRtp(D.rx!.unprotect(r.data)!).payload.equals(parseRtp(fromCore[i]!).payload)).toBe(true));
  });

  it('a CANCEL racing the offer (delete while rtpengine has not answered yet) leaves no session', async () => {
    const P = await ep();
    const ids = Array.from({ length: 5 }, () => newCallId());
    const offers = ids.map((callId) => stage.offer({ callId, fromTag: 'a', from: 'peer', fromPolicy: legacy, toPolicy: core, sdp: audioSdp({ port: P.port }) }));
    const deletes = ids.map((id) => stage.delete(id)); // issued before any offer reply arrived
    const results = await Promise.all(offers);
    await Promise.all(deletes);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(stage.activeCalls()).toBe(0);
    expect(await rtpe.calls()).toEqual([]);
  });

  it('the sessions gauge counts a call until rtpengine has answered its delete', async () => {
    // A scrape reading 0 must mean rtpengine holds none of them: an operator (or a test)
    // checking for leaks would otherwise see a session the gauge already dropped.
    const sessions = async () => (await client.register.getSingleMetric('peergate_media_sessions')!.get()).values[0]?.value ?? 0;
    const P = await ep();
    const callId = newCallId();
    const r = await stage.offer({ callId, fromTag: 'a', from: 'peer', fromPolicy: legacy, toPolicy: core, sdp: audioSdp({ port: P.port }) });
    expect(r.ok).toBe(true);
    expect(await sessions()).toBe(1);
    // Every thread stopped before the delete goes out (a queued SIGSTOP alone raced it).
    await stopProcessNow(rtpe.proc.pid);
    let deleted: Promise<unknown>;
    try {
      deleted = stage.delete(callId);
      await new Promise((res) => setTimeout(res, 150));
      expect(stage.activeCalls()).toBe(0);
      expect(await sessions()).toBe(1);
    } finally {
      process.kill(rtpe.proc.pid, 'SIGCONT');
    }
    await deleted;
    expect(await sessions()).toBe(0);
    expect(await rtpe.calls()).toEqual([]);
  });

  it('counts calls by media mode and times control commands per instance', async () => {
    const modes = async () => (await client.register.getSingleMetric('peergate_media_calls_total')!.get()).values.find((v) => v.labels.mode === 'sdes>plain')?.value ?? 0;
    const before = await modes();
    const c = await peerSrtpToCorePlain();
    expect(await modes()).toBe(before + 1);
    const h = await client.register.getSingleMetric('peergate_rtpengine_control_seconds')!.get();
    const offers = h.values.find((v) => v.labels.rtpengine === rtpe.address && v.labels.command === 'offer' && (v as { metricName?: string }).metricName === 'peergate_rtpengine_control_seconds_count');
    expect(offers?.value).toBeGreaterThan(0);
    await sendAll(c.P, makeStream(4, 0x01020304).map((p) => c.peerTx.protect(p)), c.portForPeer);
    await c.C.waitFor(4);
    const pk = async () => (await client.register.getSingleMetric('peergate_media_packets_total')!.get()).values[0]?.value ?? 0;
    const p0 = await pk();
    await stage.delete(c.callId);
    expect(await pk()).toBeGreaterThanOrEqual(p0 + 4);
  });

  it('ICE keep offers only rtpengine\'s own candidates; codecs are stripped per policy', async () => {
    const C = await ep();
    const callId = newCallId();
    const offer = await stage.offer({
      callId, fromTag: 'core-tag', from: 'core', fromPolicy: core, toPolicy: side({ ice: 'keep', codecs: { strip: ['telephone-event'] } }),
      sdp: audioSdp({ port: C.port, origin: CORE_ORIGIN, lines: ['a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx', CORE_CANDIDATE] }),
    });
    if (!offer.ok) throw new Error(`offer refused: ${offer.warning}`);
    const candidates = offer.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    expect(candidates.length).toBeGreaterThan(0);
    for (const c of candidates) expect(c.split(' ')[4]).toBe('127.0.0.1');
    expect(offer.sdp).not.toContain('10.20.30.40');
    expect(offer.sdp).not.toContain('a=ice-ufrag:abcd');
    expect(offer.sdp).not.toContain('telephone-event');
    expect(sdpMediaAddress(offer.sdp).port).not.toBe(C.port);
    expect(offer.sdp).toMatch(/^m=audio \d+ RTP\/AVP 0\r$/m);
  });

  it('early media (183) then 200, and a re-offer from the core moving its media port', async () => {
    const c = await peerSrtpToCorePlain(); // the answer in there plays the 183
    const final = await stage.answer({ callId: c.callId, fromTag: 'peer-tag', toTag: 'core-tag', sdp: audioSdp({ port: c.C.port, origin: CORE_ORIGIN }) });
    expect(final.ok).toBe(true);

    // re-INVITE from the core: new port; rtpengine's ports toward each side stay.
    const C2 = await ep();
    const reoffer = await stage.offer({
      callId: c.callId, fromTag: 'core-tag', toTag: 'peer-tag', from: 'core', fromPolicy: core, toPolicy: carrier,
      sdp: audioSdp({ port: C2.port, origin: 'core-pbx-internal 77 2 IN IP4 10.20.30.40' }),
    });
    if (!reoffer.ok) throw new Error(`re-offer refused: ${reoffer.warning}`);
    expectNoCoreTopology(reoffer.sdp, C2.port);
    const reCrypto = sdpCrypto(reoffer.sdp);
    expect(reCrypto.length).toBeGreaterThan(0);
    const reanswer = await stage.answer({
      callId: c.callId, fromTag: 'core-tag', toTag: 'peer-tag',
      sdp: audioSdp({ port: c.P.port, proto: 'RTP/SAVP', lines: [`a=crypto:${reCrypto[0]!.tag} ${reCrypto[0]!.suite} inline:${newInlineKey()}`] }),
    });
    if (!reanswer.ok) throw new Error(`re-answer refused: ${reanswer.warning}`);
    const fromCore = makeStream(3, 0x12121212);
    await sendAll(C2, fromCore, sdpMediaAddress(reanswer.sdp).port);
    expect(await c.P.waitFor(3)).toHaveLength(3);
  });
});
