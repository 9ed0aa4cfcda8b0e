// Where an answered call's setup time goes, hop by hop, from a packet capture of loopback taken
// during a compare-bench step (`bench/compare.bench.ts --pcap DIR`): every datagram's kernel
// timestamp, so the split does not depend on any process's own clock or on its being scheduled.
//
//   npx tsx bench/compare/hops.ts DIR/peergate-1800.pcap [--from-s 1 --to-s 8]
//
// The caller (SIPp uac, 127.0.0.2) puts its call number and port in an SDP label attribute (RFC
// 4574; bench/compare/uac.xml; the port because the recovery caller numbers its calls too); a
// system that relays the offer's media lines (peergate with media not anchored, Kamailio)
// delivers the same line to the callee (SIPp uas, 127.0.0.3), which links the two legs whatever
// the system does to Call-IDs and tags. Per call, the first time each message was seen:
//   in    the INVITE from the caller → the INVITE to the callee (the system's way in)
//   uas   the INVITE to the callee → the callee's 200 (SIPp uas)
//   out   the callee's 200 → the 200 to the caller (the system's way back)
//   total the INVITE from the caller → the 200 to the caller (what SIPp's rtd measures, less the
//         caller's own send and receive latency)
// With the drachtio wire's TCP in the capture (peergate), `in` is split where the INVITE's frame
// went to the app (engine in: kernel queue, parse, core), where the app's B-leg INVITE came back
// (the app: its socket, drachtio-srf, the B2BUA's stages) and where it left for the callee.
// and how many calls had their INVITE sent more than once by the caller (a lost or late answer).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Packet { t: number; src: string; dst: string; payload: Buffer; tcp: boolean }

