// Shield.admit() cost: decisions per second on one core for typical flood shapes.
// Run: npx tsx bench/shield.bench.ts            (prints the median of 7 runs per case)
import { Shield } from '../src/engine/shield/index.js';

const RUNS = 7;
const N = 2_000_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Decisions/s for `n` calls of admit(addrs[i % addrs.length]). */
function measure(shield: Shield, addrs: string[], n = N): number {
  const len = addrs.length;
  let admitted = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (shield.admit(addrs[i % len]!)) admitted++;
  const ns = Number(process.hrtime.bigint() - t0);
  if (admitted < 0) console.log(admitted); // keep the loop observable
  return n / (ns / 1e9);
}

function manyAddresses(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return out;
}

const cases: { name: string; make: () => Shield; addrs: string[] }[] = [
  {
    name: 'one banned source (ban set hit)',
    make: () => { const s = new Shield({ rate: { ratePerSec: 100, burst: 200 } }); s.ban('203.0.113.66', 3_600_000); return s; },
    addrs: ['203.0.113.66'],
  },
  {
    name: 'one source over its rate (bucket empty)',
    make: () => new Shield({ rate: { ratePerSec: 100, burst: 200 } }),
    addrs: ['203.0.113.66'],
  },
  {
    name: 'one denied source (deny CIDR, cached)',
    make: () => new Shield({ deny: ['203.0.113.0/24'], rate: { ratePerSec: 100, burst: 200 } }),
    addrs: ['203.0.113.66'],
  },
  {
    name: '50,000 sources, rate limit only',
    make: () => new Shield({ rate: { ratePerSec: 100, burst: 200 } }),
    addrs: manyAddresses(50_000),
  },
  {
    name: '50,000 sources, allow list (not allowed) + rate',
    make: () => new Shield({ allow: ['192.0.2.0/24', '198.51.100.0/24'], rate: { ratePerSec: 100, burst: 200 } }),
    addrs: manyAddresses(50_000),
  },
  {
    name: '300,000 sources, table cap 100,000 (every packet a new source: eviction + ACL)',
    make: () => new Shield({ deny: ['203.0.113.0/24'], rate: { ratePerSec: 100, burst: 200 }, maxSources: 100_000 }),
    addrs: manyAddresses(300_000),
  },
];

console.log(`node ${process.version}, ${N.toLocaleString()} admit() calls per run, median of ${RUNS} runs`);
for (const c of cases) {
  const results: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const s = c.make();
    // The first pass over the addresses fills the table; measure steady state, except where
    // every packet is meant to be a new source.
    measure(s, c.addrs, Math.min(c.addrs.length, 200_000));
    results.push(measure(s, c.addrs, c.addrs.length >= 300_000 ? 300_000 : N));
    s.close();
  }
  console.log(`${c.name.padEnd(88)} ${(median(results) / 1e6).toFixed(2)} M decisions/s`);
}
