// SIP capture: every message the transports send or receive (both legs; TLS as plaintext, since
// the tap sits above TLS) goes to a HEPv3 collector over UDP, tagged with the capture id and the
// message's Call-ID as correlation id. The tap runs on the transport's hot path, so it only
// queues a reference; encoding and sending happen on the next turn of the event loop. The queue
// and the datagrams in flight are bounded: past them messages are dropped and counted, never
// waited for. Capture never changes what peergate sends or when.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { counter } from '../../ops/metrics.js';
import type { Endpoint } from '../transport/types.js';
import { callIdOf, encodeHep3 } from './hep.js';
import type { CapturePolicy, HepPolicy } from './schema.js';

export { encodeHep3, callIdOf, HEP_CHUNK, HEP3_MAGIC } from './hep.js';
export type { HepMessage } from './hep.js';

/** Messages offered to the collector: sent, dropped (queue full, unencodable) or failed (send error). */
export const capturePacketsTotal = counter('peergate_capture_packets_total', 'SIP messages captured to HEP by result', ['result']);

/** What the transport layer tells of each SIP message while `on` (a collector is configured, so
 *  nothing is stamped otherwise): `in` = received from `remote`, `out` = sent to it; `atMs` = when
 *  it was read or handed over (clock.ts: wall-clock ms, µs fraction). */
export interface CaptureTap {
  readonly on: boolean;
  record(direction: 'in' | 'out', data: Buffer, local: Endpoint, remote: Endpoint, atMs: number): void;
}

export interface CaptureLogger { warn(obj: object, msg: string): void }

interface Pending { direction: 'in' | 'out'; data: Buffer; local: Endpoint; remote: Endpoint; timeMs: number }

export interface HepCapture {
  /** Give this to the engine's transports (`engine.transports.setCapture(capture.tap)`). */
  readonly tap: CaptureTap;
  /** Apply a reloaded policy's `capture` (start, stop or retarget). */
  configure(next: CapturePolicy | undefined): void;
  close(): Promise<void>;
}

/** HEP capture per `policy.hep`; with no `hep` the tap does nothing until a reload sets one. */
export function createHepCapture(policy: CapturePolicy | undefined, opts: { log?: CaptureLogger } = {}): HepCapture {
  let cfg: HepPolicy | undefined;
  let socket: Socket | undefined;
  let queue: Pending[] = [];
  let scheduled = false;
  let inFlight = 0;
  let lastWarn = 0;
  let closed = false;

  const warn = (obj: object, msg: string): void => {
    const now = Date.now();
    if (now - lastWarn < 10_000) return;
    lastWarn = now;
    opts.log?.warn(obj, msg);
  };

  const openSocket = (c: HepPolicy): Socket => {
    const s = createSocket(isIPv6(c.address) ? 'udp6' : 'udp4');
    s.on('error', (err) => warn({ err: err.message }, 'HEP capture socket error'));
    // The capture socket must never keep the process alive on its own.
    s.unref();
    return s;
  };

  const flush = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const c = cfg;
    const s = socket;
    if (!c || !s) return;
    for (const p of batch) {
      if (inFlight >= c.queue_max) { capturePacketsTotal.inc({ result: 'dropped' }); continue; }
      const [src, dst] = p.direction === 'in' ? [p.remote, p.local] : [p.local, p.remote];
      const correlationId = callIdOf(p.data);
      const pkt = encodeHep3({
        transport: p.remote.protocol, src, dst, timeMs: p.timeMs, captureId: c.capture_id, payload: p.data,
        ...(c.password ? { authKey: c.password } : {}), ...(correlationId ? { correlationId } : {}),
      });
      if (!pkt) { capturePacketsTotal.inc({ result: 'dropped' }); continue; }
      inFlight++;
      s.send(pkt, c.port, c.address, (err) => {
        inFlight--;
        if (err) { capturePacketsTotal.inc({ result: 'failed' }); warn({ err: err.message, collector: `${c.address}:${c.port}` }, 'HEP capture send failed'); }
        else capturePacketsTotal.inc({ result: 'sent' });
      });
    }
  };

  const tap: CaptureTap = {
    get on() { return cfg !== undefined; },
    record(direction, data, local, remote, atMs) {
      if (!cfg) return;
      if (queue.length >= cfg.queue_max) { capturePacketsTotal.inc({ result: 'dropped' }); return; }
      queue.push({ direction, data, local, remote, timeMs: atMs });
      if (!scheduled) { scheduled = true; setImmediate(flush); }
    },
  };

  const configure = (next: CapturePolicy | undefined): void => {
    if (closed) return;
    const n = next?.hep;
    if (cfg && n && cfg.address === n.address && cfg.port === n.port && cfg.capture_id === n.capture_id && cfg.password === n.password && cfg.queue_max === n.queue_max) return;
    const old = socket;
    socket = n ? openSocket(n) : undefined;
    cfg = n;
    // Datagrams already handed to the old socket finish; nothing waits for them.
    if (old) setTimeout(() => { try { old.close(); } catch { /* closed */ } }, 1000).unref();
  };

  configure(policy);
  return {
    tap,
    configure,
    async close() {
      if (closed) return;
      flush();
      closed = true;
      // Let the datagrams already handed over leave (bounded: 500 ms).
      for (let i = 0; i < 50 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
      cfg = undefined;
      const s = socket;
      socket = undefined;
      queue = [];
      if (s) await new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } });
    },
  };
}
