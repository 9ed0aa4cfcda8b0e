// The per-call costs peergate cut in issue 18 item 2 (less CPU per call), each measured against
// what it replaced, in µs per call, in one process (no sockets): what one call's INVITE costs in
// header reads (srf's has()+get() against one header index), SDP sess-ids (a randomBytes call
// each against a batched pool), a call record nobody takes (built and serialised, or not),
// the SDP body parsed twice or once, the SDP change digest (SHA-1 of the body rewritten without
// o= against bodyDigest over its lines), and prom-client's labelled updates against cached
// labels() children (no better: prom-client hashes the labels either way), and peer attribution
// by source address with net.BlockList against AddressSet, and route selection by scan or prefix index.
//
//   npx tsx bench/call-hotspots.bench.ts
import Srf from 'drachtio-srf';
import { hash, randomBytes } from 'node:crypto';
import { headerReader } from '../src/sbc/request-view.js';
import { parseSdp, writeSdp } from '../src/sbc/media/sdp.js';
import { bodyDigest } from '../src/sbc/media/sdp-topology.js';
const SipMessage = (Srf as any).SipMessage;
const sdp = 'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
const raw = ['INVITE sip:+15551230000@127.0.0.1:5060 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-peergate-1;rport', 'Max-Forwards: 69',
  'From: sipp <sip:sipp@127.0.0.2:5061>;tag=1SIPpTag001', 'To: +15551230000 <sip:+15551230000@127.0.0.1:5060>', 'Call-ID: 1-12345@127.0.0.2', 'CSeq: 1 INVITE',
  'Contact: <sip:sipp@127.0.0.2:5061>', 'Subject: Performance Test', 'Content-Type: application/sdp', `Content-Length: ${sdp.length}`, '', sdp].join('\r\n');
const msg = new SipMessage(raw);
// The names one call reads of its INVITE (validate, admission, session timer, limits, topology allowlist, identity).
const NAMES = ['Call-ID', 'From', 'Contact', 'To', 'Call-ID', 'CSeq', 'Via', 'Content-Type', 'Content-Encoding', 'Max-Forwards', 'Via', 'Session-Expires', 'x',
  'Resource-Priority', 'Allow', 'Supported', 'Accept', 'Accept-Language', 'Content-Disposition', 'Content-Language', 'Event', 'Allow-Events', 'Subject',
  'Priority', 'Date', 'Session-Expires', 'Min-SE', 'Reason', 'P-Asserted-Identity', 'Privacy', 'Privacy', 'Resource-Priority', 'Max-Forwards', 'Content-Type', 'From', 'Identity'];
