// An established B2BUA call (both legs up) as one record: what the session tells when the call
// ends (SessionOwner), what the call registry lists and hangs up (HeldCall), and what the relay
// reads to carry in-dialog requests across (RelayCall).
//
// Why one object: a held call lives for hours, and each closure over the call flow kept its
// scope (and the objects in it) for that long; a record with methods costs one object whose
// fields are shared references (issue #18 item 5, BENCHMARKS.md "held calls").
import type { Policy } from '../policy/schema.js';
import type { ActiveCall, HeldCall, Hangup } from './calls.js';
import { dialogCallId } from './cdr/events.js';
import type { CallOutcome, CallLog } from './outcome.js';
import type { RelayCall } from './relay.js';
import type { Dialog } from './request-view.js';
import type { CallSession, EndResult, SessionOwner } from './session/index.js';
import { sideLabel } from './sides.js';
import type { MediaStage, Side } from './stages.js';
import type { Target } from './b-leg.js';

/** Where established calls report (one object shared by the B2BUA's calls). */
export interface EstablishedSinks {
  observer: {
    callEnded(peer: string, direction: 'inbound' | 'outbound'): void;
    callDuration?(peer: string, direction: 'inbound' | 'outbound', seconds: number): void;
  };
  media: MediaStage | undefined;
}

export class EstablishedCall implements SessionOwner, HeldCall, RelayCall {
  /** Set right after the session is made (establish() may already end it: onEnd needs none). */
  session!: CallSession;
  private readonly answeredAt = performance.now();
  /** The side and URI of the target that answered: not the routed Target itself, which also
   *  carries its hop and health key (≈ 130 B per call that nothing reads after the set-up). */
  readonly callee: Side;
  private readonly targetUri: string;

  constructor(
    private readonly outcome: CallOutcome,
    private readonly sinks: EstablishedSinks,
    /** The peer metrics count the call for (`core` for a core-to-core call). */
    private readonly peer: string,
    readonly caller: Side,
    target: Target,
    readonly policy: Policy,
    readonly uas: Dialog,
    readonly uac: Dialog,
  ) {
    this.callee = target.side;
    this.targetUri = target.uri;
  }

  get id(): string { return this.outcome.id; }
  get media(): MediaStage | undefined { return this.sinks.media; }
  get log(): CallLog { return this.outcome; }

  onEnd(result: EndResult): void {
    const { observer } = this.sinks;
    const direction = this.outcome.direction;
    observer.callEnded(this.peer, direction);
    observer.callDuration?.(this.peer, direction, (performance.now() - this.answeredAt) / 1000);
    if (result === 'caller_bye' || result === 'callee_bye') this.outcome.finish(result);
    else this.outcome.finish(result, { endedBy: 'peergate', reason: result });
  }

  onRefreshFailed(leg: 'A' | 'B', err: unknown): void {
    this.outcome.info({ leg, err: String(err) }, 'session refresh failed');
  }

  /** For /admin/calls, built when asked (not kept per call). */
  info(): ActiveCall {
    return {
      id: this.id, call_id: dialogCallId(this.uas) ?? '', peer: this.peer, direction: this.outcome.direction,
      from: sideLabel(this.caller), to: sideLabel(this.callee), target: this.targetUri,
      startedAt: new Date(this.session.startedAt).toISOString(),
    };
  }

  /** Our own ending (drain deadline, shutdown): BYE on both legs with the Reason (RFC 3326). */
  hangup(h: Hangup): Promise<void> {
    this.outcome.info({ result: h }, 'ending call');
    return this.session.end(h);
  }
}
