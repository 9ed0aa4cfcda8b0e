// SIP parser benchmark: a typical INVITE with SDP (1,002 bytes) parsed on one core, plus the
// cost of the lookups the transaction layer does on every message and of serializing.
// Run: npx tsx bench/parser.bench.ts   (prints medians of 7 runs)
import { getHeader, getHeaderList, getHeaders, parseMessage, serialize, type SipMessage } from '../src/engine/message/index.js';
import { getTag, parseCSeq, parseVia } from '../src/sip/grammar/index.js';
import { ctlScanKind } from '../src/sip/grammar/ctl-scan.js';

const sdp = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 198.51.100.10',
  's=-',
  'c=IN IP4 198.51.100.10',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

const invite = Buffer.from(
  [
    'INVITE sip:+14155550100@peer.example.net:5060;user=phone SIP/2.0',
    'Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK-524287-1---6f3e2a9c1d;rport',
    'Max-Forwards: 69',
    'Contact: <sip:+12125550199@198.51.100.10:5060;transport=udp>',
    'To: <sip:+14155550100@peer.example.net;user=phone>',
    'From: "Alice Example" <sip:+12125550199@carrier.example.com;user=phone>;tag=4f2a8c1e',
    'Call-ID: 8d1f0c3a-6b2e-4f7a-9c5d-1e2f3a4b5c6d@198.51.100.10',
    'CSeq: 1 INVITE',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, REFER, NOTIFY, INFO',
    'Supported: 100rel, timer, replaces',
    'Session-Expires: 1800;refresher=uac',
    'Min-SE: 90',
    'User-Agent: ExampleSBC/4.2',
    'P-Asserted-Identity: <sip:+12125550199@carrier.example.com;user=phone>',
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n'),
);

/** Median of several runs, in operations per second of this process's CPU time (user+system,
 *  from process.cpuUsage): on a shared host, wall time also counts the time other processes held
 *  the core, while CPU time is what one core spends on the work. Wall-clock rate shown too. */
function runs(label: string, iterations: number, fn: () => void): void {
  const RUNS = 7;
  const cpuRates: number[] = [];
  const wallRates: number[] = [];
  for (let i = 0; i < iterations; i++) fn(); // warm-up
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    const wallNs = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    cpuRates.push(iterations / ((c.user + c.system) / 1e6));
    wallRates.push(iterations / (wallNs / 1e9));
  }
  cpuRates.sort((a, b) => a - b);
  wallRates.sort((a, b) => a - b);
  const median = cpuRates[Math.floor(RUNS / 2)]!;
  const wall = wallRates[Math.floor(RUNS / 2)]!;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`${label.padEnd(46)} ${fmt(median).padStart(11)} ops/s per CPU-second (${(1e9 / median).toFixed(0)} ns/op; wall ${fmt(wall)} ops/s)`);
}

const first = parseMessage(invite);
if (!first.ok) throw new Error(first.error);
const msg: SipMessage = first.message;
let sink = 0;

console.log(`INVITE with SDP: ${invite.length} bytes, ${msg.headers.length} header fields; header scan: ${ctlScanKind()}`);
runs('parseMessage (typical INVITE)', 100_000, () => {
  const r = parseMessage(invite);
  if (r.ok) sink += r.message.headers.length;
});
runs('transaction keys: Via branch, CSeq, Call-ID, tags', 200_000, () => {
  const via = parseVia(getHeader(msg, 'via')!);
  const cseq = parseCSeq(getHeader(msg, 'cseq')!);
  const callId = getHeader(msg, 'call-id');
  const fromTag = getTag(getHeader(msg, 'from')!);
  const toTag = getTag(getHeader(msg, 'to')!);
  sink += (via?.params.get('branch')?.length ?? 0) + (cseq?.seq ?? 0) + (callId?.length ?? 0) + (fromTag?.length ?? 0) + (toTag?.length ?? 0);
});
runs('getHeader(msg, "call-id")', 2_000_000, () => {
  sink += getHeader(msg, 'call-id')!.length;
});
runs('getHeaders(msg, "via")', 1_000_000, () => {
  sink += getHeaders(msg, 'via').length;
});
runs('getHeaderList(msg, "allow")', 200_000, () => {
  sink += getHeaderList(msg, 'allow').length;
});
runs('serialize (typical INVITE)', 100_000, () => {
  sink += serialize(msg).length;
});
// Reference on the same machine and moment: the host is shared, so absolute numbers move with
// its load; the ratio to JSON.parse of a similar-sized document is the steadier figure.
const json = JSON.stringify(Object.fromEntries(msg.headers.map((h, i) => [`${h.name}-${i}`, h.value])));
runs(`reference: JSON.parse of ${json.length} bytes`, 100_000, () => {
  sink += (JSON.parse(json) as object) ? 1 : 0;
});
if (sink === 42) console.log('');
