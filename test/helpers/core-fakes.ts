// An app connection for tests and benches that drive the UA core without a wire socket: it
// keeps the frames the core sends it, as the text an app would read (leader CR LF message).
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
