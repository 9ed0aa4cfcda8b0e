// Heap per transaction waiting in its RFC 3261 timer window, and per held dialog, through the
// real UA core and transaction layer (parser, core, layer; no sockets, a manual clock).
// Run: npx tsx bench/memory.bench.ts [--n 20000]
// Scenarios (each in a fresh core, heap measured after two gc()):
//   nist-completed  OPTIONS from a peer answered 200 by the app: server transaction in Completed (Timer J)
//   ist-accepted    INVITE answered 200 by the app and ACKed: server INVITE in Accepted (Timer L)
//   nict-completed  OPTIONS sent by the app answered 200 by the peer: client transaction in Completed (Timer K)
//   ict-completed   INVITE sent by the app answered 486: client INVITE in Completed (Timer D)
//   held-dialogs    INVITE answered 200 and ACKed, then every transaction timer expired: dialogs only
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SendResult, SendTarget } from '../src/engine/transport/types.js';
import { ManualClock } from '../test/helpers/manual-clock.js';
import type { AppConnection, WireServer } from '../src/engine/wire/server.js';
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
  const frames: string[] = [];
  const app = { id: 1, closed: false, send: (p: string) => { frames.push(p); } } as unknown as AppConnection;
  const wire = { setHandler: () => {}, pickApp: () => app } as unknown as WireServer;
  const ok: SendResult = { ok: true, local: LOCAL, bytes: 0 };
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b),
    transport: { send: (_t: SendTarget, bytes: Buffer) => { lastSent = bytes.toString('latin1'); return Promise.resolve(ok); } },
  });
  const feed = (text: string) => core.onPacket({ data: Buffer.from(text), source: PEER, local: LOCAL });
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
    run: (h, i) => {
      h.feed(invite(`c${i}`));
      h.fromApp(token(h.takeFrame(), 8), '', `SIP/2.0 200 OK\r\nContact: <sip:b@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`);
      const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(h.sent())![1]!;
      h.feed(`ACK sip:b@127.0.0.1:5070 SIP/2.0\r\n${hdrs(`c${i}`, `a${i}`, '1 ACK', tag)}Content-Length: 0\r\n\r\n`);
      h.clearFrames();
    },
    live: (h) => h.core.stats().serverTransactions,
  },
  'nict-completed': clientCompleted('OPTIONS', 'n', '200 OK'),
  'ict-completed': clientCompleted('INVITE', 'i', '486 Busy Here'),
  'held-dialogs': {
    run: (h, i) => scenarios['ist-accepted']!.run(h, i),
    after: (h) => h.clock.advance(40_000),
    live: (h) => h.core.stats().dialogs,
  },
};

function reply(req: string, status: string, toTag: string): string {
  const line = (name: string) => req.split('\r\n').find((l) => l.startsWith(`${name}: `))!;
  return `SIP/2.0 ${status}\r\n${line('Via')}\r\n${line('From')}\r\n${line('To')};tag=${toTag}\r\n${line('Call-ID')}\r\n${line('CSeq')}\r\nContent-Length: 0\r\n\r\n`;
}

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
console.log(`node ${process.version}, n=${N}; bytes of heap (+ArrayBuffers) per live item, after gc`);
for (const [name, s] of Object.entries(scenarios)) {
  if (only && only !== name) continue;
  const h = harness();
  // Warm up code paths and the clock's table so they are not counted.
  for (let i = 0; i < 200; i++) s.run(h, -1 - i);
  h.clock.advance(70_000);
  const before = heap();
  for (let i = 0; i < N; i++) s.run(h, i);
  s.after?.(h);
  const live = s.live(h);
  const after = heap();
  const per = (after - before) / N;
  console.log(`${name.padEnd(16)} live=${String(live).padStart(6)} (pending timers ${h.clock.pending})  ${per.toFixed(0).padStart(6)} B each`);
  h.core.close();
}
