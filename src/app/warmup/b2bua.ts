// A B2BUA of the warm-up's own, in whichever process runs the node's B2BUA (a worker, or the
// primary with `workers: 1`): the same code as the node's (drachtio-srf, the call flow and its
// stages), so V8 compiles it for the real calls, with nothing of the node's state: its own
// policy, a memory store of its own for limits, no metrics observer, no call records, no probes.
import type { Logger } from 'pino';
import type { Policy } from '../../policy/schema.js';
import { MemoryStore } from '../../store/memory.js';
import { Limits } from '../../sbc/limits/index.js';
import { createIdentityStage } from '../../sbc/identity/stage.js';
import { B2bua } from '../../sbc/b2bua.js';
import { LocationRouting } from '../../routing/index.js';
import { prepareRoutes } from '../../sbc/routing.js';

/** pino's level value of `warn`. */
const WARN = 40;

export interface WarmupWire { host: string; port: number; secret: string; tags?: string[] }

export interface WarmupB2bua {
  /** Disconnect from the warm-up engine and drop everything the warm-up made. */
  detach(): Promise<void>;
}

export async function attachWarmupB2bua(policy: Policy, wire: WarmupWire, log: Logger): Promise<WarmupB2bua> {
  const store = new MemoryStore({ reportUp: false });
  const limits = new Limits({ store, nodeId: 'warm-up' });
  await limits.start();
  prepareRoutes(policy.routes);
  // Its calls are no calls of the node's: warnings and errors only, not a line per call.
  const quiet = log.child({ module: 'warm-up' }, { level: log.levelVal > WARN ? log.level : 'warn' });
  const b2bua = new B2bua({
    policy: () => policy,
    stages: { limits, identity: createIdentityStage({ seenOnce: (key, ttlMs) => store.seenOnce(key, ttlMs) }) },
    log: quiet,
    routing: new LocationRouting(quiet),
  });
  try {
    await b2bua.connect(wire);
  } catch (err) {
    await limits.close();
    throw err;
  }
  return {
    async detach() {
      b2bua.disconnect();
      await limits.close();
      await store.close();
    },
  };
}
