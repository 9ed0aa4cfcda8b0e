// engine.sip_timers: RFC 3261 Table 4 base values of the embedded engine. The defaults are the
// RFC's; a smaller T1 (§17.1.1.1) is accepted within bounds, and a bad value names its key.
import { describe, it, expect } from 'vitest';
import { parsePolicy, formatError } from '../../../src/policy/load.js';

const BASE = `listen:
  - { name: peer-udp, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core:
  targets: [ "sip:127.0.0.1:5090" ]
peers:
  - { id: alpha, match: { addresses: [ 192.0.2.0/24 ] } }
routes:
  - { from: peers, to: core }
`;

const load = (engine: string) => parsePolicy(`${BASE}${engine}`, '/etc/peergate/p.yaml');
function errors(engine: string): string[] {
  const r = load(engine);
  if (r.ok) throw new Error('expected errors, policy loaded');
  return r.errors.map(formatError);
}

describe('engine.sip_timers', () => {
  it('defaults to RFC 3261 Table 4: T1 500 ms, T2 4 s, T4 5 s', () => {
    const r = load('');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.engine.sip_timers).toEqual({ t1_ms: 500, t2_ms: 4000, t4_ms: 5000 });
  });

  it('takes a smaller T1 and keeps the other defaults', () => {
    const r = load('engine: { sip_timers: { t1_ms: 100 } }\n');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.engine.sip_timers).toEqual({ t1_ms: 100, t2_ms: 4000, t4_ms: 5000 });
  });

  it('refuses T1 below 50 ms, naming the key', () => {
    expect(errors('engine: { sip_timers: { t1_ms: 10 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t1_ms: t1_ms must be at least 50 ms/);
  });

  it('refuses T2 below T1, naming t2_ms', () => {
    expect(errors('engine: { sip_timers: { t1_ms: 1000, t2_ms: 500 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t2_ms: t2_ms must be at least t1_ms/);
  });

  it('refuses a fraction, a string and an unknown key', () => {
    expect(errors('engine: { sip_timers: { t1_ms: 100.5 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t1_ms/);
    expect(errors('engine: { sip_timers: { t4_ms: "5s" } }\n').join('\n')).toMatch(/engine\.sip_timers\.t4_ms/);
    expect(errors('engine: { sip_timers: { t3_ms: 100 } }\n').join('\n')).toMatch(/engine\.sip_timers.*t3_ms/);
  });
});
