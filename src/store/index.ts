// The store a node uses, chosen by the policy: in memory (no store.redis), or Redis wrapped
// with the on_failure policy. Re-exports the store API for the rest of peergate.
import { MemoryStore } from './memory.js';
import { RedisStore, type RedisStoreOptions } from './redis.js';
import { ResilientStore, type OnFailure } from './resilient.js';
import type { Store } from './types.js';

export * from './types.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export { RedisStore, type RedisStoreOptions } from './redis.js';
export { ResilientStore, type OnFailure, type ResilientStoreOptions } from './resilient.js';
export { syncBans, type BanSink, type BanSync } from './bans.js';
export { banTarget, identityBanKey, normalizeFingerprint, type BanTarget } from './ban-key.js';
export { TokenBuckets } from './bucket.js';

/** The policy's `store.redis` section (src/policy/schema.ts RedisSchema), structurally. */
export interface RedisStoreConfig {
  url?: string;
  sentinel?: { sentinels: string[]; name: string; password?: string; db?: number };
  cluster?: { nodes: string[]; password?: string };
  on_failure?: OnFailure;
  timeout_ms?: number;
  key_prefix?: string;
}

export function redisOptionsFrom(cfg: RedisStoreConfig): RedisStoreOptions {
  return {
    url: cfg.url,
    sentinel: cfg.sentinel && { name: cfg.sentinel.name, sentinels: cfg.sentinel.sentinels, password: cfg.sentinel.password, db: cfg.sentinel.db },
    cluster: cfg.cluster,
    keyPrefix: cfg.key_prefix,
    timeoutMs: cfg.timeout_ms,
  };
}

/** MemoryStore without `redis`; otherwise RedisStore behind the on_failure policy. */
export function createStore(cfg: { redis?: RedisStoreConfig } | undefined): Store {
  if (cfg?.redis === undefined) return new MemoryStore();
  return new ResilientStore(new RedisStore(redisOptionsFrom(cfg.redis)), { onFailure: cfg.redis.on_failure ?? 'fail_open' });
}