function time(label: string, n: number, f: () => void) {
  for (let i = 0; i < n / 10; i++) f();
  const xs: number[] = [];
  for (let r = 0; r < 7; r++) { const t = process.hrtime.bigint(); for (let i = 0; i < n; i++) f(); xs.push(Number(process.hrtime.bigint() - t) / n / 1000); }
  xs.sort((a, b) => a - b);
  console.log(`${label}: ${xs[3]!.toFixed(2)} µs (min ${xs[0]!.toFixed(2)})`);
}
let sink: unknown;
time('headers, srf has()+get()', 20000, () => { for (const n of NAMES) sink = msg.has(n) ? msg.get(n) : undefined; });
time('headers, headerReader', 20000, () => { const g = headerReader(msg); for (const n of NAMES) sink = g(n); });
time('sess-id randomBytes(6) x2', 50000, () => { sink = randomBytes(6).readUIntBE(0, 6); sink = randomBytes(6).readUIntBE(0, 6); });
let pool = randomBytes(3072), at = 0;
time('sess-id pooled x2', 50000, () => { for (let k = 0; k < 2; k++) { if (at >= 3072) { pool = randomBytes(3072); at = 0; } sink = pool.readUIntBE(at, 6); at += 6; } });
const rec = { v: 1, id: '4f1e7c1a-2b3c-4d5e-8f90-123456789abc', call_id: '1-12345@127.0.0.2', b_call_id: 'abcdef', peer: 'carrier-a', direction: 'inbound', calling: 'sipp', called: '+15551230000', source: '127.0.0.2:5061', transport: 'udp', tls_identity: null, target: 'sip:127.0.0.3:5070', setup_time: '', answer_time: '', end_time: '', duration_s: 0, setup_s: 0.004, status: 200, result: 'caller_bye', ended_by: 'caller', end_reason: 'bye', identity: null, media: { anchored: false, srtp_a: false, srtp_b: false } };
time('CDR record: 3 toISOString + JSON.stringify', 20000, () => { const now = Date.now(); rec.setup_time = new Date(now).toISOString(); rec.answer_time = new Date(now).toISOString(); rec.end_time = new Date(now).toISOString(); sink = JSON.stringify({ ...rec }); });
let k = 0;
const variants = [sdp, sdp.replace('53655765', '53655766')];
const other = [sdp + 'a=x:1\r\n', sdp + 'a=x:2\r\n'];
time('SDP parsed twice (no reuse)', 20000, () => { const i = k++ % 2; sink = parseSdp(variants[i]!); sink = parseSdp(other[i]!); });
time('SDP parsed once + copy', 20000, () => { const t = variants[k++ % 2]!; sink = parseSdp(t); sink = parseSdp(t); });
{
  // Per SDP peergate sends (two a call): did the body change since this side's last one?
  const parsed = parseSdp(sdp);
  const oIdx = parsed.session.findIndex((l) => l.startsWith('o='));
  time('SDP change digest x2: SHA-1 of the body rewritten without o=', 50000, () => {
    for (let j = 0; j < 2; j++) sink = (hash('sha1', writeSdp({ session: parsed.session.filter((_, i) => i !== oIdx), media: parsed.media }), 'buffer') as unknown as Buffer).readUIntBE(0, 6);
  });
  time('SDP change digest x2: bodyDigest over the lines', 50000, () => { for (let j = 0; j < 2; j++) sink = bodyDigest(parsed, oIdx); });
}
void sink;
{
  const client = (await import('prom-client')).default;
  const reg = new client.Registry();
  const h = new client.Histogram({ name: 'h', help: 'h', labelNames: ['peer', 'direction'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [reg] });
  const c = new client.Counter({ name: 'c', help: 'c', labelNames: ['peer', 'direction', 'result'], registers: [reg] });
  time('prom-client: histogram.observe(labels) + counter.inc(labels)', 50000, () => { h.observe({ peer: 'carrier-a', direction: 'inbound' }, 0.004); c.inc({ peer: 'carrier-a', direction: 'inbound', result: 'caller_bye' }); });
  const hc = h.labels('carrier-a', 'inbound'); const cc = c.labels('carrier-a', 'inbound', 'caller_bye');
  time('prom-client: cached labels() children', 50000, () => { hc.observe(0.004); cc.inc(); });
}
{
  // Peer attribution by source address (per request, in the primary's pre-admission and again in
  // the worker): net.BlockList.check() per peer against AddressSet (IPv4 bisection), 2 and 200 peers.
  const { BlockList } = await import('node:net');
  const { AddressSet, sourceAddress } = await import('../src/engine/shield/address-set.js');
  for (const n of [2, 200]) {
    const cidrs = Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const lists = cidrs.map((c) => { const b = new BlockList(); const [a, bits] = c.split('/'); b.addSubnet(a!, Number(bits), 'ipv4'); return b; });
    const sets = cidrs.map((c) => new AddressSet([c], 'bench'));
    const source = `10.${(n - 1) >> 8}.${(n - 1) & 255}.9`;
    let found = 0;
    time(`peer attribution, ${n} peers: BlockList.check each`, n > 10 ? 500 : 20000, () => { for (const l of lists) if (l.check(source, 'ipv4')) found++; });
    time(`peer attribution, ${n} peers: AddressSet.has each`, n > 10 ? 5000 : 200000, () => { for (const s of sets) if (s.has(source)) found++; });
    time(`peer attribution, ${n} peers: read once, AddressSet.contains each (peers.ts)`, n > 10 ? 20000 : 200000, () => { const a = sourceAddress(source); for (const s of sets) if (s.contains(a)) found++; });
    sink = found;
  }
}
{
  // Route selection (per call): the first-match scan in file order it replaced against the
  // prefix index (src/sbc/routing.ts), the matching rule last.
  const { selectRoute } = await import('../src/sbc/routing.js');
  const { routingNumber } = await import('../src/sip/grammar/index.js');
  type Rule = { from: string; called_prefix?: string; domain?: string; to: string };
  const scan = (rules: readonly Rule[], origin: string, called0: string, domain0: string): Rule | undefined => {
    const called = routingNumber(called0); const domain = domain0.toLowerCase();
    for (const r of rules) {
      if (r.from === 'peers') { if (origin === 'core') continue; } else if (r.from !== origin) continue;
      if (r.called_prefix !== undefined && !called.startsWith(routingNumber(r.called_prefix))) continue;
      if (r.domain !== undefined && r.domain.toLowerCase() !== domain) continue;
      return r;
    }
    return undefined;
  };
  for (const n of [10, 1000, 10000]) {
    const rules: Rule[] = Array.from({ length: n }, (_, i) => ({ from: 'peers', called_prefix: `+99${i}`, to: 'core' }));
    rules.push({ from: 'peers', called_prefix: '+1', to: 'core' });
    const input = { origin: 'carrier-a', called: '+15551230000', domain: 'example.com' };
    selectRoute(rules, input); // the index is built once per routes list
    const reps = Math.max(200, 200000 / n);
    time(`route, ${n + 1} rules: scan in file order`, reps, () => { sink = scan(rules, input.origin, input.called, input.domain); });
    time(`route, ${n + 1} rules: prefix index (routing.ts)`, 100000, () => { sink = selectRoute(rules, input); });
  }
}
