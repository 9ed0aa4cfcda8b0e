// Overload control of the engine (issue #18.3): detector, RFC 7339 feedback, the gate, metrics.
import type { Engine } from '../engine.js';
import { systemClock, type Clock } from '../transport/types.js';
import { OverloadGate, type OverloadOptions } from './gate.js';
import { reportGate } from './metrics.js';
import { loopUtilisation } from './utilisation.js';
import { UdpQueueProbe } from './socket-queue.js';
import type { WorkerBacklog } from './worker-backlog.js';
import { PriorityIngress } from './ingress.js';

export { OverloadGate, type OverloadOptions, type PriorityPredicate, type CoreLoad } from './gate.js';
export { OverloadDetector, LossThrottle, DEFAULT_THRESHOLDS, SHED_REASONS, type ShedReason, type OverloadThresholds } from './detector.js';
export { wantsLossFeedback, withFeedback, ocSeq } from './rfc7339.js';
export { OverloadSchema, overloadOptions, type OverloadPolicy } from './schema.js';
export { shedTotal } from './metrics.js';
export { UdpQueueProbe, procKey, type UdpQueueSample } from './socket-queue.js';
export { WorkerBacklog, LoopDelayReporter, WORKER_PROBE_MS, WORKER_REPORT_MS } from './worker-backlog.js';
export { PriorityIngress, DEFAULT_INGRESS, type IngressOptions, type IngressCounts } from './ingress.js';

/**
 * Put a gate in front of a running engine's new INVITEs and report it in /metrics.
 * Close the gate (gate.close()) before the engine; that also takes it off the wire server.
 * `workers`: the B2BUA worker processes' delays, when the apps are peergate's own workers.
 */
export function startOverloadControl(engine: Pick<Engine, 'wire' | 'core' | 'transports'>, opts: OverloadOptions = {}, clock: Clock = systemClock, workers?: WorkerBacklog): OverloadGate {
  const probe = new UdpQueueProbe(engine.transports.udpReceiveBuffers());
  const udp = engine.transports.stats.udp;
  // `received` counts what passed the shield, unparsable datagrams included.
  const junkNow = () => ({ received: udp.received, dropped: udp.shieldDropped, unparsable: engine.core.counters.parseErrors });
  let seen = junkNow();
  const ownUtilisation = loopUtilisation();
  // Calls in progress first (opts.ingress): initial INVITEs wait their turn in user space.
  const ingress = opts.ingress ? new PriorityIngress(clock, opts.ingress) : undefined;
  const gate = new OverloadGate(clock, {
    // A backlog made mostly of junk (datagrams the shield drops unread, from a source that is no
    // peer, or that do not parse, even from a peer's address) is not one that refusing INVITEs
    // shortens: it would only refuse the peers' calls.
    receiveQueue: () => {
      const now = junkNow();
      const unparsable = now.unparsable - seen.unparsable;
      const flood = now.dropped - seen.dropped + unparsable > now.received - seen.received - unparsable;
      seen = now;
      return flood ? undefined : probe.read();
    },
    chargedBytesRead: () => udp.chargedBytes,
    transactions: () => { const s = engine.core.stats(); return s.serverTransactions + s.clientTransactions; },
    dialogs: () => engine.core.dialogs.size,
    ...(workers ? { workerLag: (ownLagMs: number) => workers.lagMs(ownLagMs) } : {}),
    utilisation: (ownLagMs: number) => Math.max(ownUtilisation(), workers?.utilisation(ownLagMs) ?? 0),
    detach: () => { if (ingress) engine.transports.setUdpIngress(undefined); engine.wire.setAdmission(undefined); reportGate(undefined); },
  }, opts);
  engine.wire.setAdmission(gate);
  if (ingress) engine.transports.setUdpIngress(ingress);
  reportGate(gate);
  return gate;
}
