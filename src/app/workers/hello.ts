// What the primary and a B2BUA worker agree on at the worker's start, in a module of its own so
// that the primary (pool.ts) does not load the worker's B2BUA graph (drachtio-srf, the call flow).
import type { StoreHealth } from '../../store/types.js';
import type { PolicyProblem } from '../subsystem.js';

/** What the primary tells a worker when it starts (answer to `hello`). */
export interface WorkerHello {
  index: number;
  /** The node's id; the worker's store sessions are `<nodeId>/w<index>` (freed when it dies). */
  nodeId: string;
  /**
   * The frame on the worker's policy socket (policy-pipe.ts) that holds the policy the primary
   * has in force, validated there (JSON text: plain data; the files it names are absolute paths,
   * resolved by the loader). A worker never reads the policy file itself: one replaced while the
   * file on disk holds an edit the primary refused (or has not applied yet) runs what the rest
   * of the node runs.
   */
  policySeq: number;
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

/** A worker's answer to `reload`: applied, or refused with what its own checks found. */
export type WorkerReload = { ok: true; restart_needed: string[] } | { ok: false; problems: PolicyProblem[] };

export function workerNodeId(nodeId: string, index: number): string { return `${nodeId}/w${index}`; }

/** The drachtio-srf tag a worker connects to the engine with (`authenticate|secret|tags`), by
 *  which the primary knows which worker an INVITE goes to (pre-admission, src/app/preadmit.ts).
 *  drachtio-srf allows [A-Za-z0-9-_+@:] in a tag. */
export function workerTag(index: number): string { return `peergate-worker:${index}`; }

/** The worker index a connection's tags name; undefined for any other app. */
export function workerIndexOfTags(tags: readonly string[]): number | undefined {
  for (const t of tags) {
    if (!t.startsWith('peergate-worker:')) continue;
    const n = Number(t.slice('peergate-worker:'.length));
    if (Number.isInteger(n) && n >= 0 && n < 1024) return n;
  }
  return undefined;
}
