// SIP transports (RFC 3261 §18): the TransportLayer facade. It validates the configuration,
// owns the public API (listen, send, close, reloadTls, stats, events) and the capture tap, and
// composes the modules that own each concern:
//   udp.ts           UDP listeners, datagram intake and sends
//   streams.ts       TCP/TLS connection table: accept limits, framing (framer.ts), idle and
//                    write-buffer closes, connection reuse and outbound connects
//   tls-server.ts    inbound TLS handshakes (source slots, real failure reasons)
//   tls-contexts.ts  TLS material and reload, CRLs and stale-CRL acceptance, outbound SNI/names
//                    (RFC 5922) and pins
//   tls-identity.ts  the identity of a verified peer certificate
//   options.ts       configuration, event and counter types, defaults
// Network faults never surface as 'error' events: they are counted in `stats` and logged. A
// throwing event listener is counted (stats.listenerErrors), never fatal.
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import {
  familyOf, newStats, noopLogger, resolveLimits,
  type TransportContext, type TransportEvents, type TransportLimits, type TransportLogger, type TransportOptions,
  type TransportStats, type TransportTlsOptions,
} from './options.js';
import { StreamConnections } from './streams.js';
import { TlsContexts } from './tls-contexts.js';
import { UdpTransport } from './udp.js';
import { probeBind } from './probe.js';
import type { Shield } from '../shield/index.js';
import { captureNow } from '../capture/clock.js';
import type { CaptureTap } from '../capture/index.js';
import type { Endpoint, InboundPacket, Protocol, SendResult, SendTarget, UdpIngress } from './types.js';

export { StreamFramer } from './framer.js';
export type { FrameError, FramerLimits } from './framer.js';
export { identityFromCertificate, peerIdentity } from './tls-identity.js';
export type {
  ListenerSpec, TransportTlsOptions, TransportLimits, TransportLogger, TransportOptions, TlsHandshakeEvent,
  ConnectionEvent, TransportEvents, TransportStats,
} from './options.js';

export class TransportLayer extends EventEmitter<TransportEvents> {
  readonly stats: TransportStats = newStats();

