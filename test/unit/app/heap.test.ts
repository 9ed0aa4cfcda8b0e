import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_GROWING_PERCENT, heapGrowingPercent, missingPrimaryNodeFlags, PRIMARY_NODE_FLAGS } from '../../../src/app/heap.js';

describe('primary heap growth (PEERGATE_HEAP_GROWING_PERCENT)', () => {
  it('defaults to 50 % when unset or empty', () => {
    expect(DEFAULT_HEAP_GROWING_PERCENT).toBe(50);
    expect(heapGrowingPercent({})).toBe(50);
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: ' ' })).toBe(50);
  });

  it('takes an integer, 0 meaning V8’s own sizing', () => {
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: '0' })).toBe(0);
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: '30' })).toBe(30);
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['-5', '1.5', 'fifty', '1001', '50%']) {
      expect(() => heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: bad })).toThrow(/PEERGATE_HEAP_GROWING_PERCENT must be an integer/);
    }
  });
});

describe("the primary's node options (PRIMARY_NODE_FLAGS)", () => {
  it("are what the systemd unit, the container and `make start` give node, and they cap the young generation", () => {
    const read = (f: string) => readFileSync(new URL(`../../../${f}`, import.meta.url), 'utf8');
    const flags = PRIMARY_NODE_FLAGS.join(' ');
    expect(read('deploy/peergate.service').split('\n')).toContain(`ExecStart=/usr/bin/env node ${flags} /usr/lib/peergate/bin/peergate.js start --policy /etc/peergate/policy.yaml`);
    expect(read('Makefile').split('\n')).toContain(`\t@node ${flags} ./bin/peergate.js start`);
    // Allocate well past 16 MiB of short-lived objects: the new space stays at 2 × 8 MiB.
    const script = "let k=[];for(let r=0;r<40;r++){const a=[];for(let i=0;i<1e5;i++)a.push({i});k.push(a[0])}"
      + "console.log(require('v8').getHeapSpaceStatistics().find((s)=>s.space_name==='new_space').space_size)";
    const run = (f: readonly string[]) => Number(spawnSync(process.execPath, [...f, '-e', script], { encoding: 'utf8', timeout: 20_000 }).stdout.trim());
    const capped = run(PRIMARY_NODE_FLAGS); // node refusing a flag would print nothing: 0
    expect(capped).toBeGreaterThan(0);
    expect(capped).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(run([])).toBeGreaterThan(16 * 1024 * 1024);
  });

  it('says which are missing from the command line and NODE_OPTIONS', () => {
    expect(missingPrimaryNodeFlags([], '')).toEqual([...PRIMARY_NODE_FLAGS]);
    expect(missingPrimaryNodeFlags(['--max-semi-space-size=4'], '')).toEqual(['--no-memory-reducer']);
    expect(missingPrimaryNodeFlags(['--max-semi-space-size=4', '--no-memory-reducer'], '')).toEqual([]);
    expect(missingPrimaryNodeFlags(['--inspect'], '--max_semi_space_size=16 --trace-gc --memory_reducer')).toEqual([]);
    expect(missingPrimaryNodeFlags(['--memory-reducer'], '')).toEqual(['--max-semi-space-size=8']);
    expect(missingPrimaryNodeFlags(['--max-old-space-size=512'], undefined)).toEqual([...PRIMARY_NODE_FLAGS]);
  });
});
