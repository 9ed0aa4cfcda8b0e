// Call rate through `peergate start` with a DNS-named core target (SRV → A, through a real
// unbound + nsd on loopback, answers cached) against a static IP target, in one run, same
// machine. Like bench/b2bua.bench.ts: each rate runs `seconds`; the result is the highest rate
// with zero failed calls that kept up (done within the step plus 2 s). The two nodes take turns
// at each rate (which one goes first alternates), so that a noisy neighbour hits both alike;
// `--cpu-rate` also measures each node's CPU per call at one fixed rate, `--pairs` times.
//
//   npx tsx bench/routing-calls.bench.ts [--rates 200,400,500,600,700,800] [--seconds 5] [--cpu-rate 300] [--pairs 3]
import './require-build.js';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePorts, runSipp, startSipp, stopAll } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
import { startDns } from '../test/helpers/dns.js';

const { values } = parseArgs({ options: {
  rates: { type: 'string', default: '200,400,500,600,700,800,1000,1200' }, seconds: { type: 'string', default: '5' },
  'cpu-rate': { type: 'string', default: '300' }, pairs: { type: 'string', default: '3' },
} });
const RATES = values.rates.split(',').map(Number);
const SECONDS = Number(values.seconds);
const CPU_RATE = Number(values['cpu-rate']);
const PAIRS = Number(values.pairs);

/** User + system CPU of a process so far, in ms. */
const cpuMs = (pid: number): number => cpuSeconds(pid).total * 1000;

/** One step: `rate` calls/s for SECONDS through `target`; ok when all answered and it kept up. */
async function step(target: string, rate: number, pid: number): Promise<{ ok: boolean; line: string; cpuPerCall: number }> {
  const t0 = Date.now();
  const c0 = cpuMs(pid);
  const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(rate), '-m', String(rate * SECONDS), '-l', String(rate * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: SECONDS * 4 + 10 });
  const cpuPerCall = (cpuMs(pid) - c0) / Math.max(1, r.successful);
  const elapsedS = (Date.now() - t0) / 1000;
  const keptUp = elapsedS <= SECONDS + 2;
  const ok = r.failed === 0 && r.successful === rate * SECONDS && keptUp;
  const line = `${r.successful} ok, ${r.failed} failed, ${elapsedS.toFixed(1)} s, ${cpuPerCall.toFixed(2)} ms CPU/call${ok ? '' : keptUp ? '  <- failures' : '  <- fell behind'}`;
  return { ok, line, cpuPerCall };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

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
    const nodes = { static: fixed, dns: named };
    type Name = keyof typeof nodes;
    const cpu: Record<Name, number[]> = { static: [], dns: [] };
    console.log(`# CPU per call at ${CPU_RATE} calls/s, ${PAIRS} alternating pairs of ${SECONDS} s`);
    for (let i = 0; i < PAIRS; i++) {
      for (const name of (i % 2 === 0 ? ['static', 'dns'] : ['dns', 'static']) as Name[]) {
        const r = await step(nodes[name].target, CPU_RATE, nodes[name].pg.proc.pid);
        cpu[name].push(r.cpuPerCall);
        console.log(`${name.padEnd(7)} ${String(CPU_RATE).padStart(5)} calls/s: ${r.line}`);
      }
    }
    console.log(`# sweep, rates ${RATES.join(', ')}, ${SECONDS} s per step, the nodes alternating`);
    const best: Record<Name, number> = { static: 0, dns: 0 };
    const going: Record<Name, boolean> = { static: true, dns: true };
    for (const [i, rate] of RATES.entries()) {
      for (const name of (i % 2 === 0 ? ['static', 'dns'] : ['dns', 'static']) as Name[]) {
        if (!going[name]) continue;
        const r = await step(nodes[name].target, rate, nodes[name].pg.proc.pid);
        console.log(`${name.padEnd(7)} ${String(rate).padStart(5)} calls/s: ${r.line}`);
        if (r.ok) best[name] = rate; else going[name] = false;
      }
      if (!going.static && !going.dns) break;
    }
    const [cs, cd] = [median(cpu.static), median(cpu.dns)];
    console.log(`\n| core target | max calls/s, 0 failures, kept up | CPU ms per call at ${CPU_RATE}/s (median of ${PAIRS}) |\n|---|---|---|`);
    console.log(`| sip:127.0.0.3 (static) | ${best.static} | ${cs.toFixed(2)} |\n| sip:core.bench.test (SRV → A, dnssec required, cached) | ${best.dns} | ${cd.toFixed(2)} |`);
    console.log(`ratios dns/static: max rate ${(best.dns / Math.max(1, best.static)).toFixed(2)}, CPU per call ${(cd / cs).toFixed(2)}; DNS queries sent by the DNS node: ${await named.pg.metric('peergate_dns_queries_total')}`);
  } finally {
    await fixed.pg.stop();
    await named.pg.stop();
    await dns.stop();
    await stopAll();
  }
}

await main();
