// Which objects keep received message text alive through V8 sliced strings.
// Run: npx tsx bench/heap-strings.ts FILE.heapsnapshot [--top 30]
//
// V8 cuts a substring of 13 characters or more as a *sliced string*: a small object pointing
// into its parent string, which then stays alive as long as the slice does. A header value kept
// from a 1–2 KB SIP message keeps the whole message. For every sliced string (and every
// concatenated string with a sliced string inside) this tool finds who holds it (retainer's
// constructor and the edge's name), and sums per holder the distinct parent strings kept only
// that way: the bytes that copying the kept value (src/engine/transaction/own.ts) would free.
// Loads the whole snapshot (for the bench's small snapshots, not for a busy server's).
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[]; edges: number[]; strings: string[];
}

const file = process.argv[2];
if (!file) { console.error('usage: npx tsx bench/heap-strings.ts FILE.heapsnapshot [--top 30]'); process.exit(2); }
const top = process.argv.includes('--top') ? Number(process.argv[process.argv.indexOf('--top') + 1]) : 30;
const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const { node_fields: nf, node_types: [nodeTypes], edge_fields: ef, edge_types: [edgeTypes] } = s.snapshot.meta;
const NF = nf.length, EF = ef.length;
const nType = nf.indexOf('type'), nName = nf.indexOf('name'), nSize = nf.indexOf('self_size'), nEdges = nf.indexOf('edge_count');
const eType = ef.indexOf('type'), eName = ef.indexOf('name_or_index'), eTo = ef.indexOf('to_node');
const count = s.nodes.length / NF;
const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += s.nodes[i * NF + nEdges]! * EF; firstEdge[i + 1] = e; }
const typeOf = (i: number) => nodeTypes[s.nodes[i * NF + nType]!]!;
const nameOf = (i: number) => s.strings[s.nodes[i * NF + nName]!]!;
const sizeOf = (i: number) => s.nodes[i * NF + nSize]!;
const edgeName = (e: number) => {
  const t = edgeTypes[s.edges[e + eType]!]!;
  const n = s.edges[e + eName]!;
  return t === 'element' || t === 'hidden' ? `[${n}]` : s.strings[n]!;
};

// Reverse edges (retainers), skipping weak ones.
const retainers: number[][] = Array.from({ length: count }, () => []);
for (let i = 0; i < count; i++) {
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) {
    if (edgeTypes[s.edges[e + eType]!] === 'weak') continue;
    retainers[s.edges[e + eTo]! / NF]!.push(i, e);
  }
}
const children = (i: number, name: string): number[] => {
  const out: number[] = [];
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) if (edgeName(e) === name) out.push(s.edges[e + eTo]! / NF);
  return out;
};
/** Parent strings a string keeps alive through slices (a cons string: through its halves). */
const parentsOf = (i: number, out: Set<number>, depth = 0): void => {
  const t = typeOf(i);
  if (t === 'sliced string') for (const p of children(i, 'parent')) out.add(p);
  else if (t === 'concatenated string' && depth < 64) for (const h of [...children(i, 'first'), ...children(i, 'second')]) parentsOf(h, out, depth + 1);
};

