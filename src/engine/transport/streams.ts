// TCP and TLS stream connections (RFC 3261 §18, §18.3; RFC 5626 §3.5.1 keep-alives): the
// connection table and its limits. Every connection (accepted or opened by send()) gets an id.
// Inbound packets carry it; send() with that id writes on the same connection (responses and
// in-dialog requests go back the way the request came, §18.2.2), else reuses any live
// connection to address:port (a TLS one only if checked against the same server name, RFC
// 5922 §7.2), else connects. Framing is framer.ts's; an unframeable stream is closed.
// Connections close after `idleTimeoutMs` without traffic in either direction, and when a peer
// stops reading (write buffer limit). Messages sent to a connection in one event-loop turn
// leave in one write at the turn's end. The shield runs per accepted connection and per framed
// message on accepted connections; connections we opened carry traffic we asked for and skip
// the per-message check. A banned TLS identity's accepted connections are closed when the ban
// is set (the shield tells us), its new handshakes refused (tls-server.ts). Inbound TLS handshakes are tls-server.ts's, TLS material and the
// outbound name/pin checks tls-contexts.ts's.
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { StreamFramer } from './framer.js';
import { LineBudget } from '../../log-budget.js';
import { TlsAcceptor } from './tls-server.js';
import { namedServer, type TlsContexts } from './tls-contexts.js';
import { familyOf, remoteKey, type ListenerSpec, type TransportContext } from './options.js';
import type { Endpoint, InboundPacket, SendResult, SendTarget, TlsPeerIdentity } from './types.js';

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
  /** Corked for this event-loop turn: its writes go out together when the turn ends. */
  corked: boolean;
}

type Failure = Extract<SendResult, { ok: false }>;

const CRLF = Buffer.from('\r\n');

