// Contract between the transport layer (UDP/TCP/TLS listeners, shield) and the SIP core.
import type { Clock } from '../../clock.js';

export type Protocol = 'udp' | 'tcp' | 'tls';

/** What the engine learned from a verified TLS client certificate. */
export interface TlsPeerIdentity {
  subject: string;
  subjectAltNames: string[];
  /** SHA-256 fingerprint, upper-case hex pairs joined by ':' (as node's X509Certificate.fingerprint256). */
  fingerprint256: string;
}

export interface Endpoint {
  protocol: Protocol;
  address: string;
  port: number;
}

/** A message (or a CRLF keep-alive already handled) as it arrived. */
export interface InboundPacket {
  /** One complete SIP message: datagram, or one frame cut from a stream by Content-Length. */
  data: Buffer;
  source: Endpoint;
  /** The listener it arrived on. */
  local: Endpoint;
  /** Set for TCP/TLS: identifies the connection, so replies and in-dialog requests reuse it. */
  connectionId?: string;
  /** Set only for TLS with a verified client certificate. */
  tls?: TlsPeerIdentity;
  /** An initial INVITE the priority ingress held past its sojourn target (overload/ingress.ts):
   *  overload control refuses it (503) instead of handing it to an app. */
  overdue?: boolean;
}

/** What UDP intake offers each accepted datagram to before processing it (overload/ingress.ts). */
export interface UdpIngress {
  /** The path a held datagram takes once released (the transport's own delivery). */
  attach(deliver: (p: InboundPacket) => void): void;
  /** true: held (processed or refused later); false: process it now. */
  hold(data: Buffer, address: string, port: number, local: Endpoint): boolean;
  /** Release everything held, for processing now, and hold nothing more. */
  detach(): void;
}

export interface SendTarget {
  protocol: Protocol;
  address: string;
  port: number;
  /** Prefer this existing connection (responses go back over the connection the request came on). */
  connectionId?: string;
  /** Send from this listener (for UDP: its socket), so replies and requests leave from the address
   *  the far side knows us by; absent: the first listener of the address family. */
  local?: { address: string; port: number };
  /**
   * TLS only, for a new connection: the domain to send as SNI and to match the server
   * certificate against (RFC 5922 §7.2), when `address` is the IP it resolved to.
   * Absent: the certificate must name the IP address.
   */
  serverName?: string;
  /**
   * TLS only, for a new connection: the server's verified certificate must also satisfy this
   * (the peer's policy identity: SAN / subject / fingerprint), else the connection fails.
   */
  pin?: (identity: TlsPeerIdentity) => boolean;
}

export type SendResult =
  | { ok: true; local: Endpoint; connectionId?: string; bytes: number }
  | { ok: false; reason: 'unreachable' | 'refused' | 'closed' | 'no-transport' | 'tls-failed' | 'timeout'; detail?: string };


export type { Clock };

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
