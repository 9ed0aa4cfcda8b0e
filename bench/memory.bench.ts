// Heap per transaction waiting in its RFC 3261 timer window, and per held dialog, through the
// real UA core and transaction layer (parser, core, layer; no sockets, a manual clock).
// Run: npx tsx bench/memory.bench.ts [--n 20000]
// Scenarios (each in a fresh core, heap measured after two gc()):
//   nist-completed  OPTIONS from a peer answered 200 by the app: server transaction in Completed (Timer J)
//   ist-accepted    INVITE answered 200 by the app and ACKed: server INVITE in Accepted (Timer L)
//   nict-completed  OPTIONS sent by the app answered 200 by the peer: client transaction in Completed (Timer K)
//   ict-completed   INVITE sent by the app answered 486: client INVITE in Completed (Timer D)
//   held-dialogs    INVITE answered 200 and ACKed, then every transaction timer expired: dialogs only
//   ict-accepted-sdp  the app's INVITE (1.5 KB SDP) answered 200 + SDP and ACKed: ICT in Accepted, UAC dialog
//   held-uac-dialogs-sdp  the app's INVITE (1.5 KB SDP) answered 200 + SDP and ACKed: UAC dialogs only
//   ist-accepted-sdp, held-dialogs-sdp  the same with a realistic INVITE: carrier headers and a
//                   1.5 KB SDP offer (the size that a kept slice of the message would hold alive)
//   uas-call-ended  per call, what a steady call rate leaves waiting on the UAS side (the soak's
//                   A-leg): INVITE answered 200 and ACKed, then the peer's BYE answered 200: the
//                   INVITE in Accepted (Timer L) after its dialog ended + the BYE in Completed (Timer J)
//   uac-call-ended-sdp  the same on the UAC side (B-leg): the app's INVITE (1.5 KB SDP) answered
//                   200 and ACKed, then the app's BYE answered 200: ICT Accepted (Timer M) after its
//                   dialog ended + the BYE's NICT Completed (Timer K)
// --snapshot DIR writes a heap snapshot per scenario (use a small --n) for bench/heap-strings.ts.
// --census DIR also writes one before the N items and prints what grew per item, by constructor.
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import type { SendResult } from '../src/engine/transport/types.js';
import { heapCensus, perItemGrowth } from './heap-census.js';
import { ManualClock } from '../test/helpers/manual-clock.js';
import type { WireServer } from '../src/engine/wire/server.js';
import { fakeApp, fakeTransport } from '../test/helpers/core-fakes.js';
import { UaCore } from '../src/engine/core/ua-core.js';
import { parseMessage } from '../src/engine/message/parser.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('n', 20_000);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers; };

/** Fires due timers in batches sorted once per round: many thousands of timers (a bench, not a test: no tie rules needed). */
class BatchClock extends ManualClock {
  override advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers].filter(([, tm]) => tm.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      if (due.length === 0) break;
      for (const [id, tm] of due) { if (!this.timers.delete(id)) continue; this.t = tm.at; tm.fn(); }
    }
    this.t = end;
  }
}

const LOCAL = { protocol: 'udp' as const, address: '127.0.0.1', port: 5070 };
const PEER = { protocol: 'udp' as const, address: '127.0.0.1', port: 6000 };

function harness() {
  const clock = new BatchClock();
  let lastSent = '';
  const { app, frames } = fakeApp(1);
  const wire = { setHandler: () => {}, pickApp: () => app } as unknown as WireServer;
  const ok: SendResult = { ok: true, local: LOCAL, bytes: 0 };
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b),
    transport: fakeTransport((_t, bytes) => { lastSent = bytes.toString('latin1'); return ok; }),
  });
  const feed = (text: string, source: typeof PEER = PEER) => core.onPacket({ data: Buffer.from(text), source, local: LOCAL });
  const fromApp = (txnId: string, dialogId: string, sip: string) => core.onSip(app, ['m', 'sip', txnId, dialogId], sip);
  const takeFrame = (): string => frames.pop() ?? '';
  return { clock, core, feed, fromApp, takeFrame, sent: () => lastSent, clearFrames: () => { frames.length = 0; } };
}