export class StreamConnections {
  private readonly servers: { server: NetServer; local: Endpoint }[] = [];
  private readonly conns = new Map<string, Conn>();
  private readonly byRemote = new Map<string, Conn>();
  private readonly connecting = new Map<string, Promise<Conn | Failure>>();
  private readonly perSource = new Map<string, number>();
  /** Outbound sockets still connecting (for close()). */
  private readonly opening = new Set<Socket>();
  private readonly acceptor: TlsAcceptor;
  private seq = 0;
  /** Connections corked this turn, uncorked together by one setImmediate (see write()). */
  private readonly corked: Conn[] = [];
  /** "connection limit reached" lines: a budget, not one per refused accept. */
  private readonly limitLines = new LineBudget();
  private readonly uncorkAll = (): void => {
    const list = this.corked;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      c.corked = false;
      if (!c.socket.destroyed) c.socket.uncork();
    }
    list.length = 0;
  };
  private readonly idPrefix = Math.random().toString(36).slice(2, 8);

  /** Unsubscribes from the shield's identity bans. */
  private readonly offIdentityBan: () => void;

  constructor(private readonly ctx: TransportContext, private readonly tls: TlsContexts) {
    this.acceptor = new TlsAcceptor(ctx, tls, {
      attach: (s, local, remote, identity) => { this.attach(s, 'tls', true, local, remote, identity); },
      releaseSource: (address) => this.releaseSource(address),
    });
    this.offIdentityBan = ctx.shield?.onIdentityBan((fp) => { this.closeIdentity(fp); }) ?? (() => undefined);
  }

  /** Live connection count. */
  get size(): number { return this.conns.size; }

  has(connectionId: string): boolean { return this.conns.has(connectionId); }

  /** Close one connection, recording why. */
  closeConnection(connectionId: string, reason: string): boolean {
    const c = this.conns.get(connectionId);
    if (!c) return false;
    c.closeReason = reason;
    c.socket.destroy();
    return true;
  }

  /**
   * Close every accepted TLS connection whose verified client certificate has this SHA-256
   * fingerprint (its identity was just banned); returns how many. Connections we opened carry
   * traffic we asked for and stay, as they skip the shield.
   */
  closeIdentity(fingerprint256: string): number {
    let n = 0;
    for (const c of this.conns.values()) {
      if (!c.inbound || c.tls?.fingerprint256 !== fingerprint256 || c.socket.destroyed) continue;
      c.closeReason = 'identity-banned';
      c.socket.destroy();
      n++;
    }
    if (n > 0 && this.ctx.shield) this.ctx.shield.counters.identity.connectionsClosed += n;
    return n;
  }

  listen(spec: ListenerSpec): Promise<void> {
    const protocol = spec.protocol as 'tcp' | 'tls';
    if (protocol === 'tls') this.acceptor.ensureServer();
    return new Promise((resolve, reject) => {
      const server = createNetServer({ noDelay: true });
      const onError = (e: Error) => reject(new Error(`${protocol} listen ${spec.address}:${spec.port}: ${e.message}`));
      server.once('error', onError);
      server.listen({ port: spec.port, host: spec.address, backlog: 511 }, () => {
        server.off('error', onError);
        server.on('error', (e) => this.ctx.log.warn({ err: e.message }, `${protocol} server error`));
        const addr = server.address();
        const local: Endpoint = { protocol, address: spec.address, port: typeof addr === 'object' && addr ? addr.port : spec.port };
        this.servers.push({ server, local });
        this.ctx.addBound(local);
        server.on('connection', (raw: Socket) => this.onAccept(raw, local));
        resolve();
      });
    });
  }

  /** Destroy every connection and handshake in progress (synchronously). */
  destroyAll(): void {
    this.offIdentityBan();
    for (const c of this.conns.values()) { c.closeReason = 'shutdown'; c.socket.destroy(); }
    for (const s of this.opening) s.destroy();
    this.opening.clear();
    this.acceptor.close();
  }

  /** Close the listening servers; resolves when all are closed. */
  async closeServers(): Promise<void> {
    await Promise.all(this.servers.map(({ server }) => new Promise<void>((r) => { server.close(() => r()); })));
    this.servers.length = 0;
  }

  /** Send on the target's connection, a live one to its address, or a new one. */
  async send(target: SendTarget, data: Buffer): Promise<SendResult> {
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

  private get pendingAndLive(): number { return this.conns.size + this.acceptor.pendingHandshakes; }

  private onAccept(raw: Socket, local: Endpoint): void {
    const { ctx } = this;
    const { limits, stats } = ctx;
    const address = raw.remoteAddress;
    const port = raw.remotePort;
    if (address === undefined || port === undefined) { raw.destroy(); return; }
    raw.on('error', (e) => ctx.log.debug({ err: e.message, address, port }, 'accepted socket error'));
    if (ctx.closed) { raw.destroy(); return; }
    if (ctx.shield && !ctx.shield.admit(address)) { stats.stream.shieldRejected++; raw.destroy(); return; }
    if (this.pendingAndLive >= limits.maxConnections) {
      stats.stream.totalRejected++;
      // A connection flood is one warn line per accept otherwise (log-budget.ts).
      const leftOut = this.limitLines.take('connection limit');
      if (leftOut !== undefined) ctx.log.warn({ address, port, limit: limits.maxConnections, ...(leftOut > 0 ? { not_logged_before: leftOut } : {}) }, 'connection limit reached');
      raw.destroy();
      return;
    }
    const count = this.perSource.get(address) ?? 0;
    if (count >= limits.maxConnectionsPerSource) {
      stats.stream.perSourceRejected++;
      ctx.log.debug({ address, limit: limits.maxConnectionsPerSource }, 'per-source connection limit');
      raw.destroy();
      return;
    }
    this.perSource.set(address, count + 1);
    stats.stream.accepted++;
    if (local.protocol === 'tcp') {
      this.attach(raw, 'tcp', true, local, { protocol: 'tcp', address, port }, undefined);
      return;
    }
    this.acceptor.accept(raw, local, address, port);
  }

  private attach(socket: Socket | TLSSocket, protocol: 'tcp' | 'tls', inbound: boolean, local: Endpoint, remote: Endpoint, identity: TlsPeerIdentity | undefined): Conn {
    const { ctx } = this;
    const { stats, limits } = ctx;
    const id = `${protocol}-${this.idPrefix}-${++this.seq}`;
    const key = remoteKey(protocol, remote.address, remote.port);
    const framer = new StreamFramer(
      { maxMessageSize: limits.maxMessageSize, maxHeaderSize: limits.maxHeaderSize },
      (msg) => this.onStreamMessage(conn, msg),
      () => {
        stats.stream.keepAlives++;
        // RFC 5626 §3.5.1: answer a CRLF CRLF ping with a CRLF pong.
        if (!socket.destroyed) socket.write(CRLF);
      },
    );
    const conn: Conn = { id, protocol, socket, remote, local, inbound, key, framer, closeReason: 'peer-closed', corked: false };
    if (identity) conn.tls = identity;
    this.conns.set(id, conn);
    this.byRemote.set(key, conn);
    socket.setNoDelay(true);
    if (limits.idleTimeoutMs > 0) {
      socket.setTimeout(limits.idleTimeoutMs, () => {
        stats.stream.idleClosed++;
        conn.closeReason = 'idle';
        socket.destroy();
      });
    }
    socket.on('data', (chunk: Buffer) => {
      const err = framer.push(chunk);
      if (err && !socket.destroyed) {
        stats.stream.framingErrors[err]++;
        ctx.log.debug({ connectionId: id, address: remote.address, port: remote.port, err }, 'unframeable stream, closing (RFC 3261 §18.3)');
        conn.closeReason = `framing:${err}`;
        socket.destroy();
      }
    });
    socket.on('error', (e) => {
      conn.closeReason = (e as NodeJS.ErrnoException).code ?? e.message;
      ctx.log.debug({ connectionId: id, err: e.message }, 'connection error');
    });
    socket.once('close', () => this.detach(conn));
    if (!inbound) stats.stream.opened++;
    ctx.safeEmit('connection-open', { connectionId: id, protocol, remote, direction: inbound ? 'inbound' : 'outbound' });
    return conn;
  }

  private detach(conn: Conn): void {
    if (!this.conns.delete(conn.id)) return;
    if (this.byRemote.get(conn.key) === conn) this.byRemote.delete(conn.key);
    if (conn.inbound) this.releaseSource(conn.remote.address);
    this.ctx.stats.stream.closed++;
    this.ctx.safeEmit('connection-close', {
      connectionId: conn.id, protocol: conn.protocol, remote: conn.remote, direction: conn.inbound ? 'inbound' : 'outbound', reason: conn.closeReason,
    });
  }

  private releaseSource(address: string): void {
    const n = (this.perSource.get(address) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(address); else this.perSource.set(address, n);
  }

  private onStreamMessage(conn: Conn, msg: Buffer): void {
    if (conn.socket.destroyed) return;
    const { shield, stats } = this.ctx;
    if (conn.inbound && shield && !shield.admit(conn.remote.address)) { stats.stream.shieldDropped++; return; }
    // Closed when the ban was set; this only catches a message framed in the same tick.
    if (conn.tls && conn.inbound && shield && shield.isIdentityBanned(conn.tls.fingerprint256)) { stats.stream.shieldDropped++; this.closeIdentity(conn.tls.fingerprint256); return; }
    const p: InboundPacket = { data: msg, source: conn.remote, local: conn.local, connectionId: conn.id };
    if (conn.tls) p.tls = conn.tls;
    this.ctx.deliver(p);
  }

  private write(conn: Conn, data: Buffer): Promise<SendResult> {
    return new Promise((resolve) => {
      if (conn.socket.destroyed || !conn.socket.writable) { resolve({ ok: false, reason: 'closed', detail: conn.id }); return; }
      if (conn.socket.writableLength + data.length > this.ctx.limits.maxWriteBufferBytes) {
        // The peer stopped reading: holding more for it only grows our memory.
        this.ctx.stats.stream.writeOverflows++;
        conn.closeReason = 'write-buffer-full';
        conn.socket.destroy();
        resolve({ ok: false, reason: 'closed', detail: `${conn.id}: peer not reading (write buffer full)` });
        return;
      }
      // Gather one event-loop turn's messages to a connection into one write: over TLS one
      // SSL_write, one record and one syscall per turn (node alone writes the turn's first
      // message at once and the rest as a second record). The turn's first write corks the
      // socket; the turn's check phase uncorks every corked one.
      if (!conn.corked) {
        conn.corked = true;
        conn.socket.cork();
        if (this.corked.push(conn) === 1) setImmediate(this.uncorkAll);
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
    const { ctx } = this;
    const { stats, limits } = ctx;
    if (this.pendingAndLive >= limits.maxConnections) {
      stats.stream.totalRejected++;
      return Promise.resolve({ ok: false, reason: 'unreachable', detail: 'connection limit reached' });
    }
    if (protocol === 'tls' && !this.tls.configured) return Promise.resolve({ ok: false, reason: 'no-transport', detail: 'tls not configured' });
    const fam = familyOf(address);
    const listener = ctx.listenerFor(protocol, fam);
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
        this.opening.delete(socket);
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        finish({ ok: false, reason: 'timeout', detail: `${protocol} connect to ${address}:${port} took over ${limits.connectTimeoutMs} ms` });
        socket.destroy();
      }, limits.connectTimeoutMs);
      const onError = (e: Error) => {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        let reason: Failure['reason'] = 'unreachable';
        if (code === 'ECONNREFUSED') reason = 'refused';
        else if (protocol === 'tls' && tcpUp) reason = 'tls-failed';
        if (reason === 'tls-failed') {
          stats.tls.handshakesFailed++;
          ctx.safeEmit('tls-handshake', { result: 'failed', reason: code || e.message, source: remote, direction: 'outbound' });
        }
        finish({ ok: false, reason, detail: code ? `${code}: ${e.message}` : e.message });
      };
      if (protocol === 'tcp') {
        socket = netConnect({ host: address, port, localAddress, family: fam, noDelay: true });
        socket.once('connect', () => {
          socket.off('error', onError);
          if (done) { socket.destroy(); return; }
          finish(this.attach(socket, 'tcp', false, listener ?? socketLocal(socket, 'tcp'), remote, undefined));
        });
      } else {
        const { opts, servername } = this.tls.clientOptions(address, port, localAddress, fam, serverName);
        socket = tlsConnect(opts);
        socket.once('connect', () => { tcpUp = true; });
        socket.once('secureConnect', () => {
          socket.off('error', onError);
          if (done) { socket.destroy(); return; }
          const s = socket as TLSSocket;
          const verdict = this.tls.judgeServer(s, pin);
          if (!verdict.ok) {
            stats.tls.handshakesFailed++;
            ctx.safeEmit('tls-handshake', { result: 'failed', reason: verdict.reason, source: remote, direction: 'outbound' });
            finish({ ok: false, reason: 'tls-failed', detail: 'server certificate does not match the pinned identity' });
            s.destroy();
            return;
          }
          const { identity } = verdict;
          stats.tls.handshakesOk++;
          ctx.safeEmit('tls-handshake', { result: 'ok', reason: '', source: remote, direction: 'outbound', identity });
          const conn = this.attach(s, 'tls', false, listener ?? socketLocal(s, 'tls'), remote, identity);
          if (servername) conn.serverName = servername.toLowerCase();
          finish(conn);
        });
      }
      socket.once('error', onError);
      this.opening.add(socket);
    });
  }
}

function socketLocal(s: Socket, protocol: 'tcp' | 'tls'): Endpoint {
  return { protocol, address: s.localAddress ?? '', port: s.localPort ?? 0 };
}
