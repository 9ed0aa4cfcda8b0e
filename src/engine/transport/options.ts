// The transport layer's public configuration, events and counters (RFC 3261 §18), their
// defaults, and the small context the transport modules (udp.ts, streams.ts, tls-*.ts) share
// with the TransportLayer facade in index.ts. index.ts re-exports the public part.
import type { FrameError } from './framer.js';
import { defaultFramerLimits } from './framer.js';
import type { Shield } from '../shield/index.js';
import type { Endpoint, InboundPacket, Protocol, TlsPeerIdentity } from './types.js';

export interface ListenerSpec {
  protocol: Protocol;
  address: string;
  /** 0 = ephemeral; contacts() reports the bound port. */
  port: number;
}

export type Pem = string | Buffer;

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
  /** 'refused': the certificate verified but its identity is banned (the shield's identity bans). */
  result: 'ok' | 'failed' | 'refused';
  /** OpenSSL/node error code (e.g. ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE, CERT_REVOKED), '' when ok, 'identity-banned' when refused. */
  reason: string;
  source: Endpoint;
  direction: 'inbound' | 'outbound';
  /** Set when ok or refused and the peer's certificate verified. */
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
  /** `chargedBytes`: what every datagram read had cost in its socket's receive queue, as the
   *  kernel charges it (estimated, socket-queue.ts kernelCharge), shield drops included: the
   *  rate the queues drain at, for overload control's queueing delay. */
  udp: { received: number; oversize: number; shieldDropped: number; keepAlives: number; chargedBytes: number };
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

/** The limits with defaults filled in; throws on a negative or non-finite one. */
export function resolveLimits(l: TransportLimits = {}): Required<TransportLimits> {
  const limits: Required<TransportLimits> = {
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
  for (const [k, v] of Object.entries(limits)) {
    if (!(Number.isFinite(v) && v >= 0)) throw new Error(`transport limit ${k} must be a non-negative number`);
  }
  return limits;
}

export function newStats(): TransportStats {
  return {
    udp: { received: 0, oversize: 0, shieldDropped: 0, keepAlives: 0, chargedBytes: 0 },
    stream: {
      accepted: 0, opened: 0, closed: 0, shieldRejected: 0, perSourceRejected: 0, totalRejected: 0,
      idleClosed: 0, writeOverflows: 0, shieldDropped: 0, keepAlives: 0,
      framingErrors: { 'no-content-length': 0, 'bad-content-length': 0, 'header-too-large': 0, 'message-too-large': 0, garbage: 0 },
    },
    tls: { handshakesOk: 0, handshakesFailed: 0 },
    send: { ok: 0, failed: 0 },
    listenerErrors: 0,
  };
}

export const noopLogger: TransportLogger = { debug() {}, warn() {} };

export function familyOf(address: string): 4 | 6 { return address.includes(':') ? 6 : 4; }

export function remoteKey(protocol: Protocol, address: string, port: number): string {
  return `${protocol}|${address}|${port}`;
}

/** What the facade lends the transport modules: settings, counters and its outlets. */
export interface TransportContext {
  readonly limits: Required<TransportLimits>;
  readonly shield: Shield | undefined;
  readonly log: TransportLogger;
  readonly stats: TransportStats;
  /** True once close() began: nothing new is accepted or attached. */
  readonly closed: boolean;
  /** Hand a message (after the shield) to the capture tap and the 'message' listeners. */
  deliver(p: InboundPacket): void;
  /** Emit without letting a throwing listener take the socket handlers down. */
  safeEmit<K extends keyof TransportEvents>(event: K, ...args: TransportEvents[K]): void;
  /** The first bound listener of that protocol and address family. */
  listenerFor(protocol: Protocol, family: 4 | 6): Endpoint | undefined;
  /** Record a bound listener endpoint (reported by contacts()). */
  addBound(local: Endpoint): void;
}
