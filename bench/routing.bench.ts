// Per-call cost of location routing (LocationRouting.targets(): route → ENUM → RFC 3263 →
// health filter) with a warm cache, against real nsd+unbound on loopback, for a static IP
// target, a DNS-named target (NAPTR → SRV → A, DNSSEC required) and an ENUM route; plus the
// cold-cache cost (our cache flushed each call, unbound's warm) for scale. Medians of rounds.
//   npx tsx bench/routing.bench.ts [calls-per-round] [rounds]
import pino from 'pino';
import { PolicySchema, type Policy } from '../src/policy/schema.js';
import { LocationRouting } from '../src/routing/index.js';
import { startDns } from '../test/helpers/dns.js';
import { stopAll } from '../test/helpers/procs.js';

const CALLS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 7);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const dns = await startDns([
  {
    origin: 'carrier.test', signed: true,
    records: ['@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp', '_sip._udp IN SRV 10 60 5060 sbc1', '_sip._udp IN SRV 10 40 5060 sbc2', 'sbc1 IN A 192.0.2.1', 'sbc2 IN A 192.0.2.2'].join('\n'),
  },
  { origin: 'e164.test', signed: true, records: '0.3.9.4 IN NAPTR 10 10 "u" "E2U+sip" "!^\\\\+49(.*)$!sip:\\\\1@carrier.test!" .' },
]);

const policy: Policy = PolicySchema.parse({
  listen: [
    { name: 'p', side: 'peer', transport: 'udp', address: '127.0.0.1', port: 5060 },
    { name: 'c', side: 'core', transport: 'udp', address: '127.0.0.1', port: 5080 },
  ],
  dns: { resolvers: [`127.0.0.1:${dns.resolverPort}`], dnssec: 'required' },
  core: { targets: ['sip:192.0.2.10:5060'] },
  peers: [
    { id: 'static', match: { addresses: ['198.51.100.1/32'] }, targets: ['sip:192.0.2.20:5060', 'sip:192.0.2.21:5060'] },
    { id: 'named', match: { addresses: ['198.51.100.2/32'] }, targets: ['sip:carrier.test'] },
  ],
  routes: [
    { from: 'core', called_prefix: '+49', to: 'named', enum: { suffixes: ['e164.test'], allow: { named: ['carrier.test'] } } },
    { from: 'core', called_prefix: '+44', to: 'static' },
    { from: 'core', called_prefix: '+33', to: 'named' },
  ],
});
const routing = new LocationRouting(pino({ level: 'silent' }));

async function perCall(prefix: string, flush = false): Promise<number> {
  const route = policy.routes.find((r) => r.called_prefix === prefix)!;
  const n = flush ? Math.min(CALLS, 500) : CALLS;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (flush) routing.locatorFor(policy).flush();
    const r = await routing.targets(policy, route, route.to, `${prefix}301234567`.slice(0, 5));
    if (!r.ok || r.targets.length === 0) throw new Error(`not routed: ${JSON.stringify(r)}`);
  }
  return ((performance.now() - t0) * 1000) / n;
}

const cases: Array<[string, string, boolean]> = [
  ['static IP targets (2)', '+44', false],
  ['DNS name, NAPTR→SRV→A, dnssec required, warm', '+33', false],
  ['ENUM + DNS name, dnssec required, warm', '+49', false],
  ['DNS name, our cache cold (unbound warm)', '+33', true],
];
try {
  for (const [, p, f] of cases) await perCall(p, f); // warm-up: JIT and caches
  console.log(`routing per call (µs), median of ${ROUNDS} rounds of ${CALLS} calls (cold: 500)`);
  for (const [name, p, f] of cases) {
    const xs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) xs.push(await perCall(p, f));
    console.log(`  ${name.padEnd(50)} ${median(xs).toFixed(2).padStart(9)} µs  (${(1e6 / median(xs)).toFixed(0)} calls/s on one core)`);
  }
} finally {
  await dns.stop();
  await stopAll();
}
