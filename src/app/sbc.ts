// The B2BUA as a subsystem: it connects to the engine over the drachtio wire protocol, reads
// the policy per call (so peers, routes, topology and limits apply to the next call), and
// owns the calls: listing them, refusing new ones while draining, ending them all.
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { B2bua, type ActiveCall, type B2buaObserver, type Hangup } from '../sbc/b2bua.js';
import type { PeergateEnding } from '../sbc/session/index.js';
import type { Stages } from '../sbc/stages.js';
import type { CallRecorder } from '../sbc/cdr/events.js';
import * as m from '../ops/metrics.js';
import { APPLIED, type Reconfigured, type Subsystem } from './subsystem.js';
import { LocationRouting } from '../routing/index.js';
import { srfProbeSender } from '../routing/probe.js';
import { prepareRoutes } from '../sbc/routing.js';

export interface SbcSubsystemOptions {
  policy: () => Policy;
  stages: Stages;
  /** Call records (CDR). */
  recorder?: CallRecorder;
  log: Logger;
  wire: () => { host: string; port: number; secret: string; tags?: string[] };
  /** A refused request (reputation decides whether it is a strike); `tlsIdentity`: the verified
   *  client certificate's fingerprint it came with, if any. */
  refused: (source: string, reason: string, tlsIdentity?: string) => void;
  /** With the embedded engine: whether it still holds a dialog (reconciliation, src/sbc/session). */
  dialogExists?: (dialogId: string) => boolean;
  /** Whether this B2BUA probes its targets (default true; with workers only one of them does). */
  probe?: boolean;
}

export class SbcSubsystem implements Subsystem {
  readonly name = 'b2bua';
  private readonly b2bua: B2bua;
  private connected = false;
  private readonly routing: LocationRouting;

  constructor(private readonly opts: SbcSubsystemOptions) {
    // Location routing: RFC 3263 / ENUM / DNSSEC, and OPTIONS probing of targets (docs/routing.md).
    this.routing = new LocationRouting(opts.log.child({ module: 'routing' }), (t, ms) => probe(t, ms));
    this.b2bua = new B2bua({
      policy: opts.policy, stages: opts.stages, log: opts.log, observer: metricsObserver(opts.refused),
      routing: this.routing,
      ...(opts.recorder ? { recorder: opts.recorder } : {}),
      ...(opts.dialogExists ? { dialogExists: opts.dialogExists } : {}),
    });
    const probe = srfProbeSender(this.b2bua.srf, opts.policy);
    this.b2bua.srf.on('disconnect', () => { this.connected = false; m.engineConnected.set(0); });
    this.b2bua.srf.on('connect', () => { this.connected = true; m.engineConnected.set(1); });
  }

  async start(): Promise<void> {
    prepareRoutes(this.opts.policy().routes);
    await this.b2bua.connect(this.opts.wire());
    this.connected = true;
    if (this.opts.probe !== false) this.routing.startProbing(this.opts.policy);
    m.engineConnected.set(1);
  }

  /** The B2BUA reads the policy per call; the route index is built here rather than by the
   *  first call after a reload (≈ 6 ms for 10,000 routes). */
  reconfigure(next: Policy): Reconfigured { prepareRoutes(next.routes); return APPLIED; }

  ready(): true | string {
    return this.connected ? true : 'not connected to the SIP engine';
  }

  calls(): ActiveCall[] { return this.b2bua.activeCalls(); }
  /** Up/down changes of this B2BUA's probes (a probing worker shares them with the others). */
  onTargetHealth(fn: (key: string, up: boolean) => void): void { this.routing.health.onChange(fn); }
  /** A hop's state as the node's prober saw it (workers that do not probe). */
  applyTargetHealth(key: string, up: boolean): void { this.routing.health.applyRemote(key, up); }
  /** Next hops and their health, for /admin/targets. */
  targets(): ReturnType<LocationRouting['health']['snapshot']> { return this.routing.health.snapshot(); }
  endCall(id: string, reason: PeergateEnding): boolean { return this.b2bua.endCall(id, reason); }
  get liveCalls(): number { return this.b2bua.liveCalls; }
  drain(retryAfterS: number): void { this.b2bua.drain(retryAfterS); }
  whenIdle(): Promise<void> { return this.b2bua.whenIdle(); }
  endAll(h: Hangup): Promise<void> { return this.b2bua.endAll(h); }

  async close(): Promise<void> {
    this.routing.stop();
    this.b2bua.disconnect();
  }
}

/** The B2BUA's reports as Prometheus metrics; refusals also go to reputation. */
function metricsObserver(refused: SbcSubsystemOptions['refused']): B2buaObserver {
  return {
    request: (peer, method) => m.requestsTotal.inc({ peer, method }),
    refusal: (peer, reason, source, tlsIdentity) => {
      m.refusalsTotal.inc({ peer, reason });
      refused(source, reason, tlsIdentity);
    },
    response: (peer, status) => m.responsesTotal.inc({ peer, class: m.responseClass(status) }),
    callStarted: (peer) => m.activeCalls.inc({ peer }),
    callEnded: (peer) => m.activeCalls.dec({ peer }),
    callFinished: (peer, direction, result) => m.callsTotal.inc({ peer, direction, result }),
    callSetup: (peer, direction, seconds) => m.callSetupSeconds.observe({ peer, direction }, seconds),
    ...m.callTimingObserver,
  };
}
