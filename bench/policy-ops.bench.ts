// Policy load and /metrics render cost: neither is per-message, but a reload must not stall
// calls and a scrape must stay cheap with many peers. Prints medians.
//   npx tsx bench/policy-ops.bench.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy } from '../src/policy/load.js';
import { registry, callsTotal, requestsTotal, responsesTotal, activeCalls } from '../src/ops/metrics.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(runs: number, fn: () => unknown): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(out);
}

const root = join(import.meta.dirname, '..');
const example = readFileSync(join(root, 'policies/example.yaml'), 'utf8');

// A large policy: 500 peers, 1000 routes.
const peers: string[] = [];
const routes: string[] = [];
for (let i = 0; i < 500; i++) {
  peers.push(`  - { id: p${i}, match: { addresses: [ 10.${i >> 8}.${i & 255}.0/24 ] }, targets: [ "sip:10.${i >> 8}.${i & 255}.1:5060" ], limits: { cps: 10 } }`);
  routes.push(`  - { from: core, called_prefix: "+${1000 + i}", to: [ p${i}, p${(i + 1) % 500} ] }`, `  - { from: p${i}, to: core }`);
}
const big = `listen:
  - { name: p, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: c, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core: { targets: [ "sip:127.0.0.1:5090" ] }
peers:
${peers.join('\n')}
routes:
${routes.join('\n')}
`;
if (!parsePolicy(big, '/bench/big.yaml').ok) throw new Error('bench policy invalid');

console.log(`parsePolicy example.yaml:              ${(await time(200, () => parsePolicy(example, '/bench/example.yaml'))).toFixed(3)} ms median`);
console.log(`parsePolicy 500 peers / 1000 routes:   ${(await time(20, () => parsePolicy(big, '/bench/big.yaml'))).toFixed(1)} ms median`);

// A carrier's prefix table: 10,000 routes from the core, one per 5-digit prefix, on the same peers.
const prefixes = Array.from({ length: 10_000 }, (_, i) => `  - { from: core, called_prefix: "+9${String(i).padStart(5, '0')}", to: p${i % 500} }`);
const table = big.replace('routes:\n', `routes:\n${prefixes.join('\n')}\n`);
if (!parsePolicy(table, '/bench/table.yaml').ok) throw new Error('bench policy with a prefix table invalid');
console.log(`parsePolicy 500 peers / 11000 routes:  ${(await time(5, () => parsePolicy(table, '/bench/table.yaml'))).toFixed(1)} ms median`);

for (let i = 0; i < 500; i++) {
  const peer = `p${i}`;
  callsTotal.inc({ peer, direction: 'inbound', result: 'answered' });
  callsTotal.inc({ peer, direction: 'outbound', result: 'failed' });
  for (const method of ['INVITE', 'ACK', 'BYE']) requestsTotal.inc({ peer, method });
  for (const c of ['1xx', '2xx', '4xx']) responsesTotal.inc({ peer, class: c });
  activeCalls.set({ peer }, i % 7);
}
console.log(`/metrics render, 500 peers (~5k series): ${(await time(50, () => registry.metrics())).toFixed(2)} ms median`);

// A reload's stall of the event loop: the longest gap between 5 ms ticks while the prefix-table
// policy above loads in place (loadPolicy) and through a worker thread (loadPolicyOffThread, what
// PolicyHolder.reload does), compiled code from dist/ (`npm run build` first), alternated.
{
  const { existsSync, writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dist = join(root, 'dist/policy');
  if (!existsSync(join(dist, 'parse-thread.js'))) console.log('reload stall: run `npm run build` first (measured on dist/)');
  else {
    const { loadPolicy } = await import(join(dist, 'load.js')) as typeof import('../src/policy/load.js');
    const { loadPolicyOffThread } = await import(join(dist, 'parse-thread.js')) as typeof import('../src/policy/parse-thread.js');
    const file = join(mkdtempSync(join(tmpdir(), 'pg-policy-')), 'table.yaml');
    writeFileSync(file, table);
    const stall = async (load: () => unknown): Promise<number> => {
      let last = performance.now();
      let longest = 0;
      const tick = setInterval(() => { const now = performance.now(); longest = Math.max(longest, now - last); last = now; }, 5);
      await load();
      await new Promise((r) => setTimeout(r, 30)); // the tick after a stall measures it
      clearInterval(tick);
      return longest;
    };
    const inPlace: number[] = [];
    const offThread: number[] = [];
    for (let i = 0; i < 5; i++) {
      inPlace.push(await stall(() => loadPolicy(file)));
      offThread.push(await stall(() => loadPolicyOffThread(file, {})));
    }
    console.log(`reload of 500 peers / 11000 routes, longest event-loop stall: in place ${median(inPlace).toFixed(0)} ms, off-thread ${median(offThread).toFixed(0)} ms (medians of 5)`);
  }
}
