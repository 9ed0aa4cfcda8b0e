// Call events and the CDRs made of them (wire spec §6: `cdr:attempt`, `cdr:start`, `cdr:stop`
// frames for apps that routed them). The core reports what happens to calls through a
// CallObserver; CdrReporter is the observer that turns those events into frames. With CDRs off
// the core has no observer, and the text of a message is not even built for it.
import type { AppConnection, WireServer } from '../wire/server.js';
import { cdrPayload } from '../wire/leaders.js';

export type CallEndReason = 'normal-release' | 'call-canceled' | 'call-rejected';

export interface CallObserver {
  /** A network INVITE outside a dialog arrived (`text` as passed to the app). */
  attempt(text: string): void;
  /** A call was answered: a 2xx from the far end to our INVITE ('uac'), or the app's 2xx to an inbound INVITE ('uas'). */
  answered(side: 'uac' | 'uas', text: string): void;
  /** A call ended or failed; `by` says which side's message did it. */
  ended(by: 'network' | 'application', reason: CallEndReason, text: string): void;
}

export class CdrReporter implements CallObserver {
  private readonly wire: WireServer;
  private readonly deliver: (app: AppConnection, payload: string) => void;

  constructor(wire: WireServer, deliver: (app: AppConnection, payload: string) => void) {
    this.wire = wire;
    this.deliver = deliver;
  }

  attempt(text: string): void { this.emit('attempt', 'network', undefined, text); }

  answered(side: 'uac' | 'uas', text: string): void {
    this.emit('start', side === 'uac' ? 'network' : 'application', side, text);
  }

  ended(by: 'network' | 'application', reason: CallEndReason, text: string): void { this.emit('stop', by, reason, text); }

  private emit(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', extra: string | undefined, sip: string): void {
    const app = this.wire.pickApp(`cdr:${kind}`);
    if (app) this.deliver(app, cdrPayload(kind, source, extra, sip));
  }
}
