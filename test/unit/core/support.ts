// Test support for the UA core without sockets: the transport is a recorder, an app is an
// object that collects the frames the core sends it, the wire server a router with a fixed
// route table, and the clock moves only when the test says so (the transaction tests' FakeClock).
import type { SendTarget } from '../../../src/engine/transport/types.js';
import type { WireServer } from '../../../src/engine/wire/server.js';
import { fakeApp, fakeTransport } from '../../helpers/core-fakes.js';
import { UaCore } from '../../../src/engine/core/ua-core.js';
import { parseMessage } from '../../../src/engine/message/parser.js';
import { FakeClock } from '../transaction/support.js';

export const LOCAL = { protocol: 'udp' as const, address: '127.0.0.1', port: 5070 };
export const PEER = { protocol: 'udp' as const, address: '127.0.0.1', port: 6000 };

export interface Sent { at: number; text: string; target: SendTarget }

export function coreHarness(opts: { routes?: string[]; cdrs?: boolean; sendOk?: (target: SendTarget) => boolean; tryingDelayMs?: number } = {}) {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  const { app, frames } = fakeApp(1);
  const routes = new Set(opts.routes ?? []);
  const wire = { setHandler: () => {}, pickApp: (m: string) => (routes.has(m.toLowerCase()) ? app : undefined) } as unknown as WireServer;
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b), cdrs: opts.cdrs, timers: { trying: opts.tryingDelayMs ?? 0 },
    transport: fakeTransport((target, bytes) => {
      sent.push({ at: clock.now(), text: bytes.toString('utf8'), target });
      if (opts.sendOk && !opts.sendOk(target)) return { ok: false, reason: 'refused' };
      return { ok: true, local: LOCAL, bytes: bytes.length };
    }),
  });
  /** A SIP message from the peer. */
  const feed = (text: string) => core.onPacket({ data: Buffer.from(text), source: PEER, local: LOCAL });
  /** A `sip` frame from the app: ids are txnId and dialogId (spec §4.5). */
  const fromApp = (msgId: string, txnId: string, dialogId: string, sip: string) => core.onSip(app, [msgId, 'sip', txnId, dialogId], sip);
  return { clock, sent, core, app, frames, feed, fromApp };
}

/** Token `i` of a frame's leader (split on `|`). */
export const token = (frame: string, i: number): string => frame.split('\r\n')[0]!.split('|')[i] ?? '';

/** First lines of what went to the network. */
export const startLines = (sent: Sent[]): string[] => sent.map((s) => s.text.split('\r\n')[0]!);