// Holders: the first non-string retainer of each string that keeps a parent.
const holders = new Map<string, { strings: number; parents: Set<number> }>();
for (let i = 0; i < count; i++) {
  const t = typeOf(i);
  if (t !== 'sliced string' && t !== 'concatenated string') continue;
  const ps = new Set<number>();
  parentsOf(i, ps);
  if (ps.size === 0) continue;
  const rs = retainers[i]!;
  for (let k = 0; k < rs.length; k += 2) {
    const r = rs[k]!;
    const rt = typeOf(r);
    if (rt === 'sliced string' || rt === 'concatenated string') continue; // counted at the outer string
    const key = `${rt === 'object' || rt === 'closure' ? nameOf(r) : rt}.${edgeName(rs[k + 1]!)}`;
    const h = holders.get(key) ?? { strings: 0, parents: new Set<number>() };
    h.strings++;
    for (const p of ps) h.parents.add(p);
    holders.set(key, h);
  }
}
const rows = [...holders].map(([k, h]) => ({ k, strings: h.strings, parents: h.parents.size, bytes: [...h.parents].reduce((a, p) => a + sizeOf(p), 0) }));
rows.sort((a, b) => b.bytes - a.bytes);
const allParents = new Set<number>();
for (const h of holders.values()) for (const p of h.parents) allParents.add(p);
console.log(`${file}: ${count} nodes; ${allParents.size} parent strings (${([...allParents].reduce((a, p) => a + sizeOf(p), 0) / 1024).toFixed(0)} KiB) kept by slices`);
console.log('  strings  parents  parent KiB  holder.edge');
for (const r of rows.slice(0, top)) console.log(`  ${String(r.strings).padStart(7)}  ${String(r.parents).padStart(7)}  ${(r.bytes / 1024).toFixed(0).padStart(10)}  ${r.k}`);

// --path NAME: retainer chains (up to 8 steps, first retainer each step) of 3 objects named NAME.
const pathOf = process.argv.includes('--path') ? process.argv[process.argv.indexOf('--path') + 1] : undefined;
if (pathOf) {
  let shown = 0;
  for (let i = 0; i < count && shown < 3; i++) {
    if (nameOf(i) !== pathOf || typeOf(i) !== 'object') continue;
    shown++;
    const chain: string[] = [];
    const seen = new Set<number>([i]);
    let at = i;
    for (let step = 0; step < 8; step++) {
      const rs = retainers[at]!;
      let k = 0;
      while (k < rs.length && seen.has(rs[k]!)) k += 2;
      if (k >= rs.length) break;
      chain.push(`${typeOf(rs[k]!)}:${nameOf(rs[k]!).slice(0, 40)}.${edgeName(rs[k + 1]!)}`);
      at = rs[k]!;
      seen.add(at);
    }
    console.log(`  ${pathOf} ← ${chain.join(' ← ')}`);
  }
}

// --census: objects by type and constructor (count, self size), largest first.
if (process.argv.includes('--census')) {
  const by = new Map<string, { n: number; bytes: number }>();
  for (let i = 0; i < count; i++) {
    const t = typeOf(i);
    const k = t === 'object' || t === 'closure' || t === 'array' || t === 'hidden' || t === 'native' ? `${t}:${nameOf(i).slice(0, 50)}` : t;
    const e = by.get(k) ?? { n: 0, bytes: 0 };
    e.n++; e.bytes += sizeOf(i);
    by.set(k, e);
  }
  for (const [k, e] of [...by].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) console.log(`  ${String(e.n).padStart(8)} ${(e.bytes / 1024).toFixed(0).padStart(8)} KiB  ${k}`);
}

// --holders NAME: what holds the nodes named NAME (e.g. "(object properties)"), by retainer and edge.
const holdersOf = process.argv.includes('--holders') ? process.argv[process.argv.indexOf('--holders') + 1] : undefined;
if (holdersOf) {
  const by = new Map<string, { n: number; bytes: number }>();
  for (let i = 0; i < count; i++) {
    if (nameOf(i) !== holdersOf) continue;
    const rs = retainers[i]!;
    for (let k = 0; k < rs.length; k += 2) {
      const key = `${typeOf(rs[k]!)}:${nameOf(rs[k]!).slice(0, 40)}.${edgeName(rs[k + 1]!)}`;
      const e = by.get(key) ?? { n: 0, bytes: 0 };
      e.n++; e.bytes += sizeOf(i);
      by.set(key, e);
    }
  }
  for (const [k, e] of [...by].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) console.log(`  ${String(e.n).padStart(8)} ${(e.bytes / 1024).toFixed(0).padStart(8)} KiB  ${k}`);
}

