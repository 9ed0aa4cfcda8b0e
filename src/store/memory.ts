// MemoryStore: the single-node store (and the local fallback when Redis is down with
// on_failure: fail_open). Same semantics as RedisStore; JavaScript's single thread makes each
// operation atomic. The clock is injectable so unit tests can move time.
import { TokenBuckets } from './bucket.js';
import { storeUp } from './metrics.js';
import type {
  AcquireResult, AdmitResult, BanEntry, RateSpec, BanEvent, BanListener, SessionScope, Store, StoreHealth,
  StrikePolicy, StrikeResult, TakeResult,
} from './types.js';

interface Session { node: string; scopes: string[]; expiresAt: number }
interface Ban { reason: string; expiresAt: number }
interface Strikes { times: number[]; windowMs: number }

export interface MemoryStoreOptions {
  /** Clock in ms; defaults to Date.now. */
  now?: () => number;
  /** Bound on rate-limit buckets kept (spoofed floods). */
  maxBuckets?: number;
  /** Bound on replay-cache entries; past it the oldest are dropped. */
  maxReplayKeys?: number;
  /** Set peergate_store_up{kind="memory"} (false for the fail-open fallback behind Redis). */
  reportUp?: boolean;
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly now: () => number;
  private readonly buckets: TokenBuckets;
  /** admit()'s call-rate buckets: a namespace apart from take()'s, as on Redis. */
  private readonly rates: TokenBuckets;
  private readonly sessions = new Map<string, Session>();
  private readonly scopes = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, Set<string>>();
  /** Lower bound of the earliest session expiry: no sweep is needed before it. */
  private nextExpiry = Infinity;
  private readonly replay = new Map<string, number>();
  private readonly maxReplayKeys: number;
  private nextReplaySweep = 0;
  private readonly bans = new Map<string, Ban>();
  private readonly strikes = new Map<string, Strikes>();
  private nextStrikeSweep = 0;
  private readonly listeners = new Set<BanListener>();
  private readonly since: number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.buckets = new TokenBuckets(opts.maxBuckets ?? 100_000);
    this.rates = new TokenBuckets(opts.maxBuckets ?? 100_000);
    this.maxReplayKeys = opts.maxReplayKeys ?? 1_000_000;
    this.since = this.now();
    if (opts.reportUp !== false) storeUp.set({ kind: 'memory' }, 1);
  }

  async take(key: string, ratePerS: number, burst: number): Promise<TakeResult> {
    return this.takeSync(key, ratePerS, burst);
  }

  /** Synchronous take, for callers on a hot path that know the store is local. */
  takeSync(key: string, ratePerS: number, burst: number): TakeResult {
    const wait = this.buckets.take(key, ratePerS, burst, this.now());
    return wait === 0 ? { allowed: true } : { allowed: false, retryAfterMs: wait };
  }

  async admit(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult> {
    return this.admitNow(rate, scopes, sessionId, nodeId, ttlMs);
  }

  /** admit(), synchronously: for the engine's pre-admission of a new INVITE (src/app/preadmit.ts),
   *  which must not wait (an INVITE held back could be overtaken by its own CANCEL). */
  admitNow(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): AdmitResult {
    if (rate !== undefined) {
      const wait = this.rates.take(rate.key, rate.ratePerS, rate.burst, this.now());
      if (wait !== 0) return { ok: false, rateLimited: true, retryAfterMs: wait };
    }
    const r = this.acquireSync(scopes, sessionId, nodeId, ttlMs);
    return r.ok ? r : { ...r, rateLimited: false };
  }

  async acquire(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AcquireResult> {
    return this.acquireSync(scopes, sessionId, nodeId, ttlMs);
  }

  private acquireSync(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): AcquireResult {
    const now = this.now();
    this.sweepSessions(now);
    const held = this.sessions.get(sessionId);
    if (held !== undefined) return { ok: true };
    for (const s of scopes) {
      if (s.limit === undefined) continue;
      const count = this.scopes.get(s.scope)?.size ?? 0;
      if (count >= s.limit) return { ok: false, scope: s.scope, limit: s.limit, count };
    }
    const expiresAt = now + ttlMs;
    const names = scopes.map((s) => s.scope);
    this.sessions.set(sessionId, { node: nodeId, scopes: names, expiresAt });
    for (const name of names) setOf(this.scopes, name).add(sessionId);
    setOf(this.nodes, nodeId).add(sessionId);
    if (expiresAt < this.nextExpiry) this.nextExpiry = expiresAt;
    return { ok: true };
  }

  async release(sessionId: string): Promise<boolean> {
    this.sweepSessions(this.now());
    return this.drop(sessionId);
  }

  async keepAlive(nodeId: string, ttlMs: number): Promise<number> {
    const now = this.now();
    this.sweepSessions(now);
    const ids = this.nodes.get(nodeId);
    if (ids === undefined) return 0;
    const expiresAt = now + ttlMs;
    for (const id of ids) {
      const s = this.sessions.get(id);
      if (s !== undefined) s.expiresAt = expiresAt;
    }
    return ids.size;
  }

  async reconcileOnStart(nodeId: string): Promise<number> {
    const ids = this.nodes.get(nodeId);
    if (ids === undefined) return 0;
    let n = 0;
    for (const id of [...ids]) if (this.drop(id)) n++;
    this.nodes.delete(nodeId);
    return n;
  }

  async count(scope: string): Promise<number> {
    this.sweepSessions(this.now());
    return this.scopes.get(scope)?.size ?? 0;
  }

  /** Sessions this node holds locally (used by the fail-open fallback to know what is whose). */
  has(sessionId: string): boolean {
    const s = this.sessions.get(sessionId);
    return s !== undefined && s.expiresAt > this.now();
  }

  async seenOnce(key: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    if (now >= this.nextReplaySweep || this.replay.size >= this.maxReplayKeys) this.sweepReplay(now);
    const exp = this.replay.get(key);
    if (exp !== undefined && exp > now) return false;
    // Re-insert so Map order stays roughly by insertion time for the size-bound eviction.
    this.replay.delete(key);
    this.replay.set(key, now + ttlMs);
    return true;
  }

  async ban(address: string, ttlMs: number, reason: string): Promise<void> {
    this.bans.set(address, { reason, expiresAt: this.now() + ttlMs });
    this.emit({ type: 'ban', address, ttlMs, reason });
  }

  async unban(address: string): Promise<boolean> {
    const b = this.bans.get(address);
    this.bans.delete(address);
    const had = b !== undefined && b.expiresAt > this.now();
    this.emit({ type: 'unban', address });
    return had;
  }

  async listBans(): Promise<BanEntry[]> {
    const now = this.now();
    const out: BanEntry[] = [];
    for (const [address, b] of this.bans) {
      if (b.expiresAt <= now) { this.bans.delete(address); continue; }
      out.push({ address, reason: b.reason, ttlMs: b.expiresAt - now });
    }
    return out;
  }

  onBanChange(listener: BanListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async strike(source: string, kind: string, policy: StrikePolicy): Promise<StrikeResult> {
    const now = this.now();
    if (now >= this.nextStrikeSweep) this.sweepStrikes(now);
    let s = this.strikes.get(source);
    if (s === undefined) { s = { times: [], windowMs: policy.windowMs }; this.strikes.set(source, s); }
    s.windowMs = policy.windowMs;
    const from = now - policy.windowMs;
    let i = 0;
    while (i < s.times.length && s.times[i]! <= from) i++;
    if (i > 0) s.times.splice(0, i);
    s.times.push(now);
    const count = s.times.length;
    if (count >= policy.threshold) {
      this.strikes.delete(source);
      await this.ban(source, policy.banMs, `strikes: ${count} in ${Math.round(policy.windowMs / 1000)} s, last ${kind}`);
      return { count, banned: true };
    }
    return { count, banned: false };
  }

  health(): StoreHealth { return { state: 'up', kind: 'memory', since: this.since }; }

  async close(): Promise<void> { this.listeners.clear(); }

  private emit(e: BanEvent): void {
    for (const l of this.listeners) {
      try { l(e); } catch { /* a listener's bug must not break the store */ }
    }
  }

  private drop(sessionId: string): boolean {
    const s = this.sessions.get(sessionId);
    if (s === undefined) return false;
    this.sessions.delete(sessionId);
    for (const name of s.scopes) {
      const set = this.scopes.get(name);
      if (set === undefined) continue;
      set.delete(sessionId);
      if (set.size === 0) this.scopes.delete(name);
    }
    const n = this.nodes.get(s.node);
    if (n !== undefined) { n.delete(sessionId); if (n.size === 0) this.nodes.delete(s.node); }
    return true;
  }

  /** Expire sessions; O(n) but only when the earliest expiry may have passed. */
  private sweepSessions(now: number): void {
    if (now < this.nextExpiry) return;
    let next = Infinity;
    for (const [id, s] of this.sessions) {
      if (s.expiresAt <= now) this.drop(id);
      else if (s.expiresAt < next) next = s.expiresAt;
    }
    this.nextExpiry = next;
  }

  private sweepReplay(now: number): void {
    for (const [k, exp] of this.replay) if (exp <= now) this.replay.delete(k);
    if (this.replay.size >= this.maxReplayKeys) {
      let drop = Math.ceil(this.maxReplayKeys / 10);
      for (const k of this.replay.keys()) { if (drop-- <= 0) break; this.replay.delete(k); }
    }
    this.nextReplaySweep = now + 1000;
  }

  private sweepStrikes(now: number): void {
    for (const [k, s] of this.strikes) {
      const last = s.times[s.times.length - 1];
      if (last === undefined || last <= now - s.windowMs) this.strikes.delete(k);
    }
    this.nextStrikeSweep = now + 1000;
  }
}

function setOf(m: Map<string, Set<string>>, k: string): Set<string> {
  let s = m.get(k);
  if (s === undefined) { s = new Set(); m.set(k, s); }
  return s;
}
