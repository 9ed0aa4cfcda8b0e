// Bad input to the transaction layer: garbled header values never throw or hang, and TLS is
// treated as the reliable transport it is.
import { describe, expect, it } from 'vitest';
import type { SipRequest, SipResponse } from '../../../src/engine/message/types.js';
import { from, harness, request, response, sentTimes } from './support.js';

// Deterministic PRNG so a failure is reproducible.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['SIP/2.0/UDP', ' ', ';', '=', '"', '\\', 'branch', 'z9hG4bK', '<', '>', 'tag', ':', '/', '1', '2147483648', 'INVITE', 'ACK', 'CANCEL', ',', '\t', '[', ']', 'é', '\u0000', ''];

function garble(r: () => number): string {
  let out = '';
  const n = Math.floor(r() * 12);
  for (let i = 0; i < n; i++) out += PIECES[Math.floor(r() * PIECES.length)];
  return out;
}

describe('transaction layer robustness', () => {
  it('2 000 requests and responses with garbled Via/CSeq/From/To/Call-ID never throw', () => {
    const hs = harness();
    const r = rng(42);
    const outcomes = new Set<string>();
    const thrown: unknown[] = [];
    for (let i = 0; i < 2_000; i++) {
      const base: SipRequest = request(r() < 0.5 ? 'INVITE' : 'OPTIONS', { branch: `z9hG4bK${i % 50}` });
      base.headers = base.headers.map((f) => (r() < 0.5 ? { ...f, value: garble(r) } : f));
      if (r() < 0.1) base.headers = base.headers.filter(() => r() < 0.5);
      const msg: SipRequest | SipResponse = r() < 0.5 ? base : response(base, Math.floor(r() * 800), 'X');
      try {
        outcomes.add(hs.layer.receive(msg, from('udp', '192.0.2.1', 5060)));
      } catch (err) {
        thrown.push(err);
      }
    }
    expect(thrown).toEqual([]);
    // The mix exercised the rejecting and the accepting paths.
    expect(outcomes.has('invalid')).toBe(true);
    expect(outcomes.has('new')).toBe(true);
    expect(outcomes.has('stray')).toBe(true);
    expect(hs.errors).toEqual([]);
    hs.layer.close();
    expect(hs.clock.pending).toBe(0);
  });

  it('TLS is reliable: no Timer E, Timer K = 0', () => {
    const hs = harness();
    const req = request('OPTIONS', { branch: 'z9hG4bKtls', transport: 'TLS' });
    const txn = hs.layer.sendRequest(req, { protocol: 'tls', address: '198.51.100.7', port: 5061 });
    expect(txn.reliable).toBe(true);
    hs.clock.advance(10_000);
    expect(sentTimes(hs, 'OPTIONS ')).toEqual([0]);
    hs.layer.receive(response(req, 200, 'OK'), from('tls', '198.51.100.7', 5061));
    expect(txn.state).toBe('Terminated');
  });
});
