// probeBind (src/engine/transport/probe.ts): a free port binds and is released at once; a taken
// one is refused in the words a listener's own bind uses.
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { probeBind } from '../../../src/engine/transport/probe.js';
import { TransportLayer } from '../../../src/engine/transport/index.js';

function udpOn(port = 0): Promise<ReturnType<typeof createSocket>> {
  const s = createSocket('udp4');
  return new Promise((r) => s.bind(port, '127.0.0.1', () => r(s)));
}

function tcpOn(port = 0): Promise<Server> {
  const s = createServer();
  return new Promise((r) => s.listen(port, '127.0.0.1', () => r(s)));
}

describe('probeBind', () => {
  it('a free UDP or TCP port binds and is released: it can be bound again at once', async () => {
    const u = await udpOn(); const port = u.address().port; u.close();
    await probeBind('udp', '127.0.0.1', port);
    (await udpOn(port)).close();
    const t = await tcpOn(); const tport = (t.address() as { port: number }).port; await new Promise((r) => t.close(r));
    await probeBind('tls', '127.0.0.1', tport);
    const again = await tcpOn(tport);
    await new Promise((r) => again.close(r));
  });

  it('a taken port is refused as a listener would be, named by protocol or label', async () => {
    const u = await udpOn();
    const t = await tcpOn();
    const tport = (t.address() as { port: number }).port;
    try {
      await expect(probeBind('udp', '127.0.0.1', u.address().port)).rejects.toThrow(`udp listen 127.0.0.1:${u.address().port}: bind EADDRINUSE`);
      await expect(probeBind('tcp', '127.0.0.1', tport)).rejects.toThrow(new RegExp(`^tcp listen 127\\.0\\.0\\.1:${tport}: listen EADDRINUSE`));
      await expect(probeBind('tcp', '127.0.0.1', tport, 'ops')).rejects.toThrow(new RegExp(`^ops listen 127\\.0\\.0\\.1:${tport}: `));
    } finally {
      u.close();
      await new Promise((r) => t.close(r));
    }
  });

  it("TransportLayer.probe() checks each listener with a fixed port and binds none of them", async () => {
    const taken = await udpOn();
    const free = await udpOn(); const freePort = free.address().port; free.close();
    try {
      const ok = new TransportLayer({ listeners: [{ protocol: 'udp', address: '127.0.0.1', port: freePort }, { protocol: 'udp', address: '127.0.0.1', port: 0 }] });
      await ok.probe();
      expect(ok.contacts()).toEqual([]);
      (await udpOn(freePort)).close();
      const bad = new TransportLayer({ listeners: [{ protocol: 'udp', address: '127.0.0.1', port: freePort }, { protocol: 'udp', address: '127.0.0.1', port: taken.address().port }] });
      await expect(bad.probe()).rejects.toThrow(`udp listen 127.0.0.1:${taken.address().port}: bind EADDRINUSE`);
    } finally {
      taken.close();
    }
  });
});
