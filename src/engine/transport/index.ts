// SIP transports (RFC 3261 §18): UDP, TCP and TLS listeners, connection management and stream
// framing, with the shield consulted before anything is parsed.
//
// - UDP: one socket per listener; a datagram is one message. Sends leave from the listener
//   socket of the target's address family, so the peer sees our advertised address:port.
// - TCP/TLS: every connection (accepted or opened by send()) gets an id. Inbound packets carry
//   it; send() with that id writes on the same connection (responses and in-dialog requests go
//   back the way the request came, §18.2.2), else reuses any live connection to address:port,
//   else connects. Connections close after `idleTimeoutMs` without traffic in either direction.
// - TLS: TLS 1.2 minimum by default. With client CAs configured the server asks for a client
//   certificate; with requireClientCert a missing, untrusted or revoked (CRL) one fails the
//   handshake. A verified certificate's identity rides on every InboundPacket from that
//   connection (format: tls-identity.ts). reloadTls() swaps key/cert/CAs/CRLs for new
//   handshakes; established connections keep going. With acceptStaleCrl, a client whose only
//   fault is a CRL past its nextUpdate is accepted (peergate checks the verification result
//   itself instead of node).
// - The shield runs per UDP datagram, per accepted connection and per framed message on
//   accepted connections. Connections we opened ourselves carry traffic we asked for and skip
//   the per-message check.
// Network faults never surface as 'error' events: they are counted in `stats` and logged.
import { EventEmitter } from 'node:events';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createNetServer, connect as netConnect, isIP, type Server as NetServer, type Socket } from 'node:net';
import {
  createServer as createTlsServer, connect as tlsConnect, createSecureContext,
  type ConnectionOptions, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket, type SecureVersion,
} from 'node:tls';
import { StreamFramer, defaultFramerLimits, type FrameError } from './framer.js';
import { peerIdentity } from './tls-identity.js';
import type { Shield } from '../shield/index.js';
import type { Endpoint, InboundPacket, Protocol, SendResult, SendTarget, TlsPeerIdentity } from './types.js';

export { StreamFramer } from './framer.js';
export type { FrameError, FramerLimits } from './framer.js';
export { identityFromCertificate, peerIdentity } from './tls-identity.js';

export interface ListenerSpec {
  protocol: Protocol;
  address: string;
  /** 0 = ephemeral; contacts() reports the bound port. */
  port: number;
}

type Pem = string | Buffer;

export interface TransportTlsOptions {
  key: Pem;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  cert: Pem;
  /** Intermediate certificates sent after `cert`. */
  chain?: Pem;
  /** CAs trusted for the certificates of servers we connect to (defaults to clientCAs). */
  ca?: Pem | Pem[];
  /** Default TLSv1.2. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (TLS ≤ 1.2 suites; TLS 1.3 suites are node's defaults). */
  ciphers?: string;
  /** Fail the handshake unless the client presents a certificate that verifies. */
  requireClientCert?: boolean;
  /** CAs trusted for client certificates. If set, clients are asked for a certificate. */
  clientCAs?: Pem[];
  /**
   * CRLs checked for client certificates and, on connections we open, for server certificates
   * (RFC 6404 §4.5 applies both ways). OpenSSL then wants a CRL for every CA in a peer's chain
   * (CRL_CHECK_ALL): give one per CA, or peers of CAs without a CRL fail.
   */
  crls?: Pem[];
  /** Verify the certificate of servers we connect to (default true). */
  verifyServerCert?: boolean;
  /**
   * Accept a client certificate whose verification error is CRL_HAS_EXPIRED (a CRL past its
   * nextUpdate) unless its serial is in `revokedSerials` (upper-case hex, no leading zeros:
   * OpenSSL reports a listed certificate as CRL_HAS_EXPIRED too when the CRL is stale).
   * Clients without a certificate then see the connection closed instead of a
   * "certificate required" alert.
   */
  acceptStaleCrl?: { revokedSerials: ReadonlySet<string> };
}

export interface TransportLimits {
  /** Close a TCP/TLS connection after this long without traffic. Default 300 s; 0 = never. */
  idleTimeoutMs?: number;
  /** Accepted connections per source address. Default 64. */
  maxConnectionsPerSource?: number;
  /** All TCP/TLS connections, both directions. Default 10,000. */
  maxConnections?: number;
  /** Largest message (datagram or framed), bytes. Default 65,535. */
  maxMessageSize?: number;
  /** Largest header block on a stream, bytes. Default 16,384. */
  maxHeaderSize?: number;
  /** Outbound TCP connect + TLS handshake. Default 5 s. */
  connectTimeoutMs?: number;
  /** Inbound TLS handshake. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Bytes queued for a peer that does not read; beyond this the connection is closed. Default 1 MiB. */
  maxWriteBufferBytes?: number;
  /** SO_RCVBUF for UDP listeners (a bigger buffer rides out floods the shield drops). 0 = OS default. */
  udpReceiveBufferBytes?: number;
}

