// drachtio wire-protocol server (spec §1–§4): TCP listener for apps, authentication,
// route/remove_route with per-method round-robin, ping, and dispatch of `sip`/`proxy` frames
// to the SIP core. Synchronous errors answer NO and close; asynchronous ones are the core's.
import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder, encodeFrame, encodeFrameWith, splitFrame } from './framing.js';
import { noPayload, nokPayload, okPayload } from './leaders.js';
import type { SipRequest } from '../message/types.js';
import type { NewInvite } from '../core/server.js';
import type { InboundPacket } from '../transport/types.js';

export const SERVER_VERSION = 'v0.9.10-peergate';

/** One connected app. */
export class AppConnection {
  authenticated = false;
  closed = false;
  readonly routes = new Set<string>();
  /** What the app said of itself in `authenticate|secret|tags` (drachtio-srf's `tags`). */
  tags: readonly string[] = [];
  readonly remoteAddress: string;
  readonly remotePort: number;
  constructor(readonly id: number, private readonly socket: Socket) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
  }

  private corked = false;

  /** Send one frame; silently dropped when the connection is gone. Frames written in the same
   *  event-loop cycle leave in one write (cork/uncork): one syscall instead of one per frame. */
  send(payload: string): void {
    if (this.closed) return;
    this.cork();
    this.socket.write(encodeFrame(payload));
  }

  /** The same for a frame whose SIP message the engine has as bytes: `leader` CR LF `sip`. */
  sendWith(leader: string, sip: Buffer): void {
    if (this.closed) return;
    this.cork();
    this.socket.write(encodeFrameWith(leader, sip));
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    // Uncork after this I/O cycle's callbacks: frames caused by a burst of datagrams share a write.
    setImmediate(() => { this.corked = false; this.socket.uncork(); });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    // A peer that never reads must not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

/** What the SIP core does with frames the wire server does not handle itself. */
export interface WireHandler {
  /** `sip` frame (forms a–d, spec §4.5); tokens are the leader split on `|`. */
  onSip(app: AppConnection, tokens: string[], sip: string): void;
  /** `proxy` frame (spec §4.6). */
  onProxy(app: AppConnection, tokens: string[], sip: string): void;
  /** The app's connection closed (spec §7.1: its dialogs answered 481, pending requests 503). */
  onAppGone(app: AppConnection): void;
}

export interface WireServerOptions {
  address: string;
  port: number;
  secret: string;
  /** `tcp/127.0.0.1:5060,udp/127.0.0.1:5060` (spec §4.1). */
  hostports: () => string;
  localHostports?: () => string;
  version?: string;
}

export interface WireCounters {
  connections: number;
  authFailures: number;
  framingErrors: number;
  framesIn: number;
}

/** Refuses new (dialog-creating) INVITEs under overload; true when it answered the request. */
export interface InviteAdmission { shed(invite: NewInvite, req: SipRequest): boolean }

/**
 * Decides a new INVITE's limits before the app it was routed to sees it (pre-admission, set by
 * the app layer: src/app/preadmit.ts). Synchronous: an INVITE held back could be overtaken by
 * its own CANCEL. Returns the value of the X-Peergate-Admission header to add, or undefined.
 */
export interface InvitePreAdmission {
  admit(req: SipRequest, pkt: InboundPacket, app: AppConnection): string | undefined;
  /** The app's connection went before it answered the INVITE that carried `value`: the app may
   *  never have read it, so what was taken for it is given back. */
  abandoned(value: string): void;
}

export class WireServer {
  private server: Server | undefined;
  private nextId = 1;
  private readonly apps = new Set<AppConnection>();
  /** Per verb: registrations in the order made, plus the rotating offset (spec §7.1). */
  private readonly routes = new Map<string, { list: AppConnection[]; next: number }>();
  readonly counters: WireCounters = { connections: 0, authFailures: 0, framingErrors: 0, framesIn: 0 };
  private handler: WireHandler | undefined;
  private admit: InviteAdmission | undefined = undefined;
  private preAdmit: InvitePreAdmission | undefined = undefined;
  private heard: ((app: AppConnection) => boolean) | undefined = undefined;

  constructor(private readonly opts: WireServerOptions) {}

  /**
   * Which apps are heard from (set by the app layer: B2BUA workers that report, src/app/workers):
   * pickApp() passes over one that is not while another is, so a stuck app stops getting new
   * requests before it is replaced; when none is heard from, round-robin as before.
   */
  setHeard(heard: ((app: AppConnection) => boolean) | undefined): void { this.heard = heard; }

  setHandler(h: WireHandler): void { this.handler = h; }

  /** Who may refuse a new INVITE before an app sees it (overload control); undefined: all pass. */
  get admission(): InviteAdmission | undefined { return this.admit; }
  setAdmission(a: InviteAdmission | undefined): void { this.admit = a; }

  /** Who decides a new INVITE's limits before its app sees it; undefined: the app does. */
  get preAdmission(): InvitePreAdmission | undefined { return this.preAdmit; }
  setPreAdmission(p: InvitePreAdmission | undefined): void { this.preAdmit = p; }

  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const srv = createServer((s) => this.accept(s));
      this.server = srv;
      srv.once('error', reject);
      srv.listen(this.opts.port, this.opts.address, () => {
        srv.off('error', reject);
        const a = srv.address() as { address: string; port: number };
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    for (const a of this.apps) a.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The next app that routed `method` (lower-cased), round-robin; undefined when none. */
  pickApp(method: string): AppConnection | undefined {
    const r = this.routes.get(method.toLowerCase());
    if (!r || r.list.length === 0) return undefined;
    const heard = this.heard;
    let fallback: AppConnection | undefined;
    let afterFallback = 0;
    for (let tries = r.list.length; tries > 0; tries--) {
      if (r.next >= r.list.length) r.next = 0;
      const app = r.list[r.next]!;
      r.next++;
      if (app.closed) continue;
      if (heard === undefined || heard(app)) return app;
      if (fallback === undefined) { fallback = app; afterFallback = r.next; }
    }
    // None heard from: the first open one in turn, and the turn moves on from it.
    if (fallback !== undefined) r.next = afterFallback;
    return fallback;
  }

  /** All live apps that routed `verb`, e.g. for cdr events. */
  hasRoute(verb: string): boolean {
    const r = this.routes.get(verb);
    return !!r && r.list.some((a) => !a.closed);
  }

  connectedApps(): number { return this.apps.size; }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 45_000);
    const app = new AppConnection(this.nextId++, socket);
    this.apps.add(app);
    this.counters.connections++;
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      if (app.closed) return;
      const { frames, error } = decoder.push(chunk);
      for (const f of frames) {
        if (app.closed) return;
        this.counters.framesIn++;
        try {
          this.onFrame(app, f);
        } catch (err) {
          // A bug in handling one frame must not take the engine down; the app learns nothing
          // better than a closed connection would tell it, so keep it open and log.
          process.emitWarning(`wire: error handling frame: ${(err as Error).stack ?? String(err)}`);
        }
      }
      if (error) {
        this.counters.framingErrors++;
        app.close();
      }
    });
    const gone = () => {
      if (!this.apps.has(app)) return;
      this.apps.delete(app);
      app.closed = true;
      this.removeAllRoutes(app);
      this.handler?.onAppGone(app);
    };
    socket.on('close', gone);
    socket.on('error', () => { socket.destroy(); });
  }

  private onFrame(app: AppConnection, payload: string): void {
    const { tokens, sip } = splitFrame(payload);
    const msgId = tokens[0] ?? '';
    const type = tokens[1];
    if (type === 'authenticate') {
      if ((tokens[2] ?? '') === this.opts.secret && tokens.length >= 3) {
        app.authenticated = true;
        if (tokens[3]) app.tags = tokens[3].split(',');
        const hp = this.opts.hostports();
        app.send(okPayload(msgId, hp, this.opts.version ?? SERVER_VERSION, this.opts.localHostports ? this.opts.localHostports() : hp));
      } else {
        this.counters.authFailures++;
        app.send(noPayload(msgId, 'incorrect secret'));
        app.close();
      }
      return;
    }
    // Stricter than v0.9.10: nothing but authenticate before authentication (spec §1).
    if (!app.authenticated) {
      app.send(noPayload(msgId, 'authenticate first'));
      app.close();
      return;
    }
    switch (type) {
      case 'route': {
        const verb = tokens[2] ?? '';
        if (verb) this.addRoute(app, verb);
        app.send(okPayload(msgId));
        return;
      }
      case 'remove_route': {
        const verb = tokens[2] ?? '';
        this.removeRoute(app, verb);
        app.send(okPayload(msgId));
        return;
      }
      case 'ping':
        app.send(okPayload(msgId, 'pong'));
        return;
      case 'sip':
        if (tokens.length < 4) {
          app.send(nokPayload(msgId, 'malformed sip frame: fewer than 4 tokens'));
          return;
        }
        if (sip.startsWith('SIP/') && !tokens[2]) {
          app.send(noPayload(msgId, 'transaction id missing'));
          app.close();
          return;
        }
        this.handler?.onSip(app, tokens, sip);
        return;
      case 'proxy':
        this.handler?.onProxy(app, tokens, sip);
        return;
      default:
        app.send(noPayload(msgId, 'Unknown message type'));
        app.close();
    }
  }

  private addRoute(app: AppConnection, verb: string): void {
    // A repeated (connection, verb) is a no-op so that re-sent routes do not skew round-robin.
    if (app.routes.has(verb)) return;
    app.routes.add(verb);
    let r = this.routes.get(verb);
    if (!r) { r = { list: [], next: 0 }; this.routes.set(verb, r); }
    r.list.push(app);
  }

  private removeRoute(app: AppConnection, verb: string): void {
    if (!app.routes.delete(verb)) return;
    const r = this.routes.get(verb);
    if (!r) return;
    const i = r.list.indexOf(app);
    if (i >= 0) {
      r.list.splice(i, 1);
      if (r.next > i) r.next--;
    }
  }

  private removeAllRoutes(app: AppConnection): void {
    for (const verb of [...app.routes]) this.removeRoute(app, verb);
  }
}
