// A reload's parse in a worker thread: the result is the in-place load's (frozen, errors with
// file:line), and a load that never ends is given up with an error naming the file. That the
// event loop keeps turning is measured on the compiled code (bench/policy-ops.bench.ts): from
// the sources a thread loads them through tsx, which costs the main thread more than the parse.
import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { loadPolicy } from '../../../src/policy/load.js';
import { loadPolicyOffThread } from '../../../src/policy/parse-thread.js';
import { knownPolicyText, policyText } from '../../../src/policy/text.js';
import { scratchDir } from '../../helpers/procs.js';

const example = readFileSync(join(import.meta.dirname, '../../../policies/example.yaml'), 'utf8');
/** The example policy with a carrier's prefix table in front of its routes. */
function bigPolicy(routes: number): string {
  const table = Array.from({ length: routes }, (_, i) => `  - { from: core, called_prefix: "+9${String(i).padStart(5, '0')}", to: example-peer }`);
  return example.replace(/^routes:\n/m, `routes:\n${table.join('\n')}\n`);
}

describe('policy parse off the event loop', () => {
  it('loads what loadPolicy loads, frozen', async () => {
    const file = join(scratchDir(), 'big.yaml');
    writeFileSync(file, bigPolicy(2000));
    const inPlace = loadPolicy(file);
    const r = await loadPolicyOffThread(file, {}, { evenFromSources: true });
    expect(r.ok && inPlace.ok).toBe(true);
    if (!r.ok || !inPlace.ok) return;
    expect(r.policy).not.toBe(inPlace.policy);
    expect(isDeepStrictEqual(r.policy, inPlace.policy)).toBe(true);
    expect(r.policy.routes.length).toBeGreaterThan(2000);
    expect(Object.isFrozen(r.policy.routes[0])).toBe(true);
    // The text it came in is kept for the B2BUA workers, exactly what serialising it would give;
    // a policy loaded in place has none (it is serialised when handed on).
    expect(knownPolicyText(r.policy)).toBe(JSON.stringify(r.policy));
    expect(knownPolicyText(inPlace.policy)).toBeUndefined();
    const known = knownPolicyText(r.policy);
    expect(policyText(inPlace.policy)).toBe(known);
    // Handed on once, it is not kept beside the pool's own encoding.
    expect(policyText(r.policy)).toBe(known);
    expect(knownPolicyText(r.policy)).toBeUndefined();
  });

  it('reports errors as loadPolicy does, and gives up on a load that does not end in time', async () => {
    const file = join(scratchDir(), 'bad.yaml');
    writeFileSync(file, example.replace('to: example-peer', 'to: nobody'));
    const r = await loadPolicyOffThread(file, {}, { evenFromSources: true });
    expect(r).toEqual(loadPolicy(file));
    expect(r.ok).toBe(false);

    writeFileSync(file, bigPolicy(2000));
    const slow = await loadPolicyOffThread(file, {}, { evenFromSources: true, timeoutMs: 1 });
    expect(slow).toEqual({ ok: false, errors: [{ file, line: 1, column: 1, keyPath: '', message: 'the policy did not load within 0.001 s' }] });
  });
});
