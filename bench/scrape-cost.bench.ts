// What one Prometheus scrape of /metrics costs a running node, per process: the primary asks
// every worker for its registry over IPC and sums them (src/app/workers/pool.ts metrics()).
// Measured idle after the start, then again after a load has filled the label sets (peers,
// results, histograms). Operators scrape every 15–30 s; the comparison bench's overload trace
// (`compare.bench.ts --trace-dir`) scrapes ten times a second, which is why it is opt-in.
//
//   npm run build && nice -n 10 npx tsx bench/scrape-cost.bench.ts [--scrapes 200] [--calls 8000] [--rate 800]
import './require-build.js';
import { parseArgs } from 'node:util';
import { childPids, cpuSeconds, freePorts, runSipp, startUas, stopAll } from '../test/helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: { scrapes: { type: 'string', default: '200' }, calls: { type: 'string', default: '8000' }, rate: { type: 'string', default: '800' } } });
const SCRAPES = Number(values.scrapes);
const CALLS = Number(values.calls);
const RATE = Number(values.rate);
if (!(SCRAPES >= 10 && SCRAPES <= 10_000) || !(CALLS >= 0 && CALLS <= 100_000) || !(RATE > 0 && RATE <= 5000)) {
  throw new Error('bad options: --scrapes 10–10000 --calls 0–100000 --rate 1–5000');
}

const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
startUas(CORE_IP, uasPort);
const limits = { cps: 100_000, burst: 100_000, sessions: 100_000 };
const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'error', peer: { limits } }, {
  media: { anchoring: false },
}));
const pids = [pg.proc.pid, ...childPids(pg.proc.pid)];

/** SCRAPES scrapes in a row: wall ms per scrape, CPU ms per scrape of each process, the text's size. */
async function measure(label: string): Promise<void> {
  for (let i = 0; i < 10; i++) await pg.metrics();
  const cpu = () => pids.map((p) => cpuSeconds(p).total);
  const c0 = cpu();
  const t0 = performance.now();
  for (let i = 0; i < SCRAPES; i++) await pg.metrics();
  const wall = (performance.now() - t0) / SCRAPES;
  const c1 = cpu();
  const per = c1.map((c, i) => (1000 * (c - c0[i]!)) / SCRAPES);
  const text = await pg.metrics();
  console.log(`| ${label} | ${wall.toFixed(2)} | ${per.map((x) => x.toFixed(2)).join(' / ')} = **${per.reduce((a, b) => a + b, 0).toFixed(2)}** | ${text.length} B, ${text.split('\n').length} lines |`);
}

try {
  console.log(`# ${SCRAPES} scrapes in a row; processes: primary, then its workers (${pids.length - 1})`);
  console.log('| when | wall ms per scrape | CPU ms per scrape (primary / workers… = all) | /metrics text |');
  console.log('|---|---|---|---|');
  await new Promise((r) => setTimeout(r, 3000));
  await measure('idle, after the start');
  if (CALLS > 0) {
    const r = await runSipp(['-sn', 'uac', '-i', PEER_IP, '-p', '0', `127.0.0.1:${peerPort}`, '-r', String(RATE), '-m', String(CALLS), '-l', String(CALLS)], { timeoutS: Math.ceil(CALLS / RATE) + 60 });
    await new Promise((r) => setTimeout(r, 2000));
    await measure(`after ${CALLS} calls at ${RATE}/s (${r.successful} ok, ${r.failed} failed)`);
  }
} finally {
  await pg.stop();
  await stopAll();
}
