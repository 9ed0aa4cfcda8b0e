// How one INVITE ends, exactly once: its result (calls_total{result}), its call record, the
// release of its limits slot and of its media, and the call registry. A small object rather
// than a closure over the call flow: an established call keeps this for its whole life, and a
// closure would keep the setup scope with it (the INVITE, its response, the B-leg attempt,
// SDP strings: issue #18 item 5).
import type { Logger } from 'pino';
import type { CallRegistry } from './calls.js';
import type { CallEnd, CallTrace } from './cdr/events.js';
import type { MediaStage } from './stages.js';

/** What every call's outcome reports to: one object shared by the B2BUA's calls. */
export interface OutcomeSinks {
  observer: { callFinished(peer: string, direction: 'inbound' | 'outbound', result: string): void };
  calls: CallRegistry;
  media: MediaStage | undefined;
}

export type EndDetail = Omit<CallEnd, 'result' | 'peer'>;

/** Log lines of one call (fields `call` and `call_id` added), without a pino child per call:
 *  a child's bindings text (a concatenation tree, ≈ 400 B) would live as long as the call. */
export interface CallLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class CallOutcome implements CallLog {
  /** The peer the call is counted for: the sender, or for a core call the first peer routed to. */
  peer: string;
  /** The call's limits slot (set once the limits stage admitted it); released when it ends. */
  slot: { release(): unknown } | undefined;
  private ended = false;

  constructor(
    private readonly sinks: OutcomeSinks,
    readonly id: string,
    readonly direction: 'inbound' | 'outbound',
    peer: string,
    private readonly trace: CallTrace,
    /** The process logger (not a child: see CallLog) and the caller's Call-ID, a flat copy. */
    private readonly base: Logger,
    readonly callerCallId: string,
  ) {
    this.peer = peer;
  }

  info(obj: object, msg: string): void { this.base.info({ call: this.id, call_id: this.callerCallId, ...obj }, msg); }
  warn(obj: object, msg: string): void { this.base.warn({ call: this.id, call_id: this.callerCallId, ...obj }, msg); }

  /** End the INVITE with `result`; `end` says how (status, who, why) for the call record. */
  finish(result: string, end: EndDetail = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.trace.ended({ ...end, result, peer: this.peer });
    const slot = this.slot;
    this.slot = undefined;
    slot?.release();
    void this.sinks.media?.end(this.id).catch((err: unknown) => this.warn({ err: String(err) }, 'media end failed'));
    this.sinks.calls.end(this.id);
    this.sinks.observer.callFinished(this.peer, this.direction, result);
    this.info({ result }, 'call ended');
  }
}
