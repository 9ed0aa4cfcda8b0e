// What the primary and a B2BUA worker agree on at the worker's start, in a module of its own so
// that the primary (pool.ts) does not load the worker's B2BUA graph (drachtio-srf, the call flow).
import type { StoreHealth } from '../../store/types.js';

/** What the primary tells a worker when it starts (answer to `hello`). */
export interface WorkerHello {
  index: number;
  /** The node's id; the worker's store sessions are `<nodeId>/w<index>` (freed when it dies). */
  nodeId: string;
  policyPath: string;
  wire: { host: string; port: number; secret: string };
  storeKind: 'memory' | 'redis';
  storeHealth: StoreHealth;
  /** ng address of the rtpengine the primary spawned (media.rtpengine: spawn). */
  rtpengine?: string;
  /** Whether this worker probes the targets' health (one worker does: issue #18). */
  probe: boolean;
  /** Hops the prober has seen down so far (a worker that does not probe routes around them). */
  targetsDown: string[];
}

export function workerNodeId(nodeId: string, index: number): string { return `${nodeId}/w${index}`; }
