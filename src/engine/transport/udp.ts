// UDP listeners (RFC 3261 §18): one socket per listener; a datagram is one message. The shield
// runs per datagram before anything else; blank datagrams (CR/LF/space keep-alive noise) are
// counted and dropped. Sends leave from the listener socket of the target's address family (or
// the listener asked for), so the peer sees our advertised address:port.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { familyOf, type ListenerSpec, type TransportContext } from './options.js';
import type { Endpoint, SendResult, SendTarget, UdpIngress } from './types.js';
import { kernelCharge } from './kernel-charge.js';

/** True for a datagram of only CR/LF/space (keep-alive noise some UAs send over UDP). */
function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x0d && c !== 0x0a && c !== 0x20) return false;
  }
  return true;
}

/**
 * The address lookup of our sockets. Every destination is already an IP literal (the facade
 * refuses anything else), and node:dgram's default (dns.lookup) answers a literal on a later
 * tick, with its own objects, for each datagram; this answers at once.
 */
function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) callback(null, address, f);
  else dnsLookup(address, family as number, callback as never);
}

export class UdpTransport {
  private readonly sockets: { socket: UdpSocket; local: Endpoint }[] = [];
  /** Overload control's priority ingress: may hold a datagram back (initial INVITEs). */
  ingress: UdpIngress | undefined = undefined;

  constructor(private readonly ctx: TransportContext) {}

  listen(spec: ListenerSpec): Promise<void> {
    const { limits, log } = this.ctx;
    return new Promise((resolve, reject) => {
      // A large receive buffer rides out floods and bursts: datagrams the kernel drops before
      // the shield sees them would include the real peers'. (Capped by net.core.rmem_max.)
      const socket = createSocket({ type: familyOf(spec.address) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024, lookup: literalLookup });
      const onError = (e: Error) => reject(new Error(`udp listen ${spec.address}:${spec.port}: ${e.message}`));
      socket.once('error', onError);
      socket.bind(spec.port, spec.address, () => {
        socket.off('error', onError);
        socket.on('error', (e) => log.warn({ err: e.message }, 'udp socket error'));
        if (limits.udpReceiveBufferBytes > 0) {
          // The kernel may cap it (net.core.rmem_max); not fatal.
          try { socket.setRecvBufferSize(limits.udpReceiveBufferBytes); } catch (e) { log.warn({ err: (e as Error).message }, 'udp receive buffer size not set'); }
        }
        // Shared by every datagram in and every send result from this socket: read-only.
        const local: Endpoint = Object.freeze({ protocol: 'udp', address: spec.address, port: socket.address().port });
        this.sockets.push({ socket, local });
        this.ctx.addBound(local);
        socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, rinfo.port, local));
        resolve();
      });
    });
  }

  /** Send one datagram; `done` hears how it went, always later (dgram calls back on the next tick). */
  send(target: SendTarget, data: Buffer, done: (r: SendResult) => void): void {
    const fam = familyOf(target.address);
    const want = target.local;
    const u = (want && this.sockets.find((s) => s.local.port === want.port && s.local.address === want.address))
      ?? this.sockets.find((s) => familyOf(s.local.address) === fam);
    if (!u) {
      queueMicrotask(() => done({ ok: false, reason: 'no-transport', detail: `no udp listener for IPv${fam}` }));
      return;
    }
    try {
      u.socket.send(data, target.port, target.address, (err) => {
        done(err ? { ok: false, reason: 'unreachable', detail: err.message } : { ok: true, local: u.local, bytes: data.length });
      });
    } catch (e) {
      const detail = (e as Error).message;
      queueMicrotask(() => done({ ok: false, reason: 'closed', detail }));
    }
  }

  /** The kernel's receive buffer of each listener socket (bytes, as the kernel charges them). */
  receiveBuffers(): { local: Endpoint; bytes: number }[] {
    return this.sockets.map(({ socket, local }) => {
      let bytes = 0;
      try { bytes = socket.getRecvBufferSize(); } catch { /* closed */ }
      return { local: { ...local }, bytes };
    });
  }

  /** Close every socket; resolves when all are closed. */
  async close(): Promise<void> {
    await Promise.all(this.sockets.map(({ socket }) => new Promise<void>((r) => { try { socket.close(() => r()); } catch { r(); } })));
    this.sockets.length = 0;
  }

  private onDatagram(msg: Buffer, address: string, port: number, local: Endpoint): void {
    const { shield, stats, limits } = this.ctx;
    // Read is read: a datagram the shield drops left the kernel's queue too.
    stats.udp.chargedBytes += kernelCharge(msg.length);
    if (shield && !shield.admit(address)) { stats.udp.shieldDropped++; return; }
    stats.udp.received++;
    if (msg.length > limits.maxMessageSize) { stats.udp.oversize++; return; }
    if (isBlank(msg)) { stats.udp.keepAlives++; return; }
    if (this.ingress !== undefined && this.ingress.hold(msg, address, port, local)) return;
    this.ctx.deliver({ data: msg, source: { protocol: 'udp', address, port }, local });
  }
}
