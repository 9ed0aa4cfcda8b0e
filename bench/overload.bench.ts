// The cost of one refusal (issue 18 item 3): a new INVITE the overload gate sheds, through the
// real parser, transaction layer and UA core (no sockets: the transport only counts), with its
// ACK, and a retransmitted INVITE that gets the 503 again. At 3× overload the primary refuses
// ≈ 1,800 INVITEs/s, so what one refusal costs bounds what is left for the admitted calls.
// Reports CPU ns per operation (the process's user+system time, so that other load on the
// machine counts less than in wall time; median of the rounds) and bytes per operation: allocated (heap growth
// from a forced GC to the chunk's end, a chunk too small for a scavenge) and retained (after the
// next forced GC: what stays while the transaction waits out Timer I).
//
//   node --expose-gc --max-semi-space-size=64 --import tsx bench/overload.bench.ts [--ops 20000] [--rounds 7]
// (timed rounds run without forced GCs; one more round with them gives the heap figures)
import { parseArgs } from 'node:util';
import type { SendResult } from '../src/engine/transport/types.js';
import type { WireServer } from '../src/engine/wire/server.js';
import { fakeApp, fakeTransport } from '../test/helpers/core-fakes.js';
import { UaCore } from '../src/engine/core/ua-core.js';
import { parseMessage } from '../src/engine/message/parser.js';
import { OverloadGate } from '../src/engine/overload/index.js';
import type { Clock } from '../src/clock.js';

const { values } = parseArgs({ options: { ops: { type: 'string' }, rounds: { type: 'string' } } });
const OPS = Number(values.ops ?? 20_000);
const ROUNDS = Number(values.rounds ?? 7);
/** Ops per allocation sample: ≈ 5 KB each stays well under a 64 MiB semi-space. */
const CHUNK = 1000;

const LOCAL = { protocol: 'udp' as const, address: '127.0.0.1', port: 5060 };
const PEER = { protocol: 'udp' as const, address: '127.0.0.2', port: 5061 };

// SIPp's uac INVITE as bench/compare/uac.xml sends it (an SDP offer), and its ACK of the 503.
const sdp = 'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
const head = (method: string, i: number, toTag: string) => `${method} sip:service@127.0.0.1:5060 SIP/2.0\r\n` +
  `Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-${i}-1-0\r\n` +
  `From: sipp <sip:sipp@127.0.0.2:5061>;tag=${i}SIPpTag001\r\n` +
  `To: service <sip:service@127.0.0.1:5060>${toTag}\r\n` +
  `Call-ID: ${i}-4242@127.0.0.2\r\nCSeq: 1 ${method}\r\nContact: sip:sipp@127.0.0.2:5061\r\nMax-Forwards: 70\r\n`;
const invite = (i: number) => Buffer.from(`${head('INVITE', i, '')}Subject: Performance Test\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`);
const ack = (i: number) => Buffer.from(`${head('ACK', i, ';tag=shed')}Content-Length: 0\r\n\r\n`);

/** A fake clock for many timers (test/helpers/manual-clock.ts scans them all per timer): a
 *  binary heap on (due, id), cancelled timers skipped when they come up. */
class HeapClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly heap: { at: number; id: number; fn: () => void }[] = [];
  private readonly live = new Set<number>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const e = { at: this.t + ms, id: ++this.seq, fn };
    this.live.add(e.id);
    const h = this.heap;
    h.push(e);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    return e.id;
  }
  clearTimeout(id: unknown): void { this.live.delete(id as number); }
  advance(ms: number): void {
    const end = this.t + ms;
    const h = this.heap;
    while (h.length > 0 && h[0]!.at <= end) {
      const e = this.pop();
      if (!this.live.delete(e.id)) continue;
      this.t = Math.max(this.t, e.at);
      e.fn();
    }
    this.t = end;
  }
  private less(a: { at: number; id: number }, b: { at: number; id: number }): boolean { return a.at < b.at || (a.at === b.at && a.id < b.id); }
  private pop(): { at: number; id: number; fn: () => void } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function harness() {
  const clock = new HeapClock();
  let sent = 0;
  let frames = 0;
  const { app } = fakeApp(1, () => { frames++; });
  let admission: unknown;
  const wire = {
    setHandler: () => {}, pickApp: () => app,
    get admission() { return admission; }, setAdmission: (a: unknown) => { admission = a; },
  } as unknown as WireServer;
  const ok: SendResult = { ok: true, local: LOCAL, bytes: 0 };
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b),
    // What the UDP transport returns (a settled promise per send): the kernel's part is not measured.
    transport: fakeTransport(() => { sent++; return ok; }),
  });
  // Every new INVITE is refused: one dialog over a mark of 0 … made 1, at a 100 % step.
  const gate = new OverloadGate(clock, { transactions: () => 0, dialogs: () => 2 }, { maxDialogs: 1, stepPercent: 100, onsetIntervals: 1, probeMs: 20, intervalMs: 100 });
  wire.setAdmission(gate as never);
  clock.advance(200);
  if (gate.state.loss !== 100) throw new Error(`the gate does not shed (loss ${gate.state.loss})`);
  const feed = (data: Buffer) => core.onPacket({ data, source: PEER, local: LOCAL });
  return { clock, core, gate, feed, sent: () => sent, frames: () => frames };
}

