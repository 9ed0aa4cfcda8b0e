// Call rate through `peergate start` with a DNS-named core target (SRV → A, through a real
// unbound + nsd on loopback, answers cached) against a static IP target, in one run, same
// machine. Like bench/b2bua.bench.ts: each rate runs `seconds`; the result is the highest rate
// with zero failed calls that kept up (done within the step plus 2 s).
//
//   npx tsx bench/routing-calls.bench.ts [--max 1200] [--seconds 5]
import { parseArgs } from 'node:util';
import { freePorts, startSipp, stopAll, sweepRates } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
import { startDns } from '../test/helpers/dns.js';

const { values } = parseArgs({ options: { max: { type: 'string', default: '1200' }, seconds: { type: 'string', default: '5' } } });
const MAX = Number(values.max);
const SECONDS = Number(values.seconds);
const RATES = [50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1500].filter((r) => r <= MAX);

function sweep(label: string, target: string): Promise<number> {
  return sweepRates(label, target, { rates: RATES, seconds: SECONDS, labelWidth: 8 });
}

async function main(): Promise<void> {
  const [uasPort] = await freePorts(1) as [number];
  const dns = await startDns([{ origin: 'bench.test', signed: true, records: `_sip._udp.core IN SRV 10 0 ${uasPort} box\nbox IN A 127.0.0.3` }]);
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  const node = async (coreTarget: string) => {
    const [peerPort, corePort, ops] = await freePorts(3);
    const pg = await startPeergate(twoSidedPolicy({ peerPort: peerPort!, corePort: corePort!, opsPort: ops!, coreTarget, logLevel: 'error' }, {
      dns: { resolvers: [`127.0.0.1:${dns.resolverPort}`], dnssec: 'required' },
      media: { anchoring: false },
      peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    }));
    return { pg, target: `127.0.0.1:${peerPort}` };
  };
  const fixed = await node(`sip:127.0.0.3:${uasPort}`);
  const named = await node('sip:core.bench.test');
  try {
    console.log(`# ${SECONDS} s per step, rates ${RATES.join(', ')}`);
    const s = await sweep('static', fixed.target);
    const d = await sweep('dns', named.target);
    console.log(`\n| core target | max calls/s, 0 failures, kept up |\n|---|---|\n| sip:127.0.0.3 (static) | ${s} |\n| sip:core.bench.test (SRV → A, dnssec required, cached) | ${d} |`);
    console.log(`ratio dns/static: ${(d / Math.max(1, s)).toFixed(2)}; DNS queries sent by the DNS node: ${await named.pg.metric('peergate_dns_queries_total')}`);
  } finally {
    await fixed.pg.stop();
    await named.pg.stop();
    await dns.stop();
    await stopAll();
  }
}

await main();
