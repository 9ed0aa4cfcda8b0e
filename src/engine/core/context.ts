// What the UA core's modules share: the transport and clock, our listeners, the RFC 3261 §17
// transaction layer, the dialogs, the apps that own requests and dialogs, the call observer,
// and the running totals. Each module receives this at construction; none keeps a copy of
// another module's state.
import type { Clock, Endpoint, SendResult, SendTarget, TlsPeerIdentity } from '../transport/types.js';
import type { TransactionLayer } from '../transaction/index.js';
import type { DialogStore } from '../dialog/dialog.js';
import type { AppConnection } from '../wire/server.js';
import type { CallObserver } from './cdr.js';
import type { Listeners } from './listeners.js';

export interface CoreTransport {
  /** Send; `done`, if given, hears how it went, always later (TransportLayer.sendThen: no
   *  promise per message). */
  sendThen(target: SendTarget, bytes: Buffer, done?: (r: SendResult) => void): void;
  /** Whether a TCP/TLS connection still exists (responses on a closed one get NOK). */
  hasConnection?(connectionId: string): boolean;
}

/** The core's own totals (the layer keeps its own; UaCore.counters adds them up). */
export interface OwnCounters {
  requestsIn: number;
  responsesIn: number;
  parseErrors: number;
  badRequests: number;
  retransmissionsAbsorbed: number;
  invalidResponses: number;
  unroutedRequests: number;
  framesToApps: number;
  sendFailures: number;
  /** Client transactions that got no final response (Timer B/F): a made-up 408 went to the app. */
  clientTimeouts: number;
  /** 2xx from a second fork of an INVITE: ACKed and released with BYE by the core (RFC 3261 §13.2.2.4). */
  extraForksReleased: number;
  /** In-dialog requests, CANCELs and ACKs from another source than the dialog's peer: 481 / dropped (RFC 6404 §2.3.2.1). */
  foreignDialogRequests: number;
}

export class CoreContext {
  readonly count: OwnCounters = {
    requestsIn: 0, responsesIn: 0, parseErrors: 0, badRequests: 0, retransmissionsAbsorbed: 0, invalidResponses: 0,
    unroutedRequests: 0, framesToApps: 0, sendFailures: 0, clientTimeouts: 0, extraForksReleased: 0,
    foreignDialogRequests: 0,
  };
  private readonly apps = new Map<number, AppConnection>();

  constructor(
    readonly transport: CoreTransport,
    readonly clock: Clock,
    readonly listeners: Listeners,
    readonly layer: TransactionLayer,
    readonly dialogs: DialogStore,
    /** Undefined when no call events are wanted (CDRs off). */
    readonly calls: CallObserver | undefined,
    /** Told of a message that counts against its source (reputation: a strike). */
    readonly strike: ((source: Endpoint, why: string, tls?: TlsPeerIdentity) => void) | undefined = undefined,
  ) {}

  /** A request that claimed another peer's dialog or INVITE (RFC 6404 §2.3.2.1): counted, and a
   *  strike (against the sender's verified TLS identity when it has one). */
  foreign(from: { source: Endpoint; tls?: TlsPeerIdentity }, method: string): void {
    this.count.foreignDialogRequests++;
    this.strike?.(from.source, `${method} for a dialog of another peer`, from.tls);
  }

  /** Hand a frame to an app (nothing when it is gone). */
  sendToApp(app: AppConnection | undefined, payload: string): void {
    if (!app || app.closed) return;
    this.count.framesToApps++;
    app.send(payload);
  }

  /** The same for a frame of `leader` and a SIP message the engine has as bytes. */
  sendToAppWith(app: AppConnection | undefined, leader: string, sip: Buffer): void {
    if (!app || app.closed) return;
    this.count.framesToApps++;
    app.sendWith(leader, sip);
  }

  /** Send bytes outside any transaction (2xx/1xx retransmissions, ACK for 2xx), counting failures. */
  send(target: SendTarget, bytes: Buffer): void {
    this.transport.sendThen(target, bytes, this.countFailure);
  }

  private readonly countFailure = (r: SendResult): void => { if (!r.ok) this.count.sendFailures++; };

  /** An app that sent or was given a request: its dialogs find it by id. */
  rememberApp(app: AppConnection): void { this.apps.set(app.id, app); }
  app(id: number): AppConnection | undefined { return this.apps.get(id); }
  forgetApp(id: number): void { this.apps.delete(id); }
}