/** Anything with pino's (obj, msg) signatures. */
export interface TransportLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TransportOptions {
  listeners: ListenerSpec[];
  tls?: TransportTlsOptions;
  limits?: TransportLimits;
  shield?: Shield;
  logger?: TransportLogger;
}

export interface TlsHandshakeEvent {
  result: 'ok' | 'failed';
  /** OpenSSL/node error code (e.g. ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE, CERT_REVOKED), '' when ok. */
  reason: string;
  source: Endpoint;
  direction: 'inbound' | 'outbound';
  /** Set when ok and the peer's certificate verified. */
  identity?: TlsPeerIdentity;
}

export interface ConnectionEvent {
  connectionId: string;
  protocol: 'tcp' | 'tls';
  remote: Endpoint;
  direction: 'inbound' | 'outbound';
}

export interface TransportEvents {
  message: [InboundPacket];
  'tls-handshake': [TlsHandshakeEvent];
  'connection-open': [ConnectionEvent];
  'connection-close': [ConnectionEvent & { reason: string }];
}

/** Plain counters for metrics. */
export interface TransportStats {
  udp: { received: number; oversize: number; shieldDropped: number; keepAlives: number };
  stream: {
    accepted: number;
    opened: number;
    closed: number;
    shieldRejected: number;
    perSourceRejected: number;
    totalRejected: number;
    idleClosed: number;
    writeOverflows: number;
    shieldDropped: number;
    keepAlives: number;
    framingErrors: Record<FrameError, number>;
  };
  tls: { handshakesOk: number; handshakesFailed: number };
  send: { ok: number; failed: number };
  listenerErrors: number;
}

interface Conn {
  id: string;
  protocol: 'tcp' | 'tls';
  socket: Socket | TLSSocket;
  remote: Endpoint;
  /** The listener endpoint reported as `local` (what our Via/Contact advertise). */
  local: Endpoint;
  inbound: boolean;
  key: string;
  framer: StreamFramer;
  tls?: TlsPeerIdentity;
  /** Outbound TLS: the name the server's certificate was checked against (RFC 5922 §7.2). */
  serverName?: string;
  closeReason: string;
}

type Failure = Extract<SendResult, { ok: false }>;

const CRLF = Buffer.from('\r\n');

const defaults = {
  idleTimeoutMs: 300_000,
  maxConnectionsPerSource: 64,
  maxConnections: 10_000,
  maxMessageSize: 65_535,
  maxHeaderSize: 16_384,
  connectTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
  udpReceiveBufferBytes: 0,
  maxWriteBufferBytes: 1 << 20,
};

const noopLogger: TransportLogger = { debug() {}, warn() {} };

function familyOf(address: string): 4 | 6 { return address.includes(':') ? 6 : 4; }

function remoteKey(protocol: Protocol, address: string, port: number): string {
  return `${protocol}|${address}|${port}`;
}

function pemList(v: Pem | Pem[] | undefined): Pem[] | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

function certWithChain(o: TransportTlsOptions): Pem {
  if (!o.chain) return o.cert;
  const nl = (p: Pem) => { const s = p.toString(); return s.endsWith('\n') ? s : `${s}\n`; };
  return nl(o.cert) + nl(o.chain);
}

function askForClientCert(o: TransportTlsOptions): boolean {
  return Boolean(o.requireClientCert) || Boolean(o.clientCAs && o.clientCAs.length > 0);
}

/** node refuses unverified clients itself, except when a stale CRL may be tolerated (we check then). */
function nodeRejects(o: TransportTlsOptions): boolean {
  return Boolean(o.requireClientCert) && !o.acceptStaleCrl;
}

/** True for a datagram of only CR/LF/space (keep-alive noise some UAs send over UDP). */
function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x0d && c !== 0x0a && c !== 0x20) return false;
  }
  return true;
}

export class TransportLayer extends EventEmitter<TransportEvents> {
  readonly stats: TransportStats = {
    udp: { received: 0, oversize: 0, shieldDropped: 0, keepAlives: 0 },
    stream: {
      accepted: 0, opened: 0, closed: 0, shieldRejected: 0, perSourceRejected: 0, totalRejected: 0,
      idleClosed: 0, writeOverflows: 0, shieldDropped: 0, keepAlives: 0,
      framingErrors: { 'no-content-length': 0, 'bad-content-length': 0, 'header-too-large': 0, 'message-too-large': 0, garbage: 0 },
    },
    tls: { handshakesOk: 0, handshakesFailed: 0 },
    send: { ok: 0, failed: 0 },
    listenerErrors: 0,
  };

  private readonly limits: Required<TransportLimits>;
  private readonly shield: Shield | undefined;
  private readonly log: TransportLogger;
  private tlsOpts: TransportTlsOptions | undefined;
  private clientContext: SecureContext | undefined;

