// A bind check without holding the port: bind, then release at once. A node whose listeners open
// late (after its warm-up, src/app/warmup) learns at its start that a port is taken, not seconds
// later; the real bind still reports a port lost in between.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { familyOf } from './options.js';

/** Resolves when `address:port` could be bound for `protocol` (and was released); rejects with
 *  the same words as a listener's bind (`udp listen 127.0.0.1:5060: bind EADDRINUSE …`);
 *  `label` names what the port is for in that message (default: the protocol). */
export function probeBind(protocol: 'udp' | 'tcp' | 'tls', address: string, port: number, label: string = protocol): Promise<void> {
  const fail = (e: Error) => new Error(`${label} listen ${address}:${port}: ${e.message}`);
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const socket = createSocket({ type: familyOf(address) === 6 ? 'udp6' : 'udp4' });
      socket.once('error', (e) => {
        try { socket.close(); } catch { /* never bound: nothing to release */ }
        reject(fail(e));
      });
      socket.bind(port, address, () => socket.close(() => resolve()));
      return;
    }
    const server = createServer();
    server.once('error', (e) => reject(fail(e)));
    server.listen({ port, host: address }, () => server.close(() => resolve()));
  });
}
