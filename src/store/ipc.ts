// The Store over a message channel (worker model, src/app/workers): the primary process owns
// the one real store (memory, or Redis behind its on_failure policy) and serves it; each B2BUA
// worker uses a StoreClient with the same `Store` interface. So a node's limits and bans stay
// exact across its workers without Redis: every admit/acquire/release runs, atomically, in the
// primary's store, never in a per-worker copy that would multiply the limits by N.
//
// The transport is not this module's concern: the client is given `call(op, args)` (a
// request/response exchange) and is told of ban events; the server side is `serveStore`, a
// dispatcher from (op, args) to the store. Everything crossing is plain JSON data.
import { StoreUnavailableError } from './types.js';
import type {
  AcquireResult, AdmitResult, BanEntry, BanEvent, BanListener, RateSpec, SessionScope, Store, StoreHealth,
  StrikePolicy, StrikeResult, TakeResult,
} from './types.js';

/** The operations that cross the channel (every Store method but health, onBanChange, close). */
export const STORE_OPS = [
  'take', 'acquire', 'admit', 'release', 'keepAlive', 'reconcileOnStart', 'count', 'seenOnce',
  'ban', 'unban', 'listBans', 'strike',
] as const;
export type StoreOp = (typeof STORE_OPS)[number];

/** How a failure crosses the channel: StoreUnavailableError keeps its meaning (on_failure applies). */
export interface StoreFailure { unavailable: boolean; message: string }

/** A request/response exchange with the store's owner; rejects with a StoreFailure or an Error. */
export type StoreCall = (op: StoreOp, args: unknown[]) => Promise<unknown>;

export interface StoreClientOptions {
  kind: 'memory' | 'redis';
  call: StoreCall;
}

/** A Store whose every operation runs in another process's store. */
export class StoreClient implements Store {
  readonly kind: 'memory' | 'redis';
  private readonly listeners = new Set<BanListener>();
  private healthNow: StoreHealth;
  private closed = false;

  constructor(private readonly opts: StoreClientOptions) {
    this.kind = opts.kind;
    this.healthNow = { state: 'up', kind: opts.kind, since: Date.now() };
  }

  private async run<T>(op: StoreOp, args: unknown[]): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('store client closed');
    try {
      return await this.opts.call(op, args) as T;
    } catch (err) {
      const f = err as Partial<StoreFailure> & Error;
      // A channel that failed (the primary gone, a timeout) is the store being unavailable.
      if (f.unavailable !== false) throw new StoreUnavailableError(f.message ?? String(err));
      throw new Error(f.message);
    }
  }

  take(key: string, ratePerS: number, burst: number): Promise<TakeResult> { return this.run('take', [key, ratePerS, burst]); }
  acquire(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AcquireResult> {
    return this.run('acquire', [scopes, sessionId, nodeId, ttlMs]);
  }
  admit(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult> {
    return this.run('admit', [rate ?? null, scopes, sessionId, nodeId, ttlMs]);
  }
  release(sessionId: string): Promise<boolean> { return this.run('release', [sessionId]); }
  keepAlive(nodeId: string, ttlMs: number): Promise<number> { return this.run('keepAlive', [nodeId, ttlMs]); }
  reconcileOnStart(nodeId: string): Promise<number> { return this.run('reconcileOnStart', [nodeId]); }
  count(scope: string): Promise<number> { return this.run('count', [scope]); }
  seenOnce(key: string, ttlMs: number): Promise<boolean> { return this.run('seenOnce', [key, ttlMs]); }
  ban(address: string, ttlMs: number, reason: string): Promise<void> { return this.run('ban', [address, ttlMs, reason]); }
  unban(address: string): Promise<boolean> { return this.run('unban', [address]); }
  listBans(): Promise<BanEntry[]> { return this.run('listBans', []); }
  strike(source: string, kind: string, policy: StrikePolicy): Promise<StrikeResult> { return this.run('strike', [source, kind, policy]); }

  onBanChange(listener: BanListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** A ban-list change the owner published. */
  deliverBanEvent(event: BanEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** The owner's store health, as last reported. */
  setHealth(h: StoreHealth): void { this.healthNow = h; }
  health(): StoreHealth { return this.healthNow; }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }
}

/**
 * The owner's side: run `op` on `store`. Unknown ops and malformed arguments reject (the
 * channel is internal, but a bug must not crash the primary). A StoreUnavailableError is
 * flagged so that the client raises the same error.
 */
export async function serveStore(store: Store, op: string, args: unknown): Promise<unknown> {
  if (!(STORE_OPS as readonly string[]).includes(op) || !Array.isArray(args)) {
    throw { unavailable: false, message: `store: unknown operation ${op}` } satisfies StoreFailure;
  }
  const a = args as [never, never, never, never, never];
  try {
    switch (op as StoreOp) {
      case 'take': return await store.take(a[0], a[1], a[2]);
      case 'acquire': return await store.acquire(a[0], a[1], a[2], a[3]);
      case 'admit': return await store.admit(a[0] ?? undefined, a[1], a[2], a[3], a[4]);
      case 'release': return await store.release(a[0]);
      case 'keepAlive': return await store.keepAlive(a[0], a[1]);
      case 'reconcileOnStart': return await store.reconcileOnStart(a[0]);
      case 'count': return await store.count(a[0]);
      case 'seenOnce': return await store.seenOnce(a[0], a[1]);
      case 'ban': return await store.ban(a[0], a[1], a[2]);
      case 'unban': return await store.unban(a[0]);
      case 'listBans': return await store.listBans();
      case 'strike': return await store.strike(a[0], a[1], a[2]);
    }
  } catch (err) {
    throw { unavailable: err instanceof StoreUnavailableError, message: (err as Error).message } satisfies StoreFailure;
  }
}