  private readonly limits: Required<TransportLimits>;
  private readonly shield: Shield | undefined;
  private readonly log: TransportLogger;
  private readonly tls = new TlsContexts();
  private readonly udp: UdpTransport;
  private readonly streams: StreamConnections;
  private readonly bound: Endpoint[] = [];
  private capture: CaptureTap | undefined;
  private started = false;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    super();
    this.limits = resolveLimits(options.limits);
    this.shield = options.shield;
    this.log = options.logger ?? noopLogger;
    for (const spec of options.listeners) {
      if (spec.protocol !== 'udp' && spec.protocol !== 'tcp' && spec.protocol !== 'tls') throw new Error(`unknown transport protocol "${String(spec.protocol)}"`);
      if (isIP(spec.address) === 0) throw new Error(`listener address "${spec.address}" is not an IP address`);
      if (!(Number.isInteger(spec.port) && spec.port >= 0 && spec.port <= 65535)) throw new Error(`listener port ${spec.port} is invalid`);
    }
    if (options.listeners.some((s) => s.protocol === 'tls') && !options.tls) throw new Error('a tls listener needs tls options (key, cert)');
    if (options.tls) this.tls.apply(options.tls);
    const ctx = this.context();
    this.udp = new UdpTransport(ctx);
    this.streams = new StreamConnections(ctx, this.tls);
  }

  /** Bind every listener; resolves with the bound endpoints (ports filled in). */
  async listen(): Promise<Endpoint[]> {
    if (this.started) return this.contacts();
    this.started = true;
    try {
      for (const spec of this.options.listeners) {
        if (spec.protocol === 'udp') await this.udp.listen(spec);
        else await this.streams.listen(spec);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.contacts();
  }

  /** Check that every listener's port can be bound, without keeping any (probe.ts): listeners
   *  that open late still fail the start at once on a port in use. Port 0 always binds. */
  async probe(): Promise<void> {
    for (const spec of this.options.listeners) {
      if (spec.port !== 0) await probeBind(spec.protocol, spec.address, spec.port);
    }
  }

  /** The bound listener endpoints. */
  contacts(): Endpoint[] {
    return this.bound.map((e) => ({ ...e }));
  }

  /** Live TCP/TLS connection count. */
  get connectionCount(): number { return this.streams.size; }

  /** Whether `connectionId` names a live connection. */
  hasConnection(connectionId: string): boolean { return this.streams.has(connectionId); }

  /** Close one connection (e.g. the app decided the peer misbehaves). */
  closeConnection(connectionId: string, reason = 'closed-by-app'): boolean {
    return this.streams.closeConnection(connectionId, reason);
  }

  /** Send, and learn how it went (see sendThen). */
  send(target: SendTarget, data: Buffer): Promise<SendResult> {
    return new Promise((resolve) => this.sendThen(target, data, resolve));
  }

  /**
   * Send, and call `done` (if given) once the transport knows how it went: always later, never
   * within this call. The engine's own path (transactions, the core): no promise per datagram
   * (three of them cost ≈ 8 µs a send in a micro-benchmark; BENCHMARKS.md, "What each process
   * allocates per call").
   */
  sendThen(target: SendTarget, data: Buffer, done?: (r: SendResult) => void): void {
    const refused = this.refusal(target);
    if (refused !== undefined) {
      this.stats.send.failed++;
      if (done !== undefined) queueMicrotask(() => done(refused));
      return;
    }
    // Stamped at hand-off: a stream's write completes later, after the peer may have answered
    // what it carried (a caller's ACK read before our 200's write is reported done).
    const handedAt = this.capture?.on === true ? captureNow() : 0;
    const sent = (r: SendResult): void => {
      if (r.ok) {
        this.stats.send.ok++;
        if (this.capture?.on === true) this.capture.record('out', data, r.local, { protocol: target.protocol, address: target.address, port: target.port }, handedAt || captureNow());
      } else this.stats.send.failed++;
      if (done !== undefined) done(r);
    };
    if (target.protocol === 'udp') this.udp.send(target, data, sent);
    else this.streams.send(target, data).then(sent, (e: unknown) => sent({ ok: false, reason: 'closed', detail: `send failed: ${e instanceof Error ? e.message : String(e)}` }));
  }

  /**
   * Tap every SIP message sent and received (after TLS decryption, after the shield) for SIP
   * capture (src/engine/capture). `record` must only queue: it runs on the hot path.
   */
  setCapture(tap: CaptureTap | undefined): void {
    this.capture = tap;
  }

  /**
   * Swap key/cert/CAs/CRLs/ciphers and the client-certificate policy. New handshakes (both
   * directions) use them; established connections are untouched. Throws (and keeps the old
   * material) if invalid.
   */
  reloadTls(opts: TransportTlsOptions): void {
    this.tls.apply(opts);
  }

  /**
   * Put (or take away: undefined) a priority ingress in front of UDP intake (overload control,
   * src/engine/overload/ingress.ts): it may hold a datagram and deliver it later, through the
   * same path (capture tap, 'message'). The one it replaces releases what it held.
   */
  setUdpIngress(ingress: UdpIngress | undefined): void {
    const old = this.udp.ingress;
    this.udp.ingress = undefined;
    old?.detach();
    ingress?.attach((p) => this.deliver(p));
    this.udp.ingress = ingress;
  }

  /** Receive buffer of each UDP listener socket (overload control reads their queues). */
  udpReceiveBuffers(): { local: Endpoint; bytes: number }[] {
    return this.udp.receiveBuffers();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.streams.destroyAll();
    await Promise.all([this.udp.close(), this.streams.closeServers()]);
  }

  /** Why `target` cannot be sent to at all, or undefined. */
  private refusal(target: SendTarget): SendResult | undefined {
    if (this.closed) return { ok: false, reason: 'closed', detail: 'transport closed' };
    if (isIP(target.address) === 0) return { ok: false, reason: 'unreachable', detail: `"${target.address}" is not an IP address` };
    if (!(Number.isInteger(target.port) && target.port > 0 && target.port <= 65535)) return { ok: false, reason: 'unreachable', detail: `bad port ${target.port}` };
    if (target.protocol !== 'udp' && target.protocol !== 'tcp' && target.protocol !== 'tls') return { ok: false, reason: 'no-transport', detail: String(target.protocol) };
    return undefined;
  }

  /** What the modules see of the facade. */
  private context(): TransportContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the context is a view of this layer
    const self = this;
    return {
      limits: this.limits,
      shield: this.shield,
      log: this.log,
      stats: this.stats,
      get closed() { return self.closed; },
      deliver: (p) => this.deliver(p),
      safeEmit: (event, ...args) => this.safeEmit(event, ...args),
      listenerFor: (protocol, family) => this.listenerFor(protocol, family),
      addBound: (local) => { this.bound.push(local); },
    };
  }

  private deliver(p: InboundPacket): void {
    if (this.capture?.on === true) this.capture.record('in', p.data, p.local, p.source, captureNow());
    this.safeEmit('message', p);
  }

  /** A throwing listener must not take the socket handlers (and the process) down with it. */
  private safeEmit<K extends keyof TransportEvents>(event: K, ...args: TransportEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: TransportEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      this.stats.listenerErrors++;
      this.log.warn({ event, err: (e as Error).message }, 'transport listener threw');
    }
  }

  private listenerFor(protocol: Protocol, family: 4 | 6): Endpoint | undefined {
    for (const e of this.bound) if (e.protocol === protocol && familyOf(e.address) === family) return e;
    return undefined;
  }
}
