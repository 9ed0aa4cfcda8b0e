// Policy key `workers` (src/app/workers/schema.ts): values, the count it means on a machine,
// and errors in peergate's words at the key's line.
import { describe, it, expect } from 'vitest';
import { parsePolicy, formatError } from '../../../src/policy/load.js';
import { workerCount } from '../../../src/app/workers/schema.js';

const BASE = `listen:
  - { name: peer-udp, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core:
  targets: [ "sip:127.0.0.1:5090" ]
`;

describe('policy key workers', () => {
  it('defaults to auto (one per core); takes a number or auto; 1 stays the in-process B2BUA', () => {
    const d = parsePolicy(BASE, '/x/p.yaml');
    expect(d.ok && d.policy.workers).toBe('auto');
    const one = parsePolicy(`${BASE}workers: 1\n`, '/x/p.yaml');
    expect(one.ok && one.policy.workers).toBe(1);
    expect(workerCount(1, 8)).toBe(1);
    const n = parsePolicy(`${BASE}workers: 3\n`, '/x/p.yaml');
    expect(n.ok && n.policy.workers).toBe(3);
    const a = parsePolicy(`${BASE}workers: auto\n`, '/x/p.yaml');
    expect(a.ok && a.policy.workers).toBe('auto');
  });

  it('auto is one per core, at least 1 and at most 64; a number is itself', () => {
    expect(workerCount('auto', 8)).toBe(8);
    expect(workerCount('auto', 1)).toBe(1);
    expect(workerCount('auto', 0)).toBe(1);
    expect(workerCount('auto', 200)).toBe(64);
    expect(workerCount(2, 8)).toBe(2);
  });

  it.each([
    ['0', /at least 1/],
    ['2.5', /whole number/],
    ['65', /at most 64/],
    ['many', /'auto' or a whole number/],
  ])('workers: %s is refused at its line', (value, message) => {
    const r = parsePolicy(`${BASE}workers: ${value}\n`, '/x/p.yaml');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const e = r.errors.find((x) => x.keyPath === 'workers');
    expect(e, r.errors.map(formatError).join(' | ')).toBeDefined();
    expect(e!.line).toBe(6);
    expect(e!.message).toMatch(message);
  });
});