const token = (frame: string, i: number): string => frame.split('\r\n')[0]!.split('|')[i] ?? '';
const hdrs = (callId: string, branch: string, cseq: string, toTag = '') =>
  `Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${branch};rport\r\nMax-Forwards: 70\r\n` +
  `From: "Alice" <sip:alice@atlanta.example.com>;tag=fa-${callId}\r\nTo: <sip:+15551230000@biloxi.example.com>${toTag ? `;tag=${toTag}` : ''}\r\n` +
  `Call-ID: ${callId}@atlanta.example.com\r\nCSeq: ${cseq}\r\nContact: <sip:alice@127.0.0.1:6000>\r\nUser-Agent: bench\r\n`;
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n';
const invite = (callId: string) => `INVITE sip:+15551230000@127.0.0.1:5070 SIP/2.0\r\n${hdrs(callId, callId, '1 INVITE')}Content-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`;
/** A carrier's INVITE: Record-Route, P-Asserted-Identity, Allow, Supported, Session-Expires and a
 *  1.5 KB SDP (audio with several codecs, SRTP crypto lines, video). */
const BIG_SDP = [
  'v=0', 'o=carrier-sbc 1733212800 1733212800 IN IP4 127.0.0.1', 's=SBC call', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 20000 RTP/SAVP 0 8 9 18 101 96', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:9 G722/8000',
  'a=rtpmap:18 G729/8000', 'a=fmtp:18 annexb=no', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16',
  'a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1;maxaveragebitrate=64000', 'a=ptime:20', 'a=maxptime:40', 'a=sendrecv',
  'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyBzdWNjZXNzKSB7|2^31|1:1',
  'a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^31|1:1',
  'a=rtcp:20001 IN IP4 127.0.0.1', 'a=rtcp-mux', 'a=ssrc:2829464281 cname:9f3c1e0a7b2d4c6e',
  'a=ssrc:2829464281 msid:stream-0 audio-track-0', 'a=ice-ufrag:8hhY', 'a=ice-pwd:asd88fgpdd777uzjYhagZg',
  'a=candidate:1 1 UDP 2130706431 127.0.0.1 20000 typ host', 'a=candidate:1 2 UDP 2130706430 127.0.0.1 20001 typ host',
  'm=video 20002 RTP/SAVP 97 98', 'a=rtpmap:97 H264/90000', 'a=fmtp:97 profile-level-id=42e01f;packetization-mode=1',
  'a=rtpmap:98 VP8/90000', 'a=rtcp-fb:97 nack', 'a=rtcp-fb:97 nack pli', 'a=rtcp-fb:97 ccm fir', 'a=rtcp-fb:98 nack',
  'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31|1:1',
  'a=ssrc:1183214151 cname:9f3c1e0a7b2d4c6e', 'a=ssrc:1183214151 msid:stream-0 video-track-0', 'a=sendrecv', '',
].join('\r\n');
const bigInvite = (callId: string) => `INVITE sip:+15551230000@127.0.0.1:5070;user=phone SIP/2.0\r\n${hdrs(callId, callId, '1 INVITE')}` +
  `Record-Route: <sip:198.51.100.7;transport=udp;lr;ftag=fa-${callId};did=5a1.c3d2>\r\nRecord-Route: <sip:203.0.113.9:5060;lr;r2=on>\r\n` +
  `P-Asserted-Identity: "Alice Example" <sip:+15550001111@atlanta.example.com;user=phone>\r\n` +
  'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY\r\nSupported: timer, replaces, 100rel\r\n' +
  `Session-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\nContent-Type: application/sdp\r\nContent-Length: ${BIG_SDP.length}\r\n\r\n${BIG_SDP}`;

