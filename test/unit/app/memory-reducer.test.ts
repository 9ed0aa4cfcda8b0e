// The memory reduction after a burst of call set-ups (src/app/memory-reducer.ts, policy
// `memory`): when it is due (a burst, then a quiet engine for quiet_s; never while transactions
// are alive beyond quiet_transactions), that it runs once per burst, and that the reduction
// itself: trimmed, and compacted (the native addon, or plain GCs without it) only with
// compact_heap, which the workers are told as well.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { getHeapSpaceStatistics } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { parsePolicy } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/schema.js';
import { MemorySchema } from '../../../src/app/memory-schema.js';
import { MemorySubsystem, QuietWatch, reduceMemory, reducerImplementation, SAMPLE_MS } from '../../../src/app/memory-reducer.js';

const BASE = `listen:
  - { name: peer-udp, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core:
  targets: [ "sip:127.0.0.1:5090" ]
`;

const ADDON = fileURLToPath(new URL('../../../native/build/Release/memory.node', import.meta.url));
const settings = (over: Partial<ReturnType<typeof MemorySchema.parse>> = {}) => ({ ...MemorySchema.parse({}), ...over });

/** Samples every SAMPLE_MS from `t0`: one transaction count per sample; the times a reduction was due. */
function run(watch: QuietWatch, counts: number[], t0 = 0): number[] {
  const due: number[] = [];
  counts.forEach((n, i) => { if (watch.observe(t0 + i * SAMPLE_MS, n)) due.push(t0 + i * SAMPLE_MS); });
  return due;
}
const repeat = (n: number, times: number) => Array.from({ length: times }, () => n);

describe('policy key memory', () => {
  it('defaults: on, after a burst of 1,000 transactions, quiet at ≤ 20 for 10 s, without compacting V8\'s heap', () => {
    const d = parsePolicy(BASE, '/x/p.yaml');
    expect(d.ok && d.policy.memory).toEqual({ reduce_when_quiet: true, compact_heap: false, burst_transactions: 1000, quiet_transactions: 20, quiet_s: 10 });
    const off = parsePolicy(`${BASE}memory: { reduce_when_quiet: false, quiet_s: 60 }\n`, '/x/p.yaml');
    expect(off.ok && off.policy.memory.reduce_when_quiet).toBe(false);
    expect(off.ok && off.policy.memory.quiet_s).toBe(60);
  });

  it('refuses unknown keys and out-of-range values', () => {
    expect(parsePolicy(`${BASE}memory: { quiet_s: 0 }\n`, '/x/p.yaml').ok).toBe(false);
    expect(parsePolicy(`${BASE}memory: { burst_transactions: -1 }\n`, '/x/p.yaml').ok).toBe(false);
    expect(parsePolicy(`${BASE}memory: { reduce: true }\n`, '/x/p.yaml').ok).toBe(false);
    expect(parsePolicy(`${BASE}memory: { compact_heap: yes please }\n`, '/x/p.yaml').ok).toBe(false);
  });
});

describe('QuietWatch: when a reduction is due', () => {
  it('after a burst, once the engine has been quiet for quiet_s, and only once', () => {
    const w = new QuietWatch(settings());
    // A burst (up to 9,000 transactions), their 32 s, then quiet (3 left: a held call's re-INVITE).
    const counts = [0, 2000, 6000, 9000, 9000, 8000, ...repeat(4000, 10), 500, 40, 3, 3, 3, 3, 3, 3, 3, 0, 0, ...repeat(0, 30)];
    const due = run(w, counts);
    const quietAt = counts.indexOf(3) * SAMPLE_MS;
    expect(due).toEqual([quietAt + 10_000]);
  });

  it('never while transactions are alive beyond quiet_transactions: a steady call rate never reduces', () => {
    const w = new QuietWatch(settings());
    expect(run(w, repeat(5000, 1000))).toEqual([]);
    // Load coming and going, never quiet for 10 s in a row.
    expect(run(w, Array.from({ length: 1000 }, (_, i) => (i % 4 === 0 ? 25 : 0)))).toEqual([]);
  });

  it('a new burst after a reduction makes the next one due; a quiet node without a burst never reduces', () => {
    const w = new QuietWatch(settings());
    expect(run(w, repeat(0, 100))).toEqual([]);
    expect(run(w, repeat(999, 5), 200_000)).toEqual([]);
    expect(run(w, repeat(0, 20), 300_000)).toEqual([]);
    expect(run(w, [1500, ...repeat(0, 10)], 400_000)).toEqual([400_000 + 6 * SAMPLE_MS]);
    expect(run(w, repeat(0, 100), 500_000)).toEqual([]);
    expect(run(w, [3000, ...repeat(10, 10)], 700_000)).toEqual([700_000 + 6 * SAMPLE_MS]);
  });

  it('off: never; a reload takes the new settings', () => {
    const w = new QuietWatch(settings({ reduce_when_quiet: false }));
    expect(run(w, [5000, ...repeat(0, 20)])).toEqual([]);
    w.configure(settings({ quiet_s: 4, burst_transactions: 100 }));
    expect(run(w, [200, ...repeat(0, 5)], 100_000)).toEqual([100_000 + 3 * SAMPLE_MS]);
  });
});

