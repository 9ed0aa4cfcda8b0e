// TLS material and policy (RFC 5246 / RFC 8446, RFC 5630, RFC 5922): builds the server and
// client secure contexts from key/cert/chain/CAs/CRLs/ciphers, swaps them on reload (new
// handshakes only; bad material keeps the old in force), decides whether node or peergate
// verifies client certificates, judges an inbound handshake (stale-CRL acceptance), and the
// outbound side's checks: SNI and server-certificate name (RFC 5922 §7.2) and identity pins.
// TLS 1.2 minimum by default.
import { isIP } from 'node:net';
import {
  createServer as createTlsServer, createSecureContext,
  type ConnectionOptions, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket, type SecureVersion,
} from 'node:tls';
import { peerIdentity } from './tls-identity.js';
import type { Pem, TransportTlsOptions } from './options.js';
import type { SendTarget, TlsPeerIdentity } from './types.js';

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

/** The DNS name a TLS target's certificate must carry (RFC 5922 §4), lower-cased; undefined for none or an IP. */
export function namedServer(t: SendTarget): string | undefined {
  return t.serverName && isIP(t.serverName) === 0 ? t.serverName.toLowerCase() : undefined;
}

/** Verdict on a handshake node let through. */
export type HandshakeVerdict =
  | { ok: true; identity: TlsPeerIdentity | undefined }
  | { ok: false; reason: string };

export class TlsContexts {
  private opts: TransportTlsOptions | undefined;
  private clientContext: SecureContext | undefined;
  private serverContextOptions: SecureContextOptions | undefined;
  private server: TlsServer | undefined;

  /** Whether TLS material is configured (outbound TLS needs it). */
  get configured(): boolean { return this.clientContext !== undefined; }

  /**
   * Install key/cert/CAs/CRLs/ciphers and the client-certificate policy. After the first call,
   * new handshakes (both directions) use them; established connections are untouched. Throws
   * (and keeps the old material) if invalid.
   */
  apply(o: TransportTlsOptions): void {
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
    if (this.server) {
      this.server.setSecureContext(serverCtx);
      // tls.Server reads these per accepted connection, so new handshakes follow the reload.
      const srv = this.server as TlsServer & { requestCert: boolean; rejectUnauthorized: boolean };
      srv.requestCert = askForClientCert(o);
      srv.rejectUnauthorized = nodeRejects(o);
    }
    this.opts = o;
    this.clientContext = clientContext;
    this.serverContextOptions = serverCtx;
  }

  /**
   * The tls.Server for accepted connections (created once, with the current material; reloads
   * update it). Needs apply() first.
   */
  createServer(handshakeTimeoutMs: number): TlsServer {
    if (this.server) return this.server;
    const o = this.opts!;
    this.server = createTlsServer({
      ...this.serverContextOptions,
      requestCert: askForClientCert(o),
      rejectUnauthorized: nodeRejects(o),
      handshakeTimeout: handshakeTimeoutMs,
    });
    return this.server;
  }

  /**
   * Judge a server-side socket that completed its handshake. node leaves the certificate check
   * to us when a stale CRL may be tolerated (rejectUnauthorized is off then): refuse as node
   * would, except for a certificate whose only fault is a CRL past its nextUpdate and whose
   * serial is not listed as revoked.
   */
  judgeClient(s: TLSSocket): HandshakeVerdict {
    const o = this.opts;
    const stale = o?.acceptStaleCrl && !s.authorized && String(s.authorizationError) === 'CRL_HAS_EXPIRED';
    const revoked = stale && o.acceptStaleCrl!.revokedSerials.has((s.getPeerX509Certificate()?.serialNumber ?? '').toUpperCase().replace(/^0+(?=.)/, ''));
    const staleOk = Boolean(stale) && !revoked;
    if (o?.acceptStaleCrl && (revoked || (o.requireClientCert && !s.authorized && !staleOk))) {
      const reason = revoked ? 'CERT_REVOKED' : s.authorizationError ? String(s.authorizationError) : 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';
      return { ok: false, reason };
    }
    return { ok: true, identity: peerIdentity(s, staleOk) };
  }

  /**
   * Judge a server we connected to, after node verified its certificate (and its name, RFC
   * 5922 §7.2): with a pin (the peer's policy identity: SAN / subject / fingerprint) a
   * certificate the CA vouches for is not enough, it must also satisfy the pin.
   */
  judgeServer(s: TLSSocket, pin: SendTarget['pin']): HandshakeVerdict {
    const identity = peerIdentity(s);
    if (pin && !(identity && pin(identity))) return { ok: false, reason: 'pin-mismatch' };
    return { ok: true, identity };
  }

  /**
   * Options for tls.connect to a server (needs `configured`). `servername`: the DNS name sent as
   * SNI, which node also matches the server certificate against instead of the IP; undefined
   * when the target names none (or names an IP).
   */
  clientOptions(address: string, port: number, localAddress: string | undefined, family: 4 | 6, serverName: string | undefined): {
    opts: ConnectionOptions & { localAddress?: string; family?: number };
    servername: string | undefined;
  } {
    const o = this.opts!;
    const servername = serverName && isIP(serverName) === 0 ? serverName : undefined;
    // tls.connect hands these to net.Socket#connect; @types/node omits localAddress and family.
    const opts: ConnectionOptions & { localAddress?: string; family?: number } = {
      host: address, port, localAddress, family,
      secureContext: this.clientContext!,
      rejectUnauthorized: o.verifyServerCert !== false,
      minVersion: o.minVersion ?? 'TLSv1.2',
    };
    // SNI; node also matches the server certificate against it instead of the IP.
    if (servername) opts.servername = servername;
    return { opts, servername };
  }
}
