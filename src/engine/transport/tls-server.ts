// Inbound TLS handshakes (RFC 3261 §18 over RFC 5246 / RFC 8446, mutual TLS per RFC 5630):
// accepted raw TCP sockets, already past the shield and the connection limits
// (streams.ts), are handed to a tls.Server that never listens itself. This module tracks each
// one until its handshake ends: the source slot it holds (released if the handshake fails),
// the pending-handshake count the connection limit includes, and the 'tls-handshake' event
// with node's real failure reason. A verified client's identity (tls-identity.ts) goes with the
// socket to the connection table, unless the shield has banned it: then the socket is closed
// before any SIP is read ('tls-handshake' result 'refused'). Only node's public TLSSocket API is used (no private fields):
// a TLSSocket is matched to its raw socket by remote endpoint, noted while it is alive.
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { familyOf, remoteKey, type TransportContext } from './options.js';
import type { TlsContexts } from './tls-contexts.js';
import type { Endpoint, TlsPeerIdentity } from './types.js';

/** What the acceptor needs from the connection table. */
export interface TlsAcceptorHost {
  /** Take over a socket whose handshake succeeded. */
  attach(socket: TLSSocket, local: Endpoint, remote: Endpoint, identity: TlsPeerIdentity | undefined): void;
  /** Give back the per-source slot counted when the raw socket was accepted. */
  releaseSource(address: string): void;
}

export class TlsAcceptor {
  private server: TlsServer | undefined;
  private pending = 0;
  /** Raw sockets in their TLS handshake (for close()). */
  private readonly handshaking = new Set<Socket>();
  /** Accepted raw sockets waiting for their TLS handshake → where they came from. */
  private readonly handshakeSource = new WeakMap<Socket, Endpoint>();
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

  constructor(
    private readonly ctx: TransportContext,
    private readonly contexts: TlsContexts,
    private readonly host: TlsAcceptorHost,
  ) {}

  /** Handshakes in progress (they count against maxConnections). */
  get pendingHandshakes(): number { return this.pending; }

  /** Create the tls.Server now (at listen time), so reloads reach it. */
  ensureServer(): TlsServer {
    if (this.server) return this.server;
    // Never listens: accepted raw sockets are injected with emit('connection') after the shield
    // and connection limits have had their say (documented node API for tls.Server).
    const server = this.contexts.createServer(this.ctx.limits.handshakeTimeoutMs);
    // Listening to keylog is the public way to see each handshake's socket while it is alive.
    server.on('keylog', (_line: Buffer, s: TLSSocket) => this.noteRemote(s));
    server.on('secureConnection', (s: TLSSocket) => this.onSecure(s));
    server.on('tlsClientError', (err: Error, s: TLSSocket) => this.onClientError(err, s));
    this.server = server;
    return server;
  }

  /**
   * Start the handshake on an accepted raw socket whose per-source slot is already counted
   * (the handshake is where floods hurt); the slot is released if the handshake fails.
   */
  accept(raw: Socket, local: Endpoint, address: string, port: number): void {
    const source: Endpoint = { protocol: 'tls', address, port };
    const rkey = remoteKey('tls', address, port);
    this.handshakeRaw.set(rkey, raw);
    raw.once('close', () => { if (this.handshakeRaw.get(rkey) === raw) this.handshakeRaw.delete(rkey); });
    this.handshakeSource.set(raw, source);
    this.pending++;
    let settled = false;
    const settle = () => { if (!settled) { settled = true; this.pending--; } };
    this.handshakeSettle.set(raw, settle);
    raw.once('close', () => {
      settle();
      if (!this.handshakeDone.has(raw)) this.host.releaseSource(address);
    });
    this.localOf.set(raw, local);
    this.handshaking.add(raw);
    raw.once('close', () => this.handshaking.delete(raw));
    this.ensureServer().emit('connection', raw);
  }

  /** Abort every handshake in progress. */
  close(): void {
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
  }

  private noteRemote(s: TLSSocket): void {
    if (!this.tlsRemote.has(s) && s.remoteAddress !== undefined && s.remotePort !== undefined) this.tlsRemote.set(s, { address: s.remoteAddress, port: s.remotePort });
  }

  /** The accepted raw socket a TLSSocket wraps (public API only: matched by remote endpoint). */
  private rawOf(s: TLSSocket): Socket | undefined {
    this.noteRemote(s);
    const r = this.tlsRemote.get(s);
    return r ? this.handshakeRaw.get(remoteKey('tls', r.address, r.port)) : undefined;
  }

  private onSecure(s: TLSSocket): void {
    const { ctx } = this;
    const raw = this.rawOf(s);
    const source = (raw && this.handshakeSource.get(raw)) ?? { protocol: 'tls' as const, address: s.remoteAddress ?? '', port: s.remotePort ?? 0 };
    const local = (raw && this.localOf.get(raw)) ?? ctx.listenerFor('tls', familyOf(source.address)) ?? { protocol: 'tls' as const, address: s.localAddress ?? '', port: s.localPort ?? 0 };
    const verdict = this.contexts.judgeClient(s);
    if (!verdict.ok) {
      ctx.stats.tls.handshakesFailed++;
      ctx.log.debug({ address: source.address, port: source.port, reason: verdict.reason }, 'tls handshake failed');
      ctx.safeEmit('tls-handshake', { result: 'failed', reason: verdict.reason, source, direction: 'inbound' });
      s.destroy();
      return;
    }
    const identity = verdict.identity;
    if (identity && ctx.shield?.isIdentityBanned(identity.fingerprint256)) {
      // A banned identity (issue #17.4): closed right after its certificate verified, before any
      // SIP is read. Not a failed handshake, so not a strike against the address it came from
      // (other peers may share it); the slot it held is released when the raw socket closes.
      ctx.shield.counters.identity.handshakesRefused++;
      ctx.log.debug({ address: source.address, port: source.port, fingerprint256: identity.fingerprint256 }, 'tls handshake refused: identity banned');
      ctx.safeEmit('tls-handshake', { result: 'refused', reason: 'identity-banned', source, direction: 'inbound', identity });
      s.destroy();
      return;
    }
    if (raw) { this.handshakeSettle.get(raw)?.(); this.handshakeDone.add(raw); this.handshaking.delete(raw); this.handshakeRaw.delete(remoteKey('tls', source.address, source.port)); }
    ctx.stats.tls.handshakesOk++;
    ctx.safeEmit('tls-handshake', { result: 'ok', reason: '', source, direction: 'inbound', identity });
    if (ctx.closed) { s.destroy(); return; }
    this.host.attach(s, local, source, identity);
  }

  private onClientError(err: Error, s: TLSSocket): void {
    const { ctx } = this;
    const raw = this.rawOf(s);
    const remote = this.tlsRemote.get(s);
    const source = (raw && this.handshakeSource.get(raw)) ?? { protocol: 'tls' as const, address: remote?.address ?? '', port: remote?.port ?? 0 };
    // When node itself rejects an unverified certificate it destroys the socket after setting
    // authorizationError, and the error we get is a bland ECONNRESET: report the real cause.
    const reason = s.authorizationError ? String(s.authorizationError) : ((err as NodeJS.ErrnoException).code ?? err.message);
    ctx.stats.tls.handshakesFailed++;
    ctx.log.debug({ address: source.address, port: source.port, reason }, 'tls handshake failed');
    ctx.safeEmit('tls-handshake', { result: 'failed', reason, source, direction: 'inbound' });
    s.destroy();
  }
}
