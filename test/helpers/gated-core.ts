// The real UA core (parser, core, transaction layer) behind an overload gate, on a manual clock,
// with a stand-in app connection and transport that record what they are given: the unit tests of
// the gate and of the priority ingress drive it by hand.
import type { WireServer } from '../../src/engine/wire/server.js';
import { fakeApp, fakeTransport } from './core-fakes.js';
import { UaCore } from '../../src/engine/core/ua-core.js';
import { parseMessage } from '../../src/engine/message/parser.js';
import { OverloadGate, type OverloadOptions } from '../../src/engine/overload/index.js';
import { ManualClock } from './manual-clock.js';

export const LOCAL = { protocol: 'udp' as const, address: '127.0.0.1', port: 5070 };
export const PEER = { protocol: 'udp' as const, address: '127.0.0.1', port: 6000 };

/** `load`: what the gate reads of the node (default: the core's transactions and dialogs). */
export function gatedCore(opts: OverloadOptions, tryingMs = 0, load?: ConstructorParameters<typeof OverloadGate>[1]) {
  const clock = new ManualClock();
  const sent: string[] = [];
  const { app, frames } = fakeApp(1);
  let admission: unknown;
  const wire = {
    setHandler: () => {}, pickApp: () => app,
    get admission() { return admission; }, setAdmission: (a: unknown) => { admission = a; },
  } as unknown as WireServer;
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b), timers: { trying: tryingMs },
    transport: fakeTransport((_t, bytes) => { sent.push(bytes.toString('utf8')); return { ok: true, local: LOCAL, bytes: bytes.length }; }),
  });
  const gate = new OverloadGate(clock, load ?? { transactions: () => core.stats().serverTransactions, dialogs: () => core.dialogs.size }, opts);
  wire.setAdmission(gate as never);
  return { clock, sent, frames, app, core, gate };
}