/** Let the send promises' reactions run, as the event loop does between packets: a synchronous
 *  loop would keep every transaction alive through its pending reaction (a bench artifact). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

type Scenario = (h: ReturnType<typeof harness>, i: number) => void;
/** The app sends `method` (Call-ID `callIdPrefix` + i) and the far end completes it with `status`. */
const clientCompleted = (method: string, callIdPrefix: string, status: string): { run: Scenario; live: (h: ReturnType<typeof harness>) => number } => ({
  run: (h, i) => {
    h.fromApp('', '', `${method} sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: ${callIdPrefix}${i}\r\nFrom: <sip:app@localhost>;tag=ft\r\nContent-Length: 0\r\n\r\n`);
    h.feed(reply(h.sent(), status, `t${i}`));
    h.clearFrames();
  },
  live: (h) => h.core.stats().clientTransactions,
});
const scenarios: Record<string, { run: Scenario; after?: (h: ReturnType<typeof harness>) => void; live: (h: ReturnType<typeof harness>) => number }> = {
  'nist-completed': {
    run: (h, i) => {
      h.feed(`OPTIONS sip:ping@127.0.0.1:5070 SIP/2.0\r\n${hdrs(`o${i}`, `o${i}`, '1 OPTIONS')}Content-Length: 0\r\n\r\n`);
      h.fromApp(token(h.takeFrame(), 8), '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
      h.clearFrames();
    },
    live: (h) => h.core.stats().serverTransactions,
  },
  'ist-accepted': {
    run: (h, i) => accept(h, i, invite),
    live: (h) => h.core.stats().serverTransactions,
  },
  'ist-accepted-sdp': {
    run: (h, i) => accept(h, i, bigInvite),
    live: (h) => h.core.stats().serverTransactions,
  },
  'nict-completed': clientCompleted('OPTIONS', 'n', '200 OK'),
  'ict-completed': clientCompleted('INVITE', 'i', '486 Busy Here'),
  'held-dialogs': {
    run: (h, i) => accept(h, i, invite),
    after: (h) => h.clock.advance(40_000),
    live: (h) => h.core.stats().dialogs,
  },
  'ict-accepted-sdp': {
    run: placeCall,
    live: (h) => h.core.stats().clientTransactions,
  },
  'held-uac-dialogs-sdp': {
    run: placeCall,
    after: (h) => h.clock.advance(40_000),
    live: (h) => h.core.stats().dialogs,
  },
  'uas-call-ended': {
    run: (h, i) => {
      const tag = accept(h, i, invite);
      h.feed(`BYE sip:b@127.0.0.1:5070 SIP/2.0\r\n${hdrs(`c${i}`, `b${i}`, '2 BYE', tag)}Content-Length: 0\r\n\r\n`);
      h.fromApp(token(h.takeFrame(), 8), '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
      h.clearFrames();
    },
    live: (h) => h.core.stats().serverTransactions / 2,
  },
  'uac-call-ended-sdp': {
    run: (h, i) => {
      const dialogId = placeCall(h, i);
      h.fromApp('', dialogId, 'BYE sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
      // The BYE went to the 2xx's Record-Route; its answer comes from there (RFC 6404 source check).
      h.feed(reply(h.sent(), '200 OK', ''), { protocol: 'udp', address: '203.0.113.9', port: 5060 });
      h.clearFrames();
    },
    live: (h) => h.core.stats().clientTransactions / 2,
  },
  'held-dialogs-sdp': {
    run: (h, i) => accept(h, i, bigInvite),
    after: (h) => h.clock.advance(40_000),
    live: (h) => h.core.stats().dialogs,
  },
};

/** INVITE from the peer, 200 from the app (with SDP), ACK from the peer: IST in Accepted. Returns our To tag. */
function accept(h: ReturnType<typeof harness>, i: number, make: (callId: string) => string): string {
  h.feed(make(`c${i}`));
  h.fromApp(token(h.takeFrame(), 8), '', `SIP/2.0 200 OK\r\nContact: <sip:b@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`);
  const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(h.sent())![1]!;
  h.feed(`ACK sip:b@127.0.0.1:5070 SIP/2.0\r\n${hdrs(`c${i}`, `a${i}`, '1 ACK', tag)}Content-Length: 0\r\n\r\n`);
  h.clearFrames();
  return tag;
}

/** The B-leg: the app's INVITE (with the 1.5 KB SDP, as a B2BUA relays it), the peer's 200 with
 *  Record-Route and SDP, the app's ACK: a UAC dialog (ICT in Accepted until `after`). */
function placeCall(h: ReturnType<typeof harness>, i: number): string {
  h.fromApp('', '', `INVITE sip:+15551230000@127.0.0.1:6000 SIP/2.0\r\nCall-ID: u${i}-7f3a9c2e51d84b06@127.0.0.1\r\n` +
    `From: "Alice Example" <sip:+15550001111@127.0.0.1>;tag=ub-${i}-4c2f\r\nTo: <sip:+15551230000@127.0.0.1:6000>\r\n` +
    `Contact: <sip:127.0.0.1:5070>\r\nSupported: timer\r\nContent-Type: application/sdp\r\nContent-Length: ${BIG_SDP.length}\r\n\r\n${BIG_SDP}`);
  const req = h.sent();
  const line = (name: string) => req.split('\r\n').find((l) => l.startsWith(`${name}: `))!;
  h.feed(`SIP/2.0 200 OK\r\n${line('Via')}\r\nRecord-Route: <sip:203.0.113.9:5060;lr;r2=on;did=${i}.8a1>\r\n${line('From')}\r\n${line('To')};tag=ut-${i}-9d3e\r\n` +
    `${line('Call-ID')}\r\n${line('CSeq')}\r\nContact: <sip:+15551230000@127.0.0.1:6000;transport=udp>\r\nContent-Type: application/sdp\r\nContent-Length: ${BIG_SDP.length}\r\n\r\n${BIG_SDP}`);
  const frame = h.takeFrame();
  const dialogId = token(frame, 9);
  h.fromApp('', dialogId, 'ACK sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
  h.clearFrames();
  return dialogId;
}

function reply(req: string, status: string, toTag: string): string {
  const line = (name: string) => req.split('\r\n').find((l) => l.startsWith(`${name}: `))!;
  return `SIP/2.0 ${status}\r\n${line('Via')}\r\n${line('From')}\r\n${line('To')}${toTag ? `;tag=${toTag}` : ''}\r\n${line('Call-ID')}\r\n${line('CSeq')}\r\nContent-Length: 0\r\n\r\n`;
}

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const snapDir = process.argv.includes('--snapshot') ? process.argv[process.argv.indexOf('--snapshot') + 1] : undefined;
const censusDir = process.argv.includes('--census') ? process.argv[process.argv.indexOf('--census') + 1] : undefined;
console.log(`node ${process.version}, n=${N}; bytes of heap (+ArrayBuffers) per live item, after gc`);
for (const [name, s] of Object.entries(scenarios)) {
  if (only && only !== name) continue;
  const h = harness();
  // Warm up code paths and the clock's table so they are not counted.
  for (let i = 0; i < 200; i++) s.run(h, -1 - i);
  h.clock.advance(70_000);
  await settle();
  const before = heap();
  const snapBefore = censusDir ? writeHeapSnapshot(join(censusDir, `${name}.before.heapsnapshot`)) : undefined;
  for (let i = 0; i < N; i++) {
    s.run(h, i);
    if (i % 100 === 99) await settle();
  }
  s.after?.(h);
  await settle();
  const live = s.live(h);
  const after = heap();
  const per = (after - before) / N;
  if (snapDir) console.log(`  snapshot ${writeHeapSnapshot(join(snapDir, `${name}.heapsnapshot`))}`);
  console.log(`${name.padEnd(16)} live=${String(live).padStart(6)} (pending timers ${h.clock.pending})  ${per.toFixed(0).padStart(6)} B each`);
  if (snapBefore) {
    const snapAfter = writeHeapSnapshot(join(censusDir!, `${name}.after.heapsnapshot`));
    for (const line of perItemGrowth(await heapCensus(snapBefore), await heapCensus(snapAfter), N, 16)) console.log(line);
  }
  h.core.close();
}
