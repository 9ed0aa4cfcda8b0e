// New calls go to the B2BUA workers the primary hears from. A worker reports its event-loop delay
// every 0.1–0.3 s (src/engine/overload/worker-backlog.ts); one silent for 2 s is stuck or dying.
// Until the pool kills it (its hang timeout, pool.ts) it would take its round-robin share of new
// calls and answer none: the wire server passes over it while another worker is heard from.
import type { WorkerBacklog } from '../../engine/overload/worker-backlog.js';
import type { AppConnection } from '../../engine/wire/server.js';
import { workerIndexOfTags } from './hello.js';

export function heardWorkers(backlog: Pick<WorkerBacklog, 'stale'>): (app: AppConnection) => boolean {
  // A connection's tags are fixed once it authenticated: its worker index is read once.
  const indexOf = new WeakMap<AppConnection, number>();
  return (app) => {
    let i = indexOf.get(app);
    if (i === undefined) {
      i = workerIndexOfTags(app.tags) ?? -1;
      indexOf.set(app, i);
    }
    return i < 0 || !backlog.stale(i);
  };
}