interface Case { name: string; msgs: (i: number) => Buffer[]; prime?: (h: ReturnType<typeof harness>, i: number) => void }
const CASES: Case[] = [
  { name: 'refused INVITE + its ACK', msgs: (i) => [invite(i), ack(i)] },
  { name: 'refused INVITE alone', msgs: (i) => [invite(i)] },
  // The INVITE was refused already (primed outside the timing): its copy gets the 503 again.
  { name: 'retransmitted INVITE (503 again)', msgs: (i) => [invite(i)], prime: (h, i) => h.feed(invite(i)) },
];

const gc = (globalThis as { gc?: () => void }).gc;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };

interface Result { ns: number; allocated: number; retained: number; sentPerOp: number }

/** One pass over OPS operations. `alloc`: forced GCs around each chunk (the heap figures), not
 *  timed; else timed with no forced GC (a full GC per chunk slows what follows it several-fold). */
async function run(c: Case, round: number, alloc: boolean): Promise<Result> {
  const h = harness();
  const base = (round + 1) * 10_000_000;
  // Messages are built before the clock starts: the bench times what peergate does with them.
  const msgs = Array.from({ length: OPS }, (_, i) => c.msgs(base + i));
  if (c.prime) for (let i = 0; i < OPS; i++) c.prime(h, base + i);
  const sent0 = h.sent();
  let ns = 0;
  const allocated: number[] = [];
  const retained: number[] = [];
  for (let at = 0; at < OPS; at += CHUNK) {
    const end = Math.min(OPS, at + CHUNK);
    if (alloc) gc!();
    const heap0 = alloc ? process.memoryUsage().heapUsed : 0;
    const c0 = process.cpuUsage();
    for (let i = at; i < end; i++) for (const m of msgs[i]!) h.feed(m);
    const c = process.cpuUsage(c0);
    ns += (c.user + c.system) * 1000;
    if (alloc) allocated.push((process.memoryUsage().heapUsed - heap0) / (end - at));
    // The promises' reactions of this chunk's sends run here, as they would between datagrams.
    await new Promise((r) => setImmediate(r));
    if (alloc) { gc!(); retained.push((process.memoryUsage().heapUsed - heap0) / (end - at)); }
    // 1,800 refusals/s of clock: Timer G/H/I and the gate's probe run as in the 3× step.
    h.clock.advance(((end - at) * 1000) / 1800);
  }
  if (h.frames() !== 0) throw new Error(`${h.frames()} INVITEs reached the app`);
  const sentPerOp = (h.sent() - sent0) / OPS;
  h.gate.close();
  h.core.close();
  return { ns: ns / OPS, allocated: alloc ? median(allocated) : NaN, retained: alloc ? median(retained) : NaN, sentPerOp };
}

const started = new Date().toISOString();
console.log(`overload.bench: ${OPS} ops × ${ROUNDS} rounds per case, node ${process.version}${gc ? '' : ' (no --expose-gc: allocation not measured)'}, ${started}`);
for (const c of CASES) {
  const rs: Result[] = [];
  await run(c, 0, false); // warm-up: the code optimised before the timed rounds
  for (let r = 1; r <= ROUNDS; r++) rs.push(await run(c, r, false));
  const a = gc ? await run(c, ROUNDS + 1, true) : undefined;
  const ns = rs.map((x) => x.ns);
  console.log(`RESULT ${c.name}: ${Math.round(median(ns))} ns/op (min ${Math.round(Math.min(...ns))}, max ${Math.round(Math.max(...ns))})` +
    `${a ? `, allocated ${Math.round(a.allocated)} B/op, retained after GC ${Math.round(a.retained)} B/op` : ''}` +
    `, ${rs[0]!.sentPerOp.toFixed(2)} sends per op (Timer G's included)`);
}
