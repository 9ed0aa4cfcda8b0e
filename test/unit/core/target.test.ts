// Target resolution of a new request's next hop (core/target.ts, the RFC 3263 resolver's place).
import { describe, expect, it } from 'vitest';
import { resolveTarget } from '../../../src/engine/core/target.js';

describe('resolveTarget', () => {
  it('an IP literal is answered at once (no turn of the event loop), with the default port of its transport', () => {
    expect(resolveTarget('192.0.2.7', undefined, 'udp')).toEqual({ ok: true, target: { protocol: 'udp', address: '192.0.2.7', port: 5060 } });
    expect(resolveTarget('192.0.2.7', undefined, 'tls')).toEqual({ ok: true, target: { protocol: 'tls', address: '192.0.2.7', port: 5061 } });
    expect(resolveTarget('2001:db8::1', 5080, 'tcp')).toEqual({ ok: true, target: { protocol: 'tcp', address: '2001:db8::1', port: 5080 } });
  });

  it('a host name is looked up (IPv4): localhost from the hosts file', async () => {
    const r = resolveTarget('localhost', 5070, 'udp');
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toEqual({ ok: true, target: { protocol: 'udp', address: '127.0.0.1', port: 5070 } });
  });
});
