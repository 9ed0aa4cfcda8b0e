// Shield.admit() cost: decisions per second on one core for typical flood shapes.
// Run: npx tsx bench/shield.bench.ts   (median of 7 runs per admit() case, then one 3 s UDP flood)
import { spawn } from 'node:child_process';
import { Shield } from '../src/engine/shield/index.js';
import { TransportLayer } from '../src/engine/transport/index.js';

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

// ---------- end to end: a UDP flood from a banned source into a TransportLayer ----------
// A separate process floods one listener for FLOOD_MS; the receiver counts datagrams the shield
// dropped per second. Sender and receiver share the machine, so this is a floor, not a ceiling.
const FLOOD_MS = 3000;
const sender = `
const d = require('node:dgram').createSocket('udp4');
const msg = Buffer.from('INVITE sip:x@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\\r\\n' + 'X-Pad: ' + 'p'.repeat(300) + '\\r\\nContent-Length: 0\\r\\n\\r\\n');
const [port, ms] = process.argv.slice(1).map(Number);
const end = Date.now() + ms;
let sent = 0, inflight = 0;
function pump() {
  while (inflight < 256 && Date.now() < end) { inflight++; sent++; d.send(msg, port, '127.0.0.1', () => { inflight--; if (inflight === 0) pump(); }); }
  if (Date.now() >= end && inflight === 0) { console.log(sent); d.close(); }
}
pump();
`;

async function udpFlood(): Promise<void> {
  const shield = new Shield({ rate: { ratePerSec: 100, burst: 200 } });
  shield.ban('127.0.0.1', 3_600_000);
  const t = new TransportLayer({ listeners: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], shield });
  let delivered = 0;
  t.on('message', () => { delivered++; });
  await t.listen();
  const port = t.contacts()[0]!.port;
  const child = spawn(process.execPath, ['-e', sender, String(port), String(FLOOD_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const start = Date.now();
  await new Promise((r) => child.once('exit', r));
  const secs = (Date.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 200));
  const dropped = t.stats.udp.shieldDropped;
  console.log(`UDP flood from a banned source, ${FLOOD_MS} ms: sent ${Number(out.trim()).toLocaleString()}, ` +
    `shield dropped ${dropped.toLocaleString()} (${Math.round(dropped / secs).toLocaleString()} packets/s), delivered ${delivered}`);
  await t.close();
  shield.close();
}

await udpFlood();
