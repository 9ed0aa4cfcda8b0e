// Soak: a sustained call load through `peergate start` (the policy of bench/b2bua.bench.ts),
// sampling RSS and every count during the run and after it, to show that nothing accumulates
// (issue #16): memory flat after warm-up, and zero calls, dialogs, transactions and session
// slots once RFC 3261 timers have expired. On demand only (not part of the test suite).
//
//   npx tsx bench/soak.bench.ts [--minutes 10] [--rate 250] [--media] [--redis] [--every 10]
//
// `--rate` should be half the highest zero-failure rate bench/b2bua.bench.ts finds on the
// machine (default 250: half of the 500/s the issue was reported at). Exit code 1 when any
// count is non-zero 45 s after the load.
import { parseArgs } from 'node:util';
import { freePorts, runSipp, startSipp, stopAll } from '../test/helpers/procs.js';
import { startPeergate, sumMetric } from '../test/helpers/peergate.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({ options: {
  minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '250' }, every: { type: 'string', default: '10' },
  media: { type: 'boolean', default: false }, redis: { type: 'boolean', default: false },
} });
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const EVERY_S = Number(values.every);
const COUNTS = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions', 'peergate_limit_sessions_local', 'peergate_media_sessions'];
const SHORT: Record<string, string> = {
  peergate_active_calls: 'calls', peergate_engine_dialogs: 'dialogs', peergate_engine_server_transactions: 'stx',
  peergate_engine_client_transactions: 'ctx', peergate_limit_sessions_local: 'slots', peergate_media_sessions: 'media',
};

async function main(): Promise<number> {
  const [uasPort, peerPort, corePort, ops] = await freePorts(4) as [number, number, number, number];
  const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  let redis: TestRedis | undefined;
  if (values.redis) redis = await startRedis();
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
    core: { targets: [`sip:127.0.0.3:${uasPort}`] },
    media: values.media ? { anchoring: true, rtpengine: 'spawn', embedded: { port_min: 30000, port_max: 39999 } } : { anchoring: false },
    ...(redis ? { store: { redis: { url: redis.url, on_failure: 'fail_closed' } } } : {}),
    ops: { port: ops },
    log: { level: 'error' },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
  const t0 = Date.now();
  const rows: string[] = [];
  const sample = async (phase: string) => {
    const text = await pg.metrics();
    const rss = sumMetric(text, 'process_resident_memory_bytes') / 1048576;
    const counts = COUNTS.map((n) => `${SHORT[n]}=${sumMetric(text, n)}`).join(' ');
    const answered = sumMetric(text, 'peergate_calls_total');
    const row = `${String(Math.round((Date.now() - t0) / 1000)).padStart(5)} s  ${phase.padEnd(6)} rss=${rss.toFixed(0)} MiB  ended=${answered}  ${counts}`;
    rows.push(row);
    console.log(row);
    return text;
  };
  let sampling = true;
  const sampler = (async () => { while (sampling) { await new Promise((r) => setTimeout(r, EVERY_S * 1000)); if (sampling) await sample('load'); } })();
  console.log(`# soak: ${RATE} calls/s for ${MINUTES} min, media ${values.media ? 'anchored' : 'not anchored'}, store ${redis ? 'redis' : 'memory'}`);
  const total = Math.round(RATE * MINUTES * 60);
  const r = await runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(RATE), '-m', String(total), '-l', String(RATE * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: MINUTES * 60 * 3 + 60 });
  sampling = false;
  await sampler;
  console.log(`# sipp: ${r.successful} ok, ${r.failed} failed of ${total}`);
  // Timer M/L (32 s) and the 2xx-ACK wait (32 s) are the longest RFC 3261 timers involved.
  let text = '';
  for (let i = 0; i < 9; i++) { await new Promise((res) => setTimeout(res, 5000)); text = await sample('after'); }
  const left = COUNTS.filter((n) => sumMetric(text, n) !== 0);
  const results = text.split('\n').filter((l) => l.startsWith('peergate_calls_total{')).map((l) => l.replace(/^peergate_calls_total/, '')).join('\n  ');
  console.log(`# calls_total:\n  ${results}`);
  console.log(left.length === 0 ? '# every count back to zero' : `# NOT back to zero: ${left.join(', ')}`);
  await pg.stop();
  await uas.stop();
  await redis?.stop();
  await stopAll();
  return left.length === 0 && r.failed === 0 ? 0 : 1;
}

process.exitCode = await main();
