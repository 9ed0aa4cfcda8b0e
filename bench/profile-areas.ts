// Share of a process's busy CPU by area of peergate, from a node --cpu-prof profile (as written
// by `bench/cpu-budget.bench.ts --cpu-prof DIR`): each sample goes to the innermost frame that is
// peergate source or an npm package; node internals and natives go to their caller, except UDP
// sends (node:dgram), the TCP socket to drachtio-srf (node:net, streams), timers and node:crypto,
// which are areas of their own. Only the load is counted: from 1 s after the first sample inside
// the B2BUA's onInvite (or `--marker`: another function run once per call, e.g. `shed`, the
// overload gate's hook, for the primary process of `workers: N`) to 1 s before the last.
//
//   npx tsx bench/profile-areas.ts DIR/0/CPU.*.cpuprofile [--ms-per-call 2.2] [--marker onInvite]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { areaOf } from './areas.js';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'ms-per-call': { type: 'string' }, marker: { type: 'string', default: 'onInvite' } } });

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map<number, string>();
  const attribute = (id: number): string => {
    const known = memo.get(id);
    if (known) return known;
    const n = byId.get(id)!;
    const up = parent.get(id);
    const a = areaOf(n.callFrame.url, n.callFrame.functionName) ?? (up === undefined ? 'node internals' : attribute(up));
    memo.set(id, a);
    return a;
  };
  const inInvite = (id: number | undefined): boolean => {
    for (let x = id; x !== undefined; x = parent.get(x)) if (byId.get(x)!.callFrame.functionName === values.marker) return true;
    return false;
  };
  let t = 0;
  let first = Infinity, last = -Infinity;
  p.samples.forEach((s, i) => { t += p.timeDeltas[i]!; if (inInvite(s)) { first = Math.min(first, t); last = t; } });
  const lo = first + 1e6, hi = last - 1e6;
  const by = new Map<string, number>();
  t = 0;
  p.samples.forEach((s, i) => {
    t += p.timeDeltas[i]!;
    if (t >= lo && t < hi) { const a = attribute(s); by.set(a, (by.get(a) ?? 0) + p.timeDeltas[i]!); }
  });
  by.delete('idle');
  const busy = [...by.values()].reduce((a, b) => a + b, 0);
  const msPerCall = values['ms-per-call'] ? Number(values['ms-per-call']) : undefined;
  console.log(`${file}: ${((hi - lo) / 1e6).toFixed(1)} s of load, ${(busy / 1e3).toFixed(0)} ms busy`);
  for (const [a, us] of [...by.entries()].sort((x, y) => y[1] - x[1])) {
    const share = us / busy;
    console.log(`| ${a} | ${(100 * share).toFixed(1)}% |${msPerCall === undefined ? '' : ` ${(share * msPerCall).toFixed(2)} |`}`);
  }
}
