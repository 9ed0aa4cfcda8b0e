// What tests and benches give the UA core when they drive it without sockets: an app
// connection that keeps the frames the core sends it, as the text an app would read (leader
// CR LF message), and a transport that answers each send as `answer` says.
import type { CoreTransport } from '../../src/engine/core/context.js';
import type { SendResult, SendTarget } from '../../src/engine/transport/types.js';
import type { AppConnection } from '../../src/engine/wire/server.js';

export interface FakeApp {
  app: AppConnection;
  frames: string[];
}

/** `count`, when given, is called for each frame instead of keeping it (a bench that must not
 *  allocate for frames). */
export function fakeApp(id: number, count?: () => void): FakeApp {
  const frames: string[] = [];
  const app = count !== undefined
    ? { id, closed: false, send: count, sendWith: count }
    : { id, closed: false, send: (p: string) => { frames.push(p); }, sendWith: (leader: string, sip: Buffer) => { frames.push(`${leader}\r\n${sip.toString('utf8')}`); } };
  return { app: app as unknown as AppConnection, frames };
}

/** A transport whose sends `answer` decides (and may record); the result reaches the core
 *  later, as TransportLayer.sendThen's does. */
export function fakeTransport(answer: (target: SendTarget, bytes: Buffer) => SendResult): CoreTransport {
  return {
    sendThen(target, bytes, done) {
      const r = answer(target, bytes);
      if (done !== undefined) queueMicrotask(() => done(r));
    },
  };
}