/** UDP datagrams of a classic pcap file (Ethernet, Linux cooked v1/v2 or raw IP link types). */
export function readPcap(file: string): Packet[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${file}: not a pcap file`);
  const nano = magic === 0xa1b23c4d || b.readUInt32BE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const linkLen = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : link === 101 ? 0 : -1;
  if (linkLen < 0) throw new Error(`${file}: link type ${link} not handled`);
  const out: Packet[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const t = u32(o) * 1000 + u32(o + 4) / (nano ? 1e6 : 1e3);
    const caplen = u32(o + 8);
    const p = o + 16;
    o = p + caplen;
    const ip = p + linkLen;
    if (o > b.length || (b[ip]! >> 4) !== 4 || (b[ip + 9] !== 17 && b[ip + 9] !== 6)) continue;
    const tcp = b[ip + 9] === 6;
    const ihl = (b[ip]! & 15) * 4;
    const l4 = ip + ihl;
    const src = `${b[ip + 12]}.${b[ip + 13]}.${b[ip + 14]}.${b[ip + 15]}:${b.readUInt16BE(l4)}`;
    const dst = `${b[ip + 16]}.${b[ip + 17]}.${b[ip + 18]}.${b[ip + 19]}:${b.readUInt16BE(l4 + 2)}`;
    const payload = b.subarray(tcp ? l4 + (b[l4 + 12]! >> 4) * 4 : l4 + 8, o);
    if (tcp && payload.length === 0) continue;
    out.push({ t, src, dst, payload, tcp });
  }
  return out;
}

interface Leg { inviteIn?: number; invites: number; inviteOut?: number; callIdB?: string; callIdA?: string; ok200B?: number; ok200A?: number; toApp?: number; fromApp?: number }

function header(text: string, name: string): string | undefined {
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im');
  return re.exec(text)?.[1]?.trim();
}

type Quantiles = { p50: number; p90: number; p99: number };
export interface HopSummary {
  calls: number; resent: number; hops: Record<'in' | 'uas' | 'out' | 'total', Quantiles>;
  /** With the drachtio wire in the capture (peergate): the way in split at the app's frames. */
  inSplit?: { calls: number; engineIn: Quantiles; app: Quantiles; engineOut: Quantiles };
}

export function hops(packets: readonly Packet[], fromMs = -Infinity, toMs = Infinity): HopSummary {
  const byNumber = new Map<string, Leg>();
  const byCallIdB = new Map<string, Leg>();
  const byCallIdA = new Map<string, Leg>();
  const t0 = packets[0]?.t ?? 0;
  // The engine's end of the drachtio wire (peergate): the TCP port whose segments carry network
  // messages to an app (`|sip|network|` leaders).
  const wirePort = packets.find((p) => p.tcp && p.payload.includes('|sip|network|'))?.src;
  const legOf = (n: string): Leg => { let leg = byNumber.get(n); if (!leg) { leg = { invites: 0 }; byNumber.set(n, leg); } return leg; };
  for (const p of packets) {
    const text = p.payload.toString('latin1');
    if (p.tcp) {
      if (wirePort === undefined) continue;
      // A segment may carry several frames: every label in it, first sighting per direction.
      for (let at = text.indexOf('a=label:'); at >= 0; at = text.indexOf('a=label:', at + 8)) {
        const n = /^a=label:(\d+-\d+)/.exec(text.slice(at, at + 40))?.[1];
        if (!n) continue;
        const leg = legOf(n);
        if (p.src === wirePort) leg.toApp ??= p.t;
        else if (p.dst === wirePort) leg.fromApp ??= p.t;
      }
      continue;
    }
    const isRequest = !text.startsWith('SIP/2.0');
    const fromUac = p.src.startsWith('127.0.0.2:');
    const toUas = p.dst.startsWith('127.0.0.3:');
    const fromUas = p.src.startsWith('127.0.0.3:');
    const toUac = p.dst.startsWith('127.0.0.2:');
    if (isRequest && text.startsWith('INVITE ')) {
      const n = /^a=label:(\d+-\d+)\s*$/m.exec(text)?.[1];
      if (!n) continue;
      const leg = legOf(n);
      if (fromUac) {
        leg.invites++;
        if (leg.inviteIn === undefined) { leg.inviteIn = p.t; leg.callIdA = header(text, 'call-id') ?? header(text, 'i'); if (leg.callIdA) byCallIdA.set(leg.callIdA, leg); }
      } else if (toUas && leg.inviteOut === undefined) {
        leg.inviteOut = p.t;
        leg.callIdB = header(text, 'call-id') ?? header(text, 'i');
        if (leg.callIdB) byCallIdB.set(leg.callIdB, leg);
      }
    } else if (!isRequest && text.startsWith('SIP/2.0 200') && /^(CSeq|c)\s*:\s*\d+\s+INVITE/im.test(text)) {
      const cid = header(text, 'call-id') ?? header(text, 'i');
      if (!cid) continue;
      if (fromUas) { const leg = byCallIdB.get(cid); if (leg && leg.ok200B === undefined) leg.ok200B = p.t; }
      else if (toUac) { const leg = byCallIdA.get(cid); if (leg && leg.ok200A === undefined) leg.ok200A = p.t; }
    }
  }
  const d = { in: [] as number[], uas: [] as number[], out: [] as number[], total: [] as number[] };
  const split = { engineIn: [] as number[], app: [] as number[], engineOut: [] as number[] };
  let calls = 0;
  let resent = 0;
  for (const leg of byNumber.values()) {
    if (leg.inviteIn === undefined || leg.ok200A === undefined || leg.inviteOut === undefined || leg.ok200B === undefined) continue;
    const at = leg.inviteIn - t0;
    if (at < fromMs || at >= toMs) continue;
    calls++;
    if (leg.invites > 1) resent++;
    d.in.push(leg.inviteOut - leg.inviteIn);
    d.uas.push(leg.ok200B - leg.inviteOut);
    d.out.push(leg.ok200A - leg.ok200B);
    d.total.push(leg.ok200A - leg.inviteIn);
    if (leg.toApp !== undefined && leg.fromApp !== undefined && leg.toApp <= leg.fromApp && leg.fromApp <= leg.inviteOut) {
      split.engineIn.push(leg.toApp - leg.inviteIn);
      split.app.push(leg.fromApp - leg.toApp);
      split.engineOut.push(leg.inviteOut - leg.fromApp);
    }
  }
  const q = (xs: number[], f: number) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))]! : NaN; };
  const sum = (xs: number[]) => ({ p50: q(xs, 0.5), p90: q(xs, 0.9), p99: q(xs, 0.99) });
  return {
    calls, resent, hops: { in: sum(d.in), uas: sum(d.uas), out: sum(d.out), total: sum(d.total) },
    ...(split.app.length ? { inSplit: { calls: split.app.length, engineIn: sum(split.engineIn), app: sum(split.app), engineOut: sum(split.engineOut) } } : {}),
  };
}

export function describeHops(h: HopSummary): string {
  const f = (x: Quantiles) => `${x.p50.toFixed(1)}/${x.p90.toFixed(1)}/${x.p99.toFixed(1)}`;
  const s = h.inSplit;
  return `${h.calls} answered calls (${h.resent} with the INVITE resent); ms p50/p90/p99: in ${f(h.hops.in)}, uas ${f(h.hops.uas)}, out ${f(h.hops.out)}, total ${f(h.hops.total)}`
    + (s ? `; the way in (${s.calls} calls): engine to the app's frame ${f(s.engineIn)}, the app ${f(s.app)}, the app's INVITE to the wire ${f(s.engineOut)}` : '');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'from-s': { type: 'string' }, 'to-s': { type: 'string' } } });
  for (const f of positionals) {
    const from = values['from-s'] === undefined ? -Infinity : 1000 * Number(values['from-s']);
    const to = values['to-s'] === undefined ? Infinity : 1000 * Number(values['to-s']);
    console.log(`${f}: ${describeHops(hops(readPcap(f), from, to))}`);
  }
}
