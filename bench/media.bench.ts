// rtpengine control round trips through the media stage against a local (embedded) rtpengine:
// p50/p99 of offer, answer and delete, the whole setup+teardown per call, and call setups per
// second with 10 in flight. Run: npx tsx bench/media.bench.ts [calls]
import { MediaStage } from '../src/sbc/media/index.js';
import { SideMediaSchema } from '../src/sbc/media/schema.js';

const CALLS = Math.max(10, Math.min(5000, Number(process.argv[2] ?? 500)));
const peer = SideMediaSchema.parse({ srtp: 'required', suites: ['AES_CM_128_HMAC_SHA1_80'], dtls: 'refused' });
const core = SideMediaSchema.parse({ srtp: 'forbidden' });

function sdp(port: number, proto: string, extra = ''): string {
  return `v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} ${proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n${extra}`;
}
const OFFER = sdp(40000, 'RTP/SAVP', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n');
const ANSWER = sdp(40002, 'RTP/AVP');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function oneCall(stage: MediaStage, id: string, t: { offer: number[]; answer: number[]; del: number[]; setup: number[] }) {
  const t0 = process.hrtime.bigint();
  const o = await stage.offer({ callId: id, fromTag: 'a', from: 'peer', fromPolicy: peer, toPolicy: core, sdp: OFFER });
  if (!o.ok) throw new Error(`offer refused: ${o.warning}`);
  const t1 = process.hrtime.bigint();
  const a = await stage.answer({ callId: id, fromTag: 'a', toTag: 'b', sdp: ANSWER });
  if (!a.ok) throw new Error(`answer refused: ${a.warning}`);
  const t2 = process.hrtime.bigint();
  await stage.delete(id);
  t.offer.push(Number(t1 - t0) / 1e6);
  t.answer.push(Number(t2 - t1) / 1e6);
  t.del.push(ms(t2));
  t.setup.push(Number(t2 - t0) / 1e6);
}

const stage = await MediaStage.create({ rtpengine: 'spawn', embedded: { port_min: 44000, port_max: 44999 }, timeout_ms: 2000 });
try {
  const t = { offer: [] as number[], answer: [] as number[], del: [] as number[], setup: [] as number[] };
  for (let i = 0; i < 20; i++) await oneCall(stage, `warm-${i}`, { offer: [], answer: [], del: [], setup: [] });
  for (let i = 0; i < CALLS; i++) await oneCall(stage, `seq-${i}`, t);
  console.log(`media stage control round trips, ${CALLS} sequential calls (SDES-SRTP peer -> plain core), ms`);
  for (const [k, v] of Object.entries(t)) console.log(`  ${k.padEnd(7)} p50 ${pct(v, 50).toFixed(3)}  p99 ${pct(v, 99).toFixed(3)}`);

  const conc = 10;
  let next = 0;
  const sink = { offer: [] as number[], answer: [] as number[], del: [] as number[], setup: [] as number[] };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < CALLS) await oneCall(stage, `par-${next++}`, sink);
  }));
  const s = ms(t0) / 1000;
  console.log(`  ${conc} in flight: ${(CALLS / s).toFixed(0)} calls/s (offer+answer+delete), setup p50 ${pct(sink.setup, 50).toFixed(3)} p99 ${pct(sink.setup, 99).toFixed(3)} ms`);
} finally {
  await stage.close();
}