  private readonly udpSockets: { socket: UdpSocket; local: Endpoint }[] = [];
  private readonly streamServers: { server: NetServer; local: Endpoint }[] = [];
  private tlsServer: TlsServer | undefined;
  private bound: Endpoint[] = [];

  private readonly conns = new Map<string, Conn>();
  private readonly byRemote = new Map<string, Conn>();
  private readonly connecting = new Map<string, Promise<Conn | Failure>>();
  private readonly perSource = new Map<string, number>();
  /** Accepted raw sockets waiting for their TLS handshake → where they came from. */
  private readonly handshakeSource = new WeakMap<Socket, Endpoint>();
  private seq = 0;
  private capture: ((direction: 'in' | 'out', data: Buffer, local: Endpoint, remote: Endpoint) => void) | undefined;
  private readonly idPrefix = Math.random().toString(36).slice(2, 8);
  private started = false;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    super();
    const l = options.limits ?? {};
    this.limits = {
      idleTimeoutMs: l.idleTimeoutMs ?? defaults.idleTimeoutMs,
      maxConnectionsPerSource: l.maxConnectionsPerSource ?? defaults.maxConnectionsPerSource,
      maxConnections: l.maxConnections ?? defaults.maxConnections,
      maxMessageSize: l.maxMessageSize ?? defaults.maxMessageSize,
      maxHeaderSize: l.maxHeaderSize ?? Math.min(defaults.maxHeaderSize, l.maxMessageSize ?? defaultFramerLimits.maxMessageSize),
      connectTimeoutMs: l.connectTimeoutMs ?? defaults.connectTimeoutMs,
      handshakeTimeoutMs: l.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs,
      udpReceiveBufferBytes: l.udpReceiveBufferBytes ?? defaults.udpReceiveBufferBytes,
      maxWriteBufferBytes: l.maxWriteBufferBytes ?? defaults.maxWriteBufferBytes,
    };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!(Number.isFinite(v) && v >= 0)) throw new Error(`transport limit ${k} must be a non-negative number`);
    }
    this.shield = options.shield;
    this.log = options.logger ?? noopLogger;
    for (const spec of options.listeners) {
      if (spec.protocol !== 'udp' && spec.protocol !== 'tcp' && spec.protocol !== 'tls') throw new Error(`unknown transport protocol "${String(spec.protocol)}"`);
      if (isIP(spec.address) === 0) throw new Error(`listener address "${spec.address}" is not an IP address`);
      if (!(Number.isInteger(spec.port) && spec.port >= 0 && spec.port <= 65535)) throw new Error(`listener port ${spec.port} is invalid`);
    }
    if (options.listeners.some((s) => s.protocol === 'tls') && !options.tls) throw new Error('a tls listener needs tls options (key, cert)');
    if (options.tls) this.applyTls(options.tls, true);
  }

  /** Bind every listener; resolves with the bound endpoints (ports filled in). */
  async listen(): Promise<Endpoint[]> {
    if (this.started) return this.contacts();
    this.started = true;
    try {
      for (const spec of this.options.listeners) {
        if (spec.protocol === 'udp') await this.listenUdp(spec);
        else await this.listenStream(spec);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.contacts();
  }

  /** The bound listener endpoints. */
  contacts(): Endpoint[] {
    return this.bound.map((e) => ({ ...e }));
  }

  /** Live TCP/TLS connection count. */
  get connectionCount(): number { return this.conns.size; }

  /** Whether `connectionId` names a live connection. */
  hasConnection(connectionId: string): boolean { return this.conns.has(connectionId); }

  /** Close one connection (e.g. the app decided the peer misbehaves). */
  closeConnection(connectionId: string, reason = 'closed-by-app'): boolean {
    const c = this.conns.get(connectionId);
    if (!c) return false;
    c.closeReason = reason;
    c.socket.destroy();
    return true;
  }

  async send(target: SendTarget, data: Buffer): Promise<SendResult> {
    const r = await this.doSend(target, data);
    if (r.ok) this.stats.send.ok++; else this.stats.send.failed++;
    if (r.ok && this.capture) this.capture('out', data, r.local, { protocol: target.protocol, address: target.address, port: target.port });
    return r;
  }

  /**
   * Tap every SIP message sent and received (after TLS decryption, after the shield) for SIP
   * capture (src/engine/capture). The tap must only queue: it runs on the hot path.
   */
  setCapture(tap: ((direction: 'in' | 'out', data: Buffer, local: Endpoint, remote: Endpoint) => void) | undefined): void {
    this.capture = tap;
  }

  /**
   * Swap key/cert/CAs/CRLs/ciphers and the client-certificate policy. New handshakes (both
   * directions) use them; established connections are untouched. Throws (and keeps the old
   * material) if invalid.
   */
  reloadTls(opts: TransportTlsOptions): void {
    this.applyTls(opts, false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns.values()) { c.closeReason = 'shutdown'; c.socket.destroy(); }
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
    const waits: Promise<void>[] = [];
    for (const { socket } of this.udpSockets) waits.push(new Promise((r) => { try { socket.close(() => r()); } catch { r(); } }));
    for (const { server } of this.streamServers) waits.push(new Promise((r) => { server.close(() => r()); }));
    await Promise.all(waits);
    this.udpSockets.length = 0;
    this.streamServers.length = 0;
  }

  // ---------- TLS material ----------

  private applyTls(o: TransportTlsOptions, initial: boolean): void {
    const minVersion: SecureVersion = o.minVersion ?? 'TLSv1.2';
    if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3') throw new Error(`tls minVersion ${String(minVersion)} not allowed (TLSv1.2 or TLSv1.3)`);
    const common: SecureContextOptions = { key: o.key, cert: certWithChain(o), minVersion };
    if (o.ciphers) common.ciphers = o.ciphers;
    if (o.passphrase !== undefined) common.passphrase = o.passphrase;
    const serverCtx: SecureContextOptions = { ...common };
    if (o.clientCAs && o.clientCAs.length > 0) serverCtx.ca = o.clientCAs;
    if (o.crls && o.crls.length > 0) serverCtx.crl = o.crls;
    const clientCtxOpts: SecureContextOptions = { ...common };
    const serverCas = pemList(o.ca) ?? o.clientCAs;
    if (serverCas && serverCas.length > 0) clientCtxOpts.ca = serverCas;
    if (o.crls && o.crls.length > 0) clientCtxOpts.crl = o.crls;
    // Build both before installing either, so bad material leaves the old config in force.
    let clientContext: SecureContext;
    try {
      createSecureContext(serverCtx);
      clientContext = createSecureContext(clientCtxOpts);
    } catch (e) {
      throw new Error(`invalid TLS material: ${(e as Error).message}`, { cause: e });
    }
    if (!initial && this.tlsServer) {
      this.tlsServer.setSecureContext(serverCtx);
      // tls.Server reads these per accepted connection, so new handshakes follow the reload.
      const srv = this.tlsServer as TlsServer & { requestCert: boolean; rejectUnauthorized: boolean };
      srv.requestCert = askForClientCert(o);
      srv.rejectUnauthorized = nodeRejects(o);
    }
    this.tlsOpts = o;
    this.clientContext = clientContext;
    this.serverContextOptions = serverCtx;
  }

  private serverContextOptions: SecureContextOptions | undefined;

  private ensureTlsServer(): TlsServer {
    if (this.tlsServer) return this.tlsServer;
    const o = this.tlsOpts!;
    // Never listens: accepted raw sockets are injected with emit('connection') after the shield
    // and connection limits have had their say (documented node API for tls.Server).
    const server = createTlsServer({
      ...this.serverContextOptions,
      requestCert: askForClientCert(o),
      rejectUnauthorized: nodeRejects(o),
      handshakeTimeout: this.limits.handshakeTimeoutMs,
    });
    // Listening to keylog is the public way to see each handshake's socket while it is alive.
    server.on('keylog', (_line: Buffer, s: TLSSocket) => this.noteRemote(s));
    server.on('secureConnection', (s: TLSSocket) => this.onTlsSecure(s));
    server.on('tlsClientError', (err: Error, s: TLSSocket) => this.onTlsClientError(err, s));
    this.tlsServer = server;
    return server;
  }

  // ---------- listeners ----------

  private listenUdp(spec: ListenerSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      // A large receive buffer rides out floods and bursts: datagrams the kernel drops before
      // the shield sees them would include the real peers'. (Capped by net.core.rmem_max.)
      const socket = createSocket({ type: familyOf(spec.address) === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 });
      const onError = (e: Error) => reject(new Error(`udp listen ${spec.address}:${spec.port}: ${e.message}`));
      socket.once('error', onError);
      socket.bind(spec.port, spec.address, () => {
        socket.off('error', onError);
        socket.on('error', (e) => this.log.warn({ err: e.message }, 'udp socket error'));
        if (this.limits.udpReceiveBufferBytes > 0) {
          // The kernel may cap it (net.core.rmem_max); not fatal.
          try { socket.setRecvBufferSize(this.limits.udpReceiveBufferBytes); } catch (e) { this.log.warn({ err: (e as Error).message }, 'udp receive buffer size not set'); }
        }
        const local: Endpoint = { protocol: 'udp', address: spec.address, port: socket.address().port };
        this.udpSockets.push({ socket, local });
        this.bound.push(local);
        socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, rinfo.port, local));
        resolve();
      });
    });
  }

  private listenStream(spec: ListenerSpec): Promise<void> {
    const protocol = spec.protocol as 'tcp' | 'tls';
    if (protocol === 'tls') this.ensureTlsServer();
    return new Promise((resolve, reject) => {
      const server = createNetServer({ noDelay: true });
      const onError = (e: Error) => reject(new Error(`${protocol} listen ${spec.address}:${spec.port}: ${e.message}`));
      server.once('error', onError);
      server.listen({ port: spec.port, host: spec.address, backlog: 511 }, () => {
        server.off('error', onError);
        server.on('error', (e) => this.log.warn({ err: e.message }, `${protocol} server error`));
        const addr = server.address();
        const local: Endpoint = { protocol, address: spec.address, port: typeof addr === 'object' && addr ? addr.port : spec.port };
        this.streamServers.push({ server, local });
        this.bound.push(local);
        server.on('connection', (raw: Socket) => this.onAccept(raw, local));
        resolve();
      });
    });
  }

  private onDatagram(msg: Buffer, address: string, port: number, local: Endpoint): void {
    if (this.shield && !this.shield.admit(address)) { this.stats.udp.shieldDropped++; return; }
    this.stats.udp.received++;
    if (msg.length > this.limits.maxMessageSize) { this.stats.udp.oversize++; return; }
    if (isBlank(msg)) { this.stats.udp.keepAlives++; return; }
    this.deliver({ data: msg, source: { protocol: 'udp', address, port }, local });
  }

  private onAccept(raw: Socket, local: Endpoint): void {
    const address = raw.remoteAddress;
    const port = raw.remotePort;
    if (address === undefined || port === undefined) { raw.destroy(); return; }
    raw.on('error', (e) => this.log.debug({ err: e.message, address, port }, 'accepted socket error'));
    if (this.closed) { raw.destroy(); return; }
    if (this.shield && !this.shield.admit(address)) { this.stats.stream.shieldRejected++; raw.destroy(); return; }
    if (this.conns.size + this.pendingHandshakes >= this.limits.maxConnections) {
      this.stats.stream.totalRejected++;
      this.log.warn({ address, port, limit: this.limits.maxConnections }, 'connection limit reached');
      raw.destroy();
      return;
    }
    const count = this.perSource.get(address) ?? 0;
    if (count >= this.limits.maxConnectionsPerSource) {
      this.stats.stream.perSourceRejected++;
      this.log.debug({ address, limit: this.limits.maxConnectionsPerSource }, 'per-source connection limit');
      raw.destroy();
      return;
    }
    this.perSource.set(address, count + 1);
    this.stats.stream.accepted++;
    if (local.protocol === 'tcp') {
      this.attach(raw, 'tcp', true, local, { protocol: 'tcp', address, port }, undefined);
      return;
    }
    // TLS: count the source slot now (the handshake is where floods hurt), release it if the
    // handshake fails.
    const source: Endpoint = { protocol: 'tls', address, port };
    const rkey = remoteKey('tls', address, port);
    this.handshakeRaw.set(rkey, raw);
    raw.once('close', () => { if (this.handshakeRaw.get(rkey) === raw) this.handshakeRaw.delete(rkey); });
    this.handshakeSource.set(raw, source);
    this.pendingHandshakes++;
    let settled = false;
    const settle = () => { if (!settled) { settled = true; this.pendingHandshakes--; } };
    this.handshakeSettle.set(raw, settle);
    raw.once('close', () => {
      settle();
      if (!this.handshakeDone.has(raw)) this.releaseSource(address);
    });
    this.localOf.set(raw, local);
    this.handshaking.add(raw);
    raw.once('close', () => this.handshaking.delete(raw));
    this.ensureTlsServer().emit('connection', raw);
  }

  private pendingHandshakes = 0;
  /** Raw sockets in their inbound TLS handshake, and outbound sockets still connecting (for close()). */
  private readonly handshaking = new Set<Socket>();
  private readonly handshakeSettle = new WeakMap<Socket, () => void>();
  private readonly handshakeDone = new WeakSet<Socket>();
  private readonly localOf = new WeakMap<Socket, Endpoint>();

  /** Accepted raw sockets still in their TLS handshake, by remote endpoint. */
  private readonly handshakeRaw = new Map<string, Socket>();
  /**
   * Remote endpoint of each server-side TLSSocket, noted while it is alive (its first keylog
   * line): node destroys a socket whose certificate fails verification before telling us, and
   * a destroyed socket no longer knows its remote address.
   */
  private readonly tlsRemote = new WeakMap<TLSSocket, { address: string; port: number }>();

  private noteRemote(s: TLSSocket): void {
    if (!this.tlsRemote.has(s) && s.remoteAddress !== undefined && s.remotePort !== undefined) this.tlsRemote.set(s, { address: s.remoteAddress, port: s.remotePort });
  }

  /** The accepted raw socket a TLSSocket wraps (public API only: matched by remote endpoint). */
  private rawOf(s: TLSSocket): Socket | undefined {
    this.noteRemote(s);
    const r = this.tlsRemote.get(s);
    return r ? this.handshakeRaw.get(remoteKey('tls', r.address, r.port)) : undefined;
  }

  private onTlsSecure(s: TLSSocket): void {
    const raw = this.rawOf(s);
    const source = (raw && this.handshakeSource.get(raw)) ?? { protocol: 'tls' as const, address: s.remoteAddress ?? '', port: s.remotePort ?? 0 };
    const local = (raw && this.localOf.get(raw)) ?? this.listenerFor('tls', familyOf(source.address)) ?? { protocol: 'tls' as const, address: s.localAddress ?? '', port: s.localPort ?? 0 };
    const o = this.tlsOpts;
    const stale = o?.acceptStaleCrl && !s.authorized && String(s.authorizationError) === 'CRL_HAS_EXPIRED';
    const revoked = stale && o.acceptStaleCrl!.revokedSerials.has((s.getPeerX509Certificate()?.serialNumber ?? '').toUpperCase().replace(/^0+(?=.)/, ''));
    const staleOk = Boolean(stale) && !revoked;
    if (o?.acceptStaleCrl && (revoked || (o.requireClientCert && !s.authorized && !staleOk))) {
      // node leaves the check to us in this mode (rejectUnauthorized is off): refuse as it would.
      const reason = revoked ? 'CERT_REVOKED' : s.authorizationError ? String(s.authorizationError) : 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';
      this.stats.tls.handshakesFailed++;
      this.log.debug({ address: source.address, port: source.port, reason }, 'tls handshake failed');
      this.safeEmit('tls-handshake', { result: 'failed', reason, source, direction: 'inbound' });
      s.destroy();
      return;
    }
    if (raw) { this.handshakeSettle.get(raw)?.(); this.handshakeDone.add(raw); this.handshaking.delete(raw); this.handshakeRaw.delete(remoteKey('tls', source.address, source.port)); }
    const identity = peerIdentity(s, staleOk);
    this.stats.tls.handshakesOk++;
    this.safeEmit('tls-handshake', { result: 'ok', reason: '', source, direction: 'inbound', identity });
    if (this.closed) { s.destroy(); return; }
    this.attach(s, 'tls', true, local, source, identity);
  }

  private onTlsClientError(err: Error, s: TLSSocket): void {
    const raw = this.rawOf(s);
    const remote = this.tlsRemote.get(s);
    const source = (raw && this.handshakeSource.get(raw)) ?? { protocol: 'tls' as const, address: remote?.address ?? '', port: remote?.port ?? 0 };
    // When node itself rejects an unverified certificate it destroys the socket after setting
    // authorizationError, and the error we get is a bland ECONNRESET: report the real cause.
    const reason = s.authorizationError ? String(s.authorizationError) : ((err as NodeJS.ErrnoException).code ?? err.message);
    this.stats.tls.handshakesFailed++;
    this.log.debug({ address: source.address, port: source.port, reason }, 'tls handshake failed');
    this.safeEmit('tls-handshake', { result: 'failed', reason, source, direction: 'inbound' });
    s.destroy();
  }

  // ---------- connections ----------

  private attach(socket: Socket | TLSSocket, protocol: 'tcp' | 'tls', inbound: boolean, local: Endpoint, remote: Endpoint, identity: TlsPeerIdentity | undefined): Conn {
    const id = `${protocol}-${this.idPrefix}-${++this.seq}`;
    const key = remoteKey(protocol, remote.address, remote.port);
    const framer = new StreamFramer(
      { maxMessageSize: this.limits.maxMessageSize, maxHeaderSize: this.limits.maxHeaderSize },
      (msg) => this.onStreamMessage(conn, msg),
      () => {
        this.stats.stream.keepAlives++;
        // RFC 5626 §3.5.1: answer a CRLF CRLF ping with a CRLF pong.
        if (!socket.destroyed) socket.write(CRLF);
      },
    );
    const conn: Conn = { id, protocol, socket, remote, local, inbound, key, framer, closeReason: 'peer-closed' };
    if (identity) conn.tls = identity;
    this.conns.set(id, conn);
    this.byRemote.set(key, conn);
    socket.setNoDelay(true);
    if (this.limits.idleTimeoutMs > 0) {
      socket.setTimeout(this.limits.idleTimeoutMs, () => {
        this.stats.stream.idleClosed++;
        conn.closeReason = 'idle';
        socket.destroy();
      });
    }
    socket.on('data', (chunk: Buffer) => {
      const err = framer.push(chunk);
      if (err && !socket.destroyed) {
        this.stats.stream.framingErrors[err]++;
        this.log.debug({ connectionId: id, address: remote.address, port: remote.port, err }, 'unframeable stream, closing (RFC 3261 §18.3)');
        conn.closeReason = `framing:${err}`;
        socket.destroy();
      }
    });
    socket.on('error', (e) => {
      conn.closeReason = (e as NodeJS.ErrnoException).code ?? e.message;
      this.log.debug({ connectionId: id, err: e.message }, 'connection error');
    });
    socket.once('close', () => this.detach(conn));
    if (!inbound) this.stats.stream.opened++;
    this.safeEmit('connection-open', { connectionId: id, protocol, remote, direction: inbound ? 'inbound' : 'outbound' });
    return conn;
  }

  private detach(conn: Conn): void {
    if (!this.conns.delete(conn.id)) return;
    if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key);
    if (conn.inbound) this.releaseSource(conn.remote.address);
    this.stats.stream.closed++;
    this.safeEmit('connection-close', {
      connectionId: conn.id, protocol: conn.protocol, remote: conn.remote, direction: conn.inbound ? 'inbound' : 'outbound', reason: conn.closeReason,
    });
  }

  private releaseSource(address: string): void {
    const n = (this.perSource.get(address) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(address); else this.perSource.set(address, n);
  }

  private onStreamMessage(conn: Conn, msg: Buffer): void {
    if (conn.socket.destroyed) return;
    if (conn.inbound && this.shield && !this.shield.admit(conn.remote.address)) { this.stats.stream.shieldDropped++; return; }
    const p: InboundPacket = { data: msg, source: conn.remote, local: conn.local, connectionId: conn.id };
    if (conn.tls) p.tls = conn.tls;
    this.deliver(p);
  }

  private deliver(p: InboundPacket): void {
    if (this.capture) this.capture('in', p.data, p.local, p.source);
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

  // ---------- sending ----------

  private async doSend(target: SendTarget, data: Buffer): Promise<SendResult> {
    if (this.closed) return { ok: false, reason: 'closed', detail: 'transport closed' };
    if (isIP(target.address) === 0) return { ok: false, reason: 'unreachable', detail: `"${target.address}" is not an IP address` };
    if (!(Number.isInteger(target.port) && target.port > 0 && target.port <= 65535)) return { ok: false, reason: 'unreachable', detail: `bad port ${target.port}` };
    if (target.protocol === 'udp') return this.sendUdp(target, data);
    if (target.protocol !== 'tcp' && target.protocol !== 'tls') return { ok: false, reason: 'no-transport', detail: String(target.protocol) };
    let conn: Conn | undefined;
    if (target.connectionId) {
      const c = this.conns.get(target.connectionId);
      if (c && c.protocol === target.protocol && !c.socket.destroyed) conn = c;
    }
    if (!conn) {
      const c = this.byRemote.get(remoteKey(target.protocol, target.address, target.port));
      // A TLS connection is reused for a named target only if it was checked against that name,
      // and for a pinned target only if its certificate satisfies the pin.
      if (c && !c.socket.destroyed && (target.protocol !== 'tls' || namedServer(target) === c.serverName || namedServer(target) === undefined)
        && (!target.pin || (c.tls !== undefined && target.pin(c.tls)))) conn = c;
    }
    if (!conn) {
      const r = await this.connect(target);
      if ('ok' in r) return r;
      conn = r;
    }
    return this.write(conn, data);
  }

  private sendUdp(target: SendTarget, data: Buffer): Promise<SendResult> {
    const fam = familyOf(target.address);
    const want = target.local;
    const u = (want && this.udpSockets.find((s) => s.local.port === want.port && s.local.address === want.address))
      ?? this.udpSockets.find((s) => familyOf(s.local.address) === fam);
    if (!u) return Promise.resolve({ ok: false, reason: 'no-transport', detail: `no udp listener for IPv${fam}` });
    return new Promise((resolve) => {
      try {
        u.socket.send(data, target.port, target.address, (err) => {
          if (err) resolve({ ok: false, reason: 'unreachable', detail: err.message });
          else resolve({ ok: true, local: { ...u.local }, bytes: data.length });
        });
      } catch (e) {
        resolve({ ok: false, reason: 'closed', detail: (e as Error).message });
      }
    });
  }

  private write(conn: Conn, data: Buffer): Promise<SendResult> {
    return new Promise((resolve) => {
      if (conn.socket.destroyed || !conn.socket.writable) { resolve({ ok: false, reason: 'closed', detail: conn.id }); return; }
      if (conn.socket.writableLength + data.length > this.limits.maxWriteBufferBytes) {
        // The peer stopped reading: holding more for it only grows our memory.
        this.stats.stream.writeOverflows++;
        conn.closeReason = 'write-buffer-full';
        conn.socket.destroy();
        resolve({ ok: false, reason: 'closed', detail: `${conn.id}: peer not reading (write buffer full)` });
        return;
      }
      conn.socket.write(data, (err) => {
        if (err) resolve({ ok: false, reason: 'closed', detail: err.message });
        else resolve({ ok: true, local: { ...conn.local }, connectionId: conn.id, bytes: data.length });
      });
    });
  }

  private connect(target: SendTarget): Promise<Conn | Failure> {
    const protocol = target.protocol as 'tcp' | 'tls';
    const key = `${remoteKey(protocol, target.address, target.port)}|${namedServer(target) ?? ''}`;
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const p = this.openConnection(protocol, target.address, target.port, target.serverName, target.pin).finally(() => this.connecting.delete(key));
    this.connecting.set(key, p);
    return p;
  }

  private openConnection(protocol: 'tcp' | 'tls', address: string, port: number, serverName?: string, pin?: SendTarget['pin']): Promise<Conn | Failure> {
    if (this.conns.size + this.pendingHandshakes >= this.limits.maxConnections) {
      this.stats.stream.totalRejected++;
      return Promise.resolve({ ok: false, reason: 'unreachable', detail: 'connection limit reached' });
    }
    if (protocol === 'tls' && !this.clientContext) return Promise.resolve({ ok: false, reason: 'no-transport', detail: 'tls not configured' });
    const fam = familyOf(address);
    const listener = this.listenerFor(protocol, fam);
    // Leave from the listener's address so the peer sees the address our Via advertises.
    const localAddress = listener && listener.address !== '0.0.0.0' && listener.address !== '::' ? listener.address : undefined;
    const remote: Endpoint = { protocol, address, port };
    return new Promise((resolve) => {
      let done = false;
      let tcpUp = false;
      let socket: Socket | TLSSocket;
      const finish = (r: Conn | Failure) => {
        if (done) return;
        done = true;
        this.handshaking.delete(socket);
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        finish({ ok: false, reason: 'timeout', detail: `${protocol} connect to ${address}:${port} took over ${this.limits.connectTimeoutMs} ms` });
        socket.destroy();
      }, this.limits.connectTimeoutMs);
      const onError = (e: Error) => {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        let reason: Failure['reason'] = 'unreachable';
        if (code === 'ECONNREFUSED') reason = 'refused';
        else if (protocol === 'tls' && tcpUp) reason = 'tls-failed';
        if (reason === 'tls-failed') {
          this.stats.tls.handshakesFailed++;
          this.safeEmit('tls-handshake', { result: 'failed', reason: code || e.message, source: remote, direction: 'outbound' });
        }
        finish({ ok: false, reason, detail: code ? `${code}: ${e.message}` : e.message });
      };
      if (protocol === 'tcp') {
        socket = netConnect({ host: address, port, localAddress, family: fam, noDelay: true });
        socket.once('connect', () => {
          socket.off('error', onError);
          if (done) { socket.destroy(); return; }
          finish(this.attach(socket, 'tcp', false, listener ?? this.socketLocal(socket, 'tcp'), remote, undefined));
        });
      } else {
        const o = this.tlsOpts!;
        const servername = serverName && isIP(serverName) === 0 ? serverName : undefined;
        // tls.connect hands these to net.Socket#connect; @types/node omits localAddress and family.
        const opts: ConnectionOptions & { localAddress?: string; family?: number } = {
          host: address, port, localAddress, family: fam,
          secureContext: this.clientContext!,
          rejectUnauthorized: o.verifyServerCert !== false,
          minVersion: o.minVersion ?? 'TLSv1.2',
        };
        // SNI; node also matches the server certificate against it instead of the IP.
        if (servername) opts.servername = servername;
        socket = tlsConnect(opts);
        socket.once('connect', () => { tcpUp = true; });
        socket.once('secureConnect', () => {
          socket.off('error', onError);
          if (done) { socket.destroy(); return; }
          const s = socket as TLSSocket;
          const identity = peerIdentity(s);
          // Pinned to the peer's policy identity: a certificate the CA vouches for is not enough.
          if (pin && !(identity && pin(identity))) {
            this.stats.tls.handshakesFailed++;
            this.safeEmit('tls-handshake', { result: 'failed', reason: 'pin-mismatch', source: remote, direction: 'outbound' });
            finish({ ok: false, reason: 'tls-failed', detail: 'server certificate does not match the pinned identity' });
            s.destroy();
            return;
          }
          this.stats.tls.handshakesOk++;
          this.safeEmit('tls-handshake', { result: 'ok', reason: '', source: remote, direction: 'outbound', identity });
          const conn = this.attach(s, 'tls', false, listener ?? this.socketLocal(s, 'tls'), remote, identity);
          if (servername) conn.serverName = servername.toLowerCase();
          finish(conn);
        });
      }
      socket.once('error', onError);
      this.handshaking.add(socket);
    });
  }

  private socketLocal(s: Socket, protocol: 'tcp' | 'tls'): Endpoint {
    return { protocol, address: s.localAddress ?? '', port: s.localPort ?? 0 };
  }
}

/** The DNS name a TLS target's certificate must carry (RFC 5922 §4), lower-cased; undefined for none or an IP. */
function namedServer(t: SendTarget): string | undefined {
  return t.serverName && isIP(t.serverName) === 0 ? t.serverName.toLowerCase() : undefined;
}