// --owners A,B,...: every node's bytes attributed to the nearest object along its first retainer
// chain (up to 16 steps) whose constructor is listed; an engine Dialog (edge `binding`) and a
// drachtio-srf Dialog (edge `req`) are told apart. Prints bytes and objects per owner; with
// `--owner-census LABEL` also that owner's bytes by kind and the edge that reaches them.
const ownersArg = process.argv.includes('--owners') ? process.argv[process.argv.indexOf('--owners') + 1]! : undefined;
if (ownersArg) {
  const wanted = new Set(ownersArg.split(','));
  const hasEdge = (i: number, name: string) => { for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) if (edgeName(e) === name) return true; return false; };
  const label = new Map<number, string>();
  for (let i = 0; i < count; i++) {
    const n = nameOf(i);
    if (typeOf(i) !== 'object' || !wanted.has(n)) continue;
    label.set(i, n === 'Dialog' ? (hasEdge(i, 'binding') ? 'Dialog (engine)' : hasEdge(i, 'req') ? 'Dialog (drachtio-srf)' : 'Dialog (?)') : n);
  }
  const memo = new Int32Array(count).fill(-2); // -2 unknown, -1 none, else owner node
  const ownerOf = (i: number): number => {
    const path: number[] = [];
    let at = i, found = -1;
    for (let step = 0; step < 16; step++) {
      if (memo[at] !== -2) { found = memo[at]!; break; }
      if (label.has(at)) { found = at; break; }
      path.push(at);
      const rs = retainers[at]!;
      let k = 0;
      while (k < rs.length && path.includes(rs[k]!)) k += 2;
      if (k >= rs.length) break;
      at = rs[k]!;
    }
    for (const p of path) memo[p] = found;
    return found;
  };
  const by = new Map<string, { n: number; bytes: number }>();
  for (let i = 0; i < count; i++) {
    const o = label.has(i) ? i : ownerOf(i);
    const k = o < 0 ? '(none of these)' : label.get(o)!;
    const e = by.get(k) ?? { n: 0, bytes: 0 };
    e.n++; e.bytes += sizeOf(i);
    by.set(k, e);
  }
  const owners = [...label.values()].reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  for (const [k, e] of [...by].sort((a, b) => b[1].bytes - a[1].bytes)) console.log(`  ${(e.bytes / 1024).toFixed(0).padStart(8)} KiB ${String(e.n).padStart(8)} objects  ${String(owners.get(k) ?? '').padStart(6)}×  ${k}`);
  // --owner-census LABEL: what an owner's bytes are, by type:constructor and the edge that reaches them.
  const censusOf = process.argv.includes('--owner-census') ? process.argv[process.argv.indexOf('--owner-census') + 1] : undefined;
  if (censusOf) {
    const parts = new Map<string, { n: number; bytes: number }>();
    for (let i = 0; i < count; i++) {
      const o = label.has(i) ? i : ownerOf(i);
      if (o < 0 || label.get(o) !== censusOf) continue;
      const rs = retainers[i]!;
      const via = rs.length ? `${typeOf(rs[0]!)}:${nameOf(rs[0]!).slice(0, 30)}.${edgeName(rs[1]!)}` : '';
      const t = typeOf(i);
      const k = `${t === 'object' || t === 'closure' || t === 'array' || t === 'hidden' ? `${t}:${nameOf(i).slice(0, 40)}` : t}  ← ${via}`;
      const e = parts.get(k) ?? { n: 0, bytes: 0 };
      e.n++; e.bytes += sizeOf(i);
      parts.set(k, e);
    }
    console.log(`  ${censusOf}, by part:`);
    for (const [k, e] of [...parts].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) console.log(`  ${(e.bytes / 1024).toFixed(0).padStart(8)} KiB ${String(e.n).padStart(8)}  ${k}`);
  }
}
