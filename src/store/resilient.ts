// ResilientStore: applies the policy's store.redis.on_failure when the shared store cannot
// answer. fail_open: serve the call from a local MemoryStore (limits hold per node, not per
// pool, until Redis returns). fail_closed: throw StoreUnavailableError (the limits stage
// answers 503). Recovery needs no restart: the shared store is tried again as soon as its
// connection is ready, and at least every `probeMs` while it is down.
import { MemoryStore } from './memory.js';
import { storeFallbacks } from './metrics.js';
import {
  StoreUnavailableError,
  type AcquireResult, type AdmitResult, type RateSpec, type BanEntry, type BanListener, type SessionScope, type Store, type StoreHealth,
  type StrikePolicy, type StrikeResult, type TakeResult,
} from './types.js';

export type OnFailure = 'fail_open' | 'fail_closed';

export interface ResilientStoreOptions {
  onFailure: OnFailure;
  /** While the shared store is down, skip it (no per-call wait) for this long after a failure. */
  probeMs?: number;
  /** The local store used when failing open (injectable for tests). */
  local?: MemoryStore;
}

export class ResilientStore implements Store {
  readonly kind: 'memory' | 'redis';
  readonly local: MemoryStore;
  private readonly onFailure: OnFailure;
  private readonly probeMs: number;
  private lastFailure = -Infinity;

  constructor(readonly shared: Store, opts: ResilientStoreOptions) {
    this.kind = shared.kind;
    this.onFailure = opts.onFailure;
    this.probeMs = opts.probeMs ?? 500;
    this.local = opts.local ?? new MemoryStore({ reportUp: false });
  }

  /**
   * Run `op` on the shared store; when it is unavailable apply the policy. While the shared
   * store is down and was tried within probeMs, go straight to the fallback: a hung Redis
   * must not add its timeout to every call setup.
   */
  private async call<T>(name: string, op: (s: Store) => Promise<T>): Promise<T> {
    const skip = this.shared.health().state === 'down' && Date.now() - this.lastFailure < this.probeMs;
    if (!skip) {
      try {
        return await op(this.shared);
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) throw e;
        this.lastFailure = Date.now();
        if (this.onFailure === 'fail_closed') throw e;
      }
    } else if (this.onFailure === 'fail_closed') {
      throw new StoreUnavailableError(`shared store down: ${this.shared.health().lastError ?? 'unknown'}`);
    }
    storeFallbacks.inc({ op: name });
    return op(this.local);
  }

  take(key: string, ratePerS: number, burst: number): Promise<TakeResult> {
    return this.call('take', (s) => s.take(key, ratePerS, burst));
  }

  acquire(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AcquireResult> {
    return this.call('acquire', (s) => s.acquire(scopes, sessionId, nodeId, ttlMs));
  }

  admit(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult> {
    return this.call('admit', (s) => s.admit(rate, scopes, sessionId, nodeId, ttlMs));
  }

  async release(sessionId: string): Promise<boolean> {
    // A session taken locally while Redis was down is released where it was taken (and in
    // Redis too: a node restoring its sessions after recovery may have put it there).
    if (this.local.has(sessionId)) {
      await this.shared.release(sessionId).catch(() => false);
      return this.local.release(sessionId);
    }
    try {
      return await this.shared.release(sessionId);
    } catch (e) {
      if (!(e instanceof StoreUnavailableError)) throw e;
      // Its entry expires by itself (nobody keeps it alive once it is gone from the node).
      return false;
    }
  }

  async keepAlive(nodeId: string, ttlMs: number): Promise<number> {
    const local = await this.local.keepAlive(nodeId, ttlMs);
    try {
      // Only what the shared store knows: sessions kept locally while it was down (including
      // those the limits stage re-acquired then) must read as missing, so they are put back
      // in it and the pool counts them again.
      return await this.shared.keepAlive(nodeId, ttlMs);
    } catch (e) {
      if (!(e instanceof StoreUnavailableError)) throw e;
      return local;
    }
  }

  async reconcileOnStart(nodeId: string): Promise<number> {
    return (await this.local.reconcileOnStart(nodeId)) + (await this.shared.reconcileOnStart(nodeId));
  }

  async count(scope: string): Promise<number> {
    return this.call('count', (s) => s.count(scope));
  }

  seenOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.call('seen_once', (s) => s.seenOnce(key, ttlMs));
  }

  ban(address: string, ttlMs: number, reason: string): Promise<void> {
    return this.call('ban', (s) => s.ban(address, ttlMs, reason));
  }

  async unban(address: string): Promise<boolean> {
    const local = await this.local.unban(address);
    try {
      return (await this.shared.unban(address)) || local;
    } catch (e) {
      if (!(e instanceof StoreUnavailableError) || this.onFailure === 'fail_closed') throw e;
      return local;
    }
  }

  async listBans(): Promise<BanEntry[]> {
    const local = await this.local.listBans();
    let shared: BanEntry[] = [];
    try {
      shared = await this.shared.listBans();
    } catch (e) {
      if (!(e instanceof StoreUnavailableError) || this.onFailure === 'fail_closed') throw e;
    }
    const seen = new Set(shared.map((b) => b.address));
    return [...shared, ...local.filter((b) => !seen.has(b.address))];
  }

  onBanChange(listener: BanListener): () => void {
    const a = this.shared.onBanChange(listener);
    const b = this.local.onBanChange(listener);
    return () => { a(); b(); };
  }

  strike(source: string, kind: string, policy: StrikePolicy): Promise<StrikeResult> {
    return this.call('strike', (s) => s.strike(source, kind, policy));
  }

  health(): StoreHealth { return this.shared.health(); }

  async close(): Promise<void> {
    await this.shared.close();
    await this.local.close();
  }
}
