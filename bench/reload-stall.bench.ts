// What a reload of a carrier-size policy (500 peers, 11,000 routes) costs a running node's
// primary event loop, end to end: SIGHUP, the parse in its thread, taking the result in, the
// subsystems' reconfigure and handing the policy to the B2BUA workers. Measured from outside as
// the slowest answer to GET /health, asked back to back over one keep-alive connection, in the
// 3 s after each SIGHUP (the primary answers it on the same event loop as SIP).
//
//   npm run build && nice -n 10 npx tsx bench/reload-stall.bench.ts [--reloads 5] [--workers N] [--bin OTHER/bin/peergate.js]
//     [--node-args='--cpu-prof --cpu-prof-dir=DIR' (the primary's node options)]
import './require-build.js';
import { parseArgs } from 'node:util';
import { Agent, request } from 'node:http';
import { freePorts } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: { reloads: { type: 'string', default: '5' }, workers: { type: 'string' }, bin: { type: 'string' }, 'node-args': { type: 'string', default: '' } } });
const RELOADS = Number(values.reloads);

const peers = Array.from({ length: 500 }, (_, i) => ({
  id: `p${i}`, match: { addresses: [`10.${i >> 8}.${i & 255}.0/24`] }, targets: [`sip:10.${i >> 8}.${i & 255}.1:5060`], limits: { cps: 10 },
}));
const routes = [
  ...Array.from({ length: 10_000 }, (_, i) => ({ from: 'core', called_prefix: `+9${String(i).padStart(5, '0')}`, to: `p${i % 500}` })),
  ...peers.map((p) => ({ from: p.id, to: 'core' })),
];
const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: 'sip:127.0.0.3:5999', logLevel: 'warn' }, {
  media: { anchoring: false }, peers, routes, ...(values.workers ? { workers: values.workers === 'auto' ? 'auto' : Number(values.workers) } : {}),
}), { readyTimeoutMs: 60_000, nodeArgs: values['node-args'].split(' ').filter(Boolean), ...(values.bin ? { bin: values.bin } : {}) });

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const health = (): Promise<number> => new Promise((resolve, reject) => {
  const t0 = performance.now();
  request({ host: '127.0.0.1', port: opsPort, path: '/health', agent }, (res) => { res.resume(); res.on('end', () => resolve(performance.now() - t0)); }).on('error', reject).end();
});
/** The slowest /health answer within `ms`, asked back to back. */
async function slowest(ms: number): Promise<number> {
  let worst = 0;
  for (const end = performance.now() + ms; performance.now() < end;) worst = Math.max(worst, await health());
  return worst;
}

try {
  const quiet: number[] = [];
  const reload: number[] = [];
  for (let i = 0; i < RELOADS; i++) {
    quiet.push(await slowest(3000));
    const during = slowest(3000);
    process.kill(pg.proc.pid, 'SIGHUP');
    reload.push(await during);
  }
  const ok = await pg.metric('peergate_policy_reloads_total', { result: 'ok' });
  if (ok !== RELOADS) throw new Error(`${ok} of ${RELOADS} reloads succeeded: the figures are not a reload's`);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${values.bin ?? 'this checkout'}, workers ${values.workers ?? 'policy default'}: slowest /health answer in 3 s, quiet ${quiet.map((x) => x.toFixed(1)).join(' / ')} ms (median ${median(quiet).toFixed(1)}); after SIGHUP ${reload.map((x) => x.toFixed(1)).join(' / ')} ms (median ${median(reload).toFixed(1)})`);
} finally {
  agent.destroy();
  await pg.proc.stop('SIGTERM', 60_000); // a profile takes seconds to write at exit
}
