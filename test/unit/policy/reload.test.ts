import { describe, it, expect, afterEach } from 'vitest';
import { writeFileSync, renameSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PolicyHolder, PolicyLoadError } from '../../../src/policy/reload.js';
import { policyReloadsTotal } from '../../../src/ops/metrics.js';
import { createLogger } from '../../../src/log.js';
import type { Policy } from '../../../src/policy/schema.js';
import type { PolicyError } from '../../../src/policy/load.js';
import { scratchDir, waitFor } from '../../helpers/procs.js';

const policy = (cps: number) => `listen:
  - { name: p, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: c, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core: { targets: [ "sip:127.0.0.1:5090" ] }
peers:
  - { id: a, match: { addresses: [ 127.0.0.1/32 ] }, limits: { cps: ${cps} } }
routes:
  - { from: peers, to: core }
`;
const BROKEN = 'listen: [ { name: p, side: sideways } ]\ncore: {}\n';

async function count(result: 'ok' | 'error'): Promise<number> {
  const m = await policyReloadsTotal.get();
  return m.values.find((v) => v.labels.result === result)?.value ?? 0;
}

function quietLogger() {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { logger: createLogger({ destination: dest, level: 'info' }), lines };
}

let holder: PolicyHolder | undefined;
afterEach(() => { holder?.close(); holder = undefined; });

describe('PolicyHolder', () => {
  it('refuses to start on an invalid file, with every error', () => {
    const dir = scratchDir();
    writeFileSync(join(dir, 'p.yaml'), BROKEN);
    try {
      PolicyHolder.load(join(dir, 'p.yaml'));
      throw new Error('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyLoadError);
      expect((err as PolicyLoadError).errors.length).toBeGreaterThan(1);
      expect((err as Error).message).toMatch(/p\.yaml:1:\d+: listen\[0\]\.side/);
    }
  });

  it('a broken file keeps the running policy, logs why and counts the error; a good one replaces it', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, policy(10));
    const { logger, lines } = quietLogger();
    holder = PolicyHolder.load(file, { logger });
    const callPolicy: Policy = holder.current; // a call in progress captured this
    const errorsBefore = await count('error');
    const okBefore = await count('ok');

    const failed: PolicyError[][] = [];
    holder.on('reload-failed', (e) => failed.push(e));
    writeFileSync(file, BROKEN);
    expect(await holder.reload()).toBe(false);
    expect(holder.current).toBe(callPolicy);
    expect(holder.current.peers[0]!.limits.cps).toBe(10);
    expect(failed).toHaveLength(1);
    expect(failed[0]![0]!.file).toBe(file);
    expect(holder.lastErrors).toEqual(failed[0]);
    expect(await count('error')).toBe(errorsBefore + 1);
    const logged = lines.join('');
    expect(logged).toContain('policy reload failed');
    expect(logged).toMatch(/p\.yaml:1:\d+: listen\[0\]\.side/);

    const swaps: [Policy, Policy][] = [];
    holder.on('policy', (p, prev) => swaps.push([p, prev]));
    writeFileSync(file, policy(20));
    expect(await holder.reload()).toBe(true);
    expect(holder.current.peers[0]!.limits.cps).toBe(20);
    expect(swaps).toHaveLength(1);
    expect(swaps[0]![1]).toBe(callPolicy);
    expect(holder.lastErrors).toEqual([]);
    expect(await count('ok')).toBe(okBefore + 1);
    // The call's policy object is untouched and frozen.
    expect(callPolicy.peers[0]!.limits.cps).toBe(10);
    expect(Object.isFrozen(callPolicy.peers[0]!.limits)).toBe(true);
  });

  it('reloads on SIGHUP', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, policy(10));
    holder = PolicyHolder.load(file, { logger: quietLogger().logger, debounceMs: 60_000 }).watch();
    writeFileSync(file, policy(30));
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => holder!.current.peers[0]!.limits.cps === 30, 5000, 10, 'SIGHUP reload');
  });

  it('reloads when the file changes, including replace-by-rename, debounced', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, policy(10));
    holder = PolicyHolder.load(file, { logger: quietLogger().logger, debounceMs: 50 }).watch();
    let events = 0;
    holder.on('policy', () => { events++; });
    // An editor-style burst of writes ends in one reload of the final content.
    writeFileSync(file, policy(11));
    writeFileSync(file, policy(12));
    writeFileSync(file, policy(40));
    await waitFor(() => holder!.current.peers[0]!.limits.cps === 40, 5000, 10, 'watch reload');
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toBe(1);
    // Replace by rename (new inode), as config management tools do.
    writeFileSync(join(dir, 'p.yaml.tmp'), policy(50));
    renameSync(join(dir, 'p.yaml.tmp'), file);
    await waitFor(() => holder!.current.peers[0]!.limits.cps === 50, 5000, 10, 'rename reload');
    // A broken save does not replace it.
    const failed = new Promise<PolicyError[]>((r) => holder!.once('reload-failed', r));
    writeFileSync(file, BROKEN);
    expect((await failed).length).toBeGreaterThan(0);
    expect(holder.current.peers[0]!.limits.cps).toBe(50);
  });

  it('a file event without a content change (touch) does not reload; SIGHUP always does', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, policy(10));
    holder = PolicyHolder.load(file, { logger: quietLogger().logger, debounceMs: 20 }).watch();
    let events = 0;
    holder.on('policy', () => { events++; });
    writeFileSync(file, policy(10));
    utimesSync(file, new Date(), new Date());
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toBe(0);
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => events === 1, 5000, 10, 'SIGHUP reload');
  });

  it('ignores changes to other files in the directory', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, policy(10));
    holder = PolicyHolder.load(file, { logger: quietLogger().logger, debounceMs: 20 }).watch();
    let events = 0;
    holder.on('policy', () => { events++; });
    holder.on('reload-failed', () => { events++; });
    writeFileSync(join(dir, 'other.yaml'), 'x: 1\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toBe(0);
  });
});