describe('MemorySubsystem', () => {
  const policyWith = (yaml: string): Policy => {
    const r = parsePolicy(`${BASE}${yaml}`, '/x/p.yaml');
    if (!r.ok) throw new Error('bad policy');
    return r.policy;
  };

  it('reduces this process and tells the workers once the engine is quiet after a burst; nothing with an external engine', () => {
    let now = 0;
    let transactions: number | undefined = 4000;
    const told: boolean[] = [];
    const m = new MemorySubsystem({ policy: policyWith('memory: { quiet_s: 4 }\n'), log: pino({ level: 'silent' }), transactions: () => transactions, others: (o) => { told.push(o.compact); }, now: () => now });
    expect(m.check()).toBeUndefined();
    transactions = 0;
    for (; now <= 2000; now += SAMPLE_MS) expect(m.check()).toBeUndefined();
    now = 4000;
    const r = m.check();
    expect(r).toBeDefined();
    expect(r!.pauseMs).toBeGreaterThan(0);
    expect(r!.how).toBe(reducerImplementation());
    expect(r!.compacted).toBe(false);
    expect(told).toEqual([false]);
    now += 60_000;
    expect(m.check()).toBeUndefined();
    // compact_heap from a reload: the next burst's reduction compacts here and in the workers.
    m.reconfigure(policyWith('memory: { quiet_s: 4, compact_heap: true }\n'));
    transactions = 4000;
    expect(m.check()).toBeUndefined();
    transactions = 0;
    let again: ReturnType<typeof m.check>;
    for (let i = 0; i < 5 && again === undefined; i++, now += SAMPLE_MS) again = m.check();
    expect(again?.compacted).toBe(true);
    expect(told).toEqual([false, true]);
    transactions = undefined;
    const ext = new MemorySubsystem({ policy: policyWith(''), log: pino({ level: 'silent' }), transactions: () => transactions, now: () => now });
    for (let i = 0; i < 20; i++, now += SAMPLE_MS) expect(ext.check()).toBeUndefined();
  });

  const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!;
  /** Objects promoted together, every other one dropped afterwards: old-space pages left half
   *  empty, which V8's ordinary full GC leaves in place (44 MB committed for 23 used, two gc()).
   *  Returns the half kept alive. */
  const fragmentOldSpace = (): unknown[] => {
    const all: { i: number; s: string; a: number[] }[] = [];
    for (let i = 0; i < 300_000; i++) all.push({ i, s: `call-${i}`, a: [i] });
    reduceMemory({ compact: true });
    const keep = all.filter((o) => o.i % 2 === 0);
    all.length = 0;
    return keep;
  };

  it('with compact_heap the reduction compacts: a fragmented old space shrinks to near what is live', () => {
    const keep = fragmentOldSpace();
    const fragmented = oldSpace().space_size;
    const r = reduceMemory({ compact: true });
    const after = oldSpace();
    expect(keep.length).toBe(150_000);
    expect(r.how).toBe(existsSync(ADDON) ? 'native' : 'gc');
    if (r.how === 'native') {
      // Compacted: committed within 2× of used and well below the fragmented size.
      expect(after.space_size).toBeLessThan(fragmented * 0.75);
      expect(after.space_size).toBeLessThan(1.25 * after.space_used_size + 2 * 1048576);
    }
  });

  it('without compact_heap it runs no GC: the old space stays as it is, trimmed in a few ms', () => {
    // Only a full GC could shrink it, and the default reduction runs none (V8's compacting GC
    // costs the next burst its optimised code).
    const keep = fragmentOldSpace();
    const before = oldSpace();
    const r = reduceMemory({ compact: false });
    const after = oldSpace();
    expect(keep.length).toBe(150_000);
    expect(r.compacted).toBe(false);
    expect(after.space_size).toBeGreaterThanOrEqual(before.space_size);
    // The dead half is still counted as used: nothing was marked.
    expect(after.space_used_size).toBeGreaterThanOrEqual(before.space_used_size * 0.95);
    expect(r.pauseMs).toBeLessThan(200);
  });

  it.skipIf(!existsSync(ADDON))('unmaps the node binary\'s pages it does not use, keeps the pages relocations wrote, and the process runs on', () => {
    // In a fresh node: the binary's mapped pages and their private dirty part (the relocated
    // RELRO pages, anonymous copies that must not be dropped), before and after, then more work.
    const child = `
      const fs = require('fs');
      const m = require(${JSON.stringify(ADDON)});
      const exe = fs.readlinkSync('/proc/self/exe');
      const exeMaps = () => {
        let cur = false, rss = 0, dirty = 0;
        for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
          if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) cur = l.trim().endsWith(' ' + exe) && !/^\\S+ .w/.test(l);
          else if (cur && l.startsWith('Rss:')) rss += parseInt(l.slice(4));
          else if (cur && l.startsWith('Private_Dirty:')) dirty += parseInt(l.slice(14));
        }
        return { rss, dirty };
      };
      const before = exeMaps();
      const dropped = m.dropExecutable();
      const after = exeMaps();
      const work = require('zlib').gunzipSync(require('zlib').gzipSync(Buffer.from(JSON.stringify({ a: [1, 2, 3] })))).toString()
        + require('crypto').createHash('sha256').update('x').digest('hex');
      console.log(JSON.stringify({ before, after, dropped, work: work.length }));
    `;
    const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout) as { before: { rss: number; dirty: number }; after: { rss: number; dirty: number }; dropped: number; work: number };
    expect(o.dropped).toBeGreaterThan(8 * 1048576);
    // Most of the binary's read-only mappings go (kB): a fresh node touches ≈ 35–40 MB of them.
    expect(o.after.rss).toBeLessThan(o.before.rss - 8 * 1024);
    expect(o.before.dirty).toBeGreaterThan(0);
    expect(o.after.dirty).toBe(o.before.dirty);
    expect(o.work).toBe('{"a":[1,2,3]}'.length + 64);
  });
});
