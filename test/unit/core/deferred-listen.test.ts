// An engine started with `deferListen` (src/engine/engine.ts): apps may connect to its wire while
// no SIP listener is bound; `openListeners()` binds them, and from then on the core writes them
// into what it sends (a node warms up before peers can reach it: src/app/warmup).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/engine/engine.js';

function optionsTo(port: number, from: number): Buffer {
  return Buffer.from([
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${from};branch=z9hG4bK-d1;rport`, 'Max-Forwards: 70',
    'From: <sip:a@127.0.0.1>;tag=1', `To: <sip:127.0.0.1:${port}>`, 'Call-ID: deferred-1', 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
  ].join('\r\n'));
}

describe('engine: listeners opened after the start', () => {
  it('binds nothing until openListeners(), then answers on what it bound', async () => {
    const engine = await startEngine({ contacts: ['sip:127.0.0.1:0;transport=udp'], wire: { port: 0, secret: 's' }, deferListen: true });
    const sock = createSocket('udp4');
    try {
      expect(engine.contacts).toEqual([]);
      expect(engine.hostports).toBe('');
      // The wire is up already.
      await new Promise<void>((resolve, reject) => { const c = connect(engine.wirePort, '127.0.0.1', () => { c.destroy(); resolve(); }); c.on('error', reject); });
      const bound = await engine.openListeners();
      expect(bound).toHaveLength(1);
      expect(bound[0]!.port).toBeGreaterThan(0);
      expect(await engine.openListeners()).toBe(bound);
      expect(engine.contacts).toEqual(bound);
      expect(engine.hostports).toBe(`udp/127.0.0.1:${bound[0]!.port}`);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      const answer = new Promise<string>((r) => sock.once('message', (b) => r(b.toString('latin1'))));
      sock.send(optionsTo(bound[0]!.port, sock.address().port), bound[0]!.port, '127.0.0.1');
      // No app is connected: the engine answers itself, from the listener it bound.
      expect(await answer).toMatch(/^SIP\/2\.0 \d{3} /);
    } finally {
      sock.close();
      await engine.close();
    }
  });
});
