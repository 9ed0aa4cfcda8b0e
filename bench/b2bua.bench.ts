// Full B2BUA calls (INVITE … BYE, no RTP) through `peergate start` with its policy on,
// against SIPp talking directly uac → uas, in the same run on the same machine.
//
//   npx tsx bench/b2bua.bench.ts [--max 2000] [--seconds 5] [--anchor on|off]
//
// For each rate (calls/s) it runs `seconds` worth of calls and records failures; the result
// is the highest rate with zero failed calls, then p50/p99 setup time (INVITE → 200) at
// half that rate, from sipp's per-call response times.
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, startSipp, stopAll, scratchDir } from '../test/helpers/procs.js';
import { startPeergate } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: { max: { type: 'string', default: '2000' }, seconds: { type: 'string', default: '5' }, anchor: { type: 'string', default: 'on' } } });
const MAX = Number(values.max);
const SECONDS = Number(values.seconds);
const RATES = [100, 200, 300, 400, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000].filter((r) => r <= MAX);

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Setup times (ms) from sipp's -trace_rtt CSV files in `dir`. */
function rtts(dir: string): number[] {
  const out: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('_rtt.csv'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n').slice(1)) {
      const v = Number(line.split(';')[1]);
      if (Number.isFinite(v) && line.trim()) out.push(v);
    }
  }
  return out;
}

async function sweep(label: string, target: string): Promise<number> {
  let best = 0;
  for (const rate of RATES) {
    const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-r', String(rate), '-m', String(rate * SECONDS), '-l', String(rate * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: SECONDS * 4 + 10 });
    const ok = r.failed === 0 && r.successful === rate * SECONDS;
    console.log(`${label.padEnd(9)} ${String(rate).padStart(5)} calls/s: ${r.successful} ok, ${r.failed} failed${ok ? '' : '  <- failures'}`);
    if (!ok) break;
    best = rate;
  }
  return best;
}

async function setupTimes(target: string, rate: number): Promise<{ p50: number; p99: number; n: number }> {
  const dir = scratchDir('bench-rtt-');
  await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-r', String(rate),
    '-m', String(rate * SECONDS), '-d', '0', '-trace_rtt', '-rtt_freq', '1'], { dir, timeoutS: SECONDS * 4 + 10 });
  const xs = rtts(dir);
  return { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), n: xs.length };
}

async function main(): Promise<void> {
  const [uasPort, peerPort, corePort, ops] = await freePorts(4);
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
    core: { targets: [`sip:127.0.0.3:${uasPort}`] },
    media: { rtpengine: 'spawn', embedded: { port_min: 20000, port_max: 29999 } },
    ops: { port: ops },
    log: { level: 'error' },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
  try {
    const direct = `127.0.0.3:${uasPort}`;
    const via = `127.0.0.1:${peerPort}`;
    console.log(`# ${SECONDS} s per step, rates ${RATES.join(', ')}; media anchoring ${values.anchor}`);
    const bestDirect = await sweep('direct', direct);
    const bestPg = await sweep('peergate', via);
    const half = Math.max(50, Math.floor(bestPg / 2 / 50) * 50);
    const tPg = await setupTimes(via, half);
    const tDirect = await setupTimes(direct, half);
    console.log('\n| path | max calls/s, 0 failures | setup p50 @%d/s (ms) | setup p99 @%d/s (ms) |'.replace('%d', String(half)).replace('%d', String(half)));
    console.log('|---|---|---|---|');
    console.log(`| sipp direct uac→uas | ${bestDirect} | ${tDirect.p50} | ${tDirect.p99} |`);
    console.log(`| via peergate (B2BUA, policy, rtpengine) | ${bestPg} | ${tPg.p50} | ${tPg.p99} |`);
    console.log(`\nratio peergate/direct (max rate): ${(bestPg / Math.max(1, bestDirect)).toFixed(2)}`);
    console.log(`peergate RSS after run: ${(await pg.metric('process_resident_memory_bytes')) / 1048576 | 0} MiB`);
  } finally {
    await pg.stop();
    await stopAll();
  }
}

await main();
