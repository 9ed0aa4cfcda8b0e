// Full B2BUA calls (INVITE … BYE, no RTP) through `peergate start` with its policy on,
// with and without media anchoring, against SIPp talking directly uac → uas, in the same
// run on the same machine.
//
//   npx tsx bench/b2bua.bench.ts [--max 2000] [--seconds 5]
//
// For each rate (calls/s) it runs `seconds` worth of calls; the result is the highest rate
// with zero failed calls that also kept up (done within the step plus 2 s), then p50/p99
// setup time (INVITE → 200) at half that rate, from sipp's per-call response times.
import './require-build.js';
import { parseArgs } from 'node:util';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, sweepRates } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
import { startRedis } from '../test/helpers/redis.js';
import { percentile, rtts } from './sipp-rtt.js';

const { values } = parseArgs({ options: { max: { type: 'string', default: '2000' }, seconds: { type: 'string', default: '5' } } });
const MAX = Number(values.max);
const SECONDS = Number(values.seconds);
const RATES = [100, 200, 300, 400, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000].filter((r) => r <= MAX);

function sweep(label: string, target: string): Promise<number> {
  return sweepRates(label, target, { rates: RATES, seconds: SECONDS });
}

async function setupTimes(target: string, rate: number): Promise<{ p50: number; p99: number; n: number }> {
  const dir = scratchDir('bench-rtt-');
  await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-r', String(rate),
    '-m', String(rate * SECONDS), '-d', '0', '-trace_rtt', '-rtt_freq', '1'], { dir, timeoutS: SECONDS * 4 + 10 });
  const xs = rtts(dir).map((r) => r.ms);
  return { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), n: xs.length };
}

async function startNode(uasPort: number, anchoring: boolean, portBase: number, redisUrl?: string) {
  const [peerPort, corePort, ops] = await freePorts(3);
  const pg = await startPeergate(twoSidedPolicy({ peerPort: peerPort!, corePort: corePort!, opsPort: ops!, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring, rtpengine: 'spawn', embedded: { port_min: portBase, port_max: portBase + 9999 } },
    ...(redisUrl ? { store: { redis: { url: redisUrl, on_failure: 'fail_closed' } } } : {}),
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
  }));
  return { pg, target: `127.0.0.1:${peerPort}` };
}

async function main(): Promise<void> {
  const [uasPort] = await freePorts(1) as [number];
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  const plain = await startNode(uasPort, false, 20000);
  const anchored = await startNode(uasPort, true, 30000);
  const redis = await startRedis();
  const pooled = await startNode(uasPort, false, 40000, redis.url);
  try {
    const direct = `127.0.0.3:${uasPort}`;
    console.log(`# ${SECONDS} s per step, rates ${RATES.join(', ')}`);
    const rows: Array<[string, string, number]> = [];
    rows.push(['sipp direct uac→uas', direct, await sweep('direct', direct)]);
    rows.push(['peergate, media not anchored', plain.target, await sweep('pg-plain', plain.target)]);
    rows.push(['peergate, media anchored on rtpengine', anchored.target, await sweep('pg-media', anchored.target)]);
    rows.push(['peergate, not anchored, limits in Redis', pooled.target, await sweep('pg-redis', pooled.target)]);
    // p50/p99 setup time for each path at half its own highest zero-failure rate.
    console.log('\n| path | max calls/s, 0 failures | rate for setup times | setup p50 | setup p99 |');
    console.log('|---|---|---|---|---|');
    for (const [label, target, best] of rows) {
      const half = Math.max(50, Math.floor(best / 2 / 50) * 50);
      const t = await setupTimes(target, half);
      console.log(`| ${label} | ${best} | ${half}/s | ${t.p50} ms | ${t.p99} ms |`);
    }
    console.log(`\nratio anchored/direct (max rate): ${(rows[2]![2] / Math.max(1, rows[0]![2])).toFixed(2)}; plain/direct: ${(rows[1]![2] / Math.max(1, rows[0]![2])).toFixed(2)}; redis/memory store: ${(rows[3]![2] / Math.max(1, rows[1]![2])).toFixed(2)}`);
    console.log(`peergate RSS after its sweep: plain ${(await plain.pg.metric('process_resident_memory_bytes')) / 1048576 | 0} MiB, anchored ${(await anchored.pg.metric('process_resident_memory_bytes')) / 1048576 | 0} MiB`);
  } finally {
    await plain.pg.stop();
    await anchored.pg.stop();
    await pooled.pg.stop();
    await redis.stop();
    await stopAll();
  }
}

await main();
