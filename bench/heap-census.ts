// Census of a V8 .heapsnapshot by node type and constructor, streamed (a snapshot of a busy
// peergate is hundreds of MiB): the `nodes` array is read number by number (node_fields from the
// meta), the `strings` table at the end resolves the names. Objects, closures, arrays, natives
// and hidden nodes are kept by name; strings, code and numbers are summed by type. The same
// reading as bench/soak.bench.ts's census, as a module (bench/held-calls.bench.ts uses it).
import { createReadStream } from 'node:fs';

export interface HeapCensus { nodes: number; bytes: number; by: Map<string, { count: number; bytes: number }> }

export async function heapCensus(file: string): Promise<HeapCensus> {
  let head = '';
  let state: 'head' | 'nodes' | 'skip' | 'strings' = 'head';
  let fields: string[] = [];
  let types: string[] = [];
  let iType = 0, iName = 0, iSize = 0;
  let field = 0;
  let num = 0;
  let inNum = false;
  let node: number[] = [];
  const raw = new Map<number, Map<number, { count: number; bytes: number }>>();
  let carry = '';
  const tail: string[] = [];
  let nodes = 0;
  let bytes = 0;
  const named = new Set(['object', 'closure', 'array', 'native', 'hidden']);
  const endNode = () => {
    const type = node[iType]!;
    const size = node[iSize]!;
    nodes++; bytes += size;
    let byType = raw.get(type);
    if (!byType) { byType = new Map(); raw.set(type, byType); }
    const key = named.has(types[type]!) ? node[iName]! : -1;
    const e = byType.get(key) ?? { count: 0, bytes: 0 };
    e.count++; e.bytes += size;
    byType.set(key, e);
  };
  for await (const chunk of createReadStream(file, { encoding: 'latin1', highWaterMark: 1 << 20 }) as AsyncIterable<string>) {
    let i = 0;
    if (state === 'head') {
      head += chunk;
      const at = head.indexOf('"nodes":[');
      if (at < 0) continue;
      const meta = JSON.parse(head.slice(0, head.lastIndexOf(',', at)) + '}') as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } } };
      fields = meta.snapshot.meta.node_fields;
      types = meta.snapshot.meta.node_types[0];
      iType = fields.indexOf('type'); iName = fields.indexOf('name'); iSize = fields.indexOf('self_size');
      node = new Array<number>(fields.length).fill(0);
      state = 'nodes';
      i = chunk.length - (head.length - at - '"nodes":['.length);
      head = '';
    }
    if (state === 'nodes') {
      for (; i < chunk.length; i++) {
        const c = chunk.charCodeAt(i);
        if (c >= 48 && c <= 57) { num = num * 10 + (c - 48); inNum = true; continue; }
        if (inNum) {
          node[field++] = num; num = 0; inNum = false;
          if (field === fields.length) { endNode(); field = 0; }
        }
        if (c === 93) { state = 'skip'; i++; break; } // ]
      }
    }
    if (state === 'skip') {
      const text = carry + chunk.slice(i);
      const at = text.indexOf('"strings":[');
      if (at < 0) { carry = text.slice(-16); continue; }
      state = 'strings';
      tail.push(text.slice(at + '"strings":'.length));
      continue;
    }
    if (state === 'strings') tail.push(chunk);
  }
  const joined = tail.join('').trimEnd();
  const strings = JSON.parse(Buffer.from(joined.slice(0, joined.lastIndexOf(']') + 1), 'latin1').toString('utf8')) as string[];
  const by = new Map<string, { count: number; bytes: number }>();
  for (const [type, names] of raw) {
    for (const [name, e] of names) by.set(`${types[type]}:${name < 0 ? '*' : strings[name]}`, e);
  }
  return { nodes, bytes, by };
}

/** What grew from `a` to `b`, per item (`n` items added): the `top` rows by bytes. */
export function perItemGrowth(a: HeapCensus, b: HeapCensus, n: number, top = 30): string[] {
  const rows = [...new Set([...a.by.keys(), ...b.by.keys()])].map((k) => {
    const x = a.by.get(k) ?? { count: 0, bytes: 0 };
    const y = b.by.get(k) ?? { count: 0, bytes: 0 };
    return { k, dc: (y.count - x.count) / n, db: (y.bytes - x.bytes) / n };
  }).sort((p, q) => q.db - p.db);
  const out = [`  ${'B/item'.padStart(8)} ${'objects/item'.padStart(13)}  type:constructor   (total ${((b.bytes - a.bytes) / n).toFixed(0)} B/item, ${((b.nodes - a.nodes) / n).toFixed(1)} objects/item)`];
  for (const r of rows.slice(0, top)) out.push(`  ${r.db.toFixed(0).padStart(8)} ${r.dc.toFixed(2).padStart(13)}  ${r.k.slice(0, 80).replace(/\s+/g, ' ')}`);
  return out;
}
