// The shared-state contract for overload and abuse control (RFC 6404 §4.8/§4.9, RFC 5765 §5).
// Two implementations: MemoryStore (single node) and RedisStore (a pool of SBEs on one Redis).
// Every operation is atomic in the backing store; every call on a remote store is bounded by a
// timeout and rejects with StoreUnavailableError instead of hanging a call setup.

/** Result of taking one token from a bucket. */
export type TakeResult =
  | { allowed: true }
  | { allowed: false; /** ms until one token is available again */ retryAfterMs: number };

/** One scope a session counts against, e.g. `peer:carrier-a` or `global`. */
export interface SessionScope {
  scope: string;
  /** Maximum concurrent sessions in this scope; undefined = count only, no limit. */
  limit?: number;
}

/** Result of acquiring a session slot in every scope at once (all or none). */
export type AcquireResult =
  | { ok: true }
  | { ok: false; /** the first scope whose limit was hit */ scope: string; limit: number; count: number };

/** A call-rate bucket checked in the same atomic step as session slots (Store.admit). */
export interface RateSpec {
  key: string;
  ratePerS: number;
  burst: number;
}

/** Result of Store.admit: a call-rate refusal, a session-limit refusal, or admitted. */
export type AdmitResult =
  | { ok: true }
  | { ok: false; rateLimited: true; retryAfterMs: number }
  | { ok: false; rateLimited: false; scope: string; limit: number; count: number };

export interface BanEntry {
  address: string;
  reason: string;
  /** Milliseconds left until the ban lapses (relative, so node clocks do not matter). */
  ttlMs: number;
}

/** A ban-list change, delivered to every node (pub/sub on Redis, locally for memory). */
export type BanEvent =
  | { type: 'ban'; address: string; ttlMs: number; reason: string }
  | { type: 'unban'; address: string }
  /** The node (re)connected: the listener should re-read listBans(), events may have been missed. */
  | { type: 'resync' };

export type BanListener = (event: BanEvent) => void;

/** Strike policy (policy: limits.strikes). */
export interface StrikePolicy {
  /** Strikes within the window that trigger a ban. */
  threshold: number;
  windowMs: number;
  banMs: number;
}

export interface StrikeResult {
  /** Strikes of this source within the window, including this one. */
  count: number;
  /** True when this strike crossed the threshold and the source was banned. */
  banned: boolean;
}

export type StoreHealthState = 'up' | 'down';

export interface StoreHealth {
  state: StoreHealthState;
  kind: 'memory' | 'redis';
  /** Last error text while down. */
  lastError?: string;
  /** Epoch ms of the last state change. */
  since: number;
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  /** Token bucket: `ratePerS` tokens per second, at most `burst` stored. */
  take(key: string, ratePerS: number, burst: number): Promise<TakeResult>;

  /**
   * Take a slot for `sessionId` in every scope, or in none when any limit is reached.
   * The entry expires after `ttlMs` unless `keepAlive(nodeId)` refreshes it, so a crashed
   * node's capacity returns by itself. Acquiring a session already held is a no-op success.
   */
  acquire(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AcquireResult>;
  /**
   * Call admission in one atomic step (one round trip on Redis): take a token from `rate`
   * (when given; its buckets are separate from take()'s), then acquire() the session slots.
   * A token is spent even when a session limit then refuses the call: it was an attempt.
   */
  admit(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult>;
  /** Free the session's slots; false when it was unknown (released or expired). */
  release(sessionId: string): Promise<boolean>;
  /** Push the expiry of all of `nodeId`'s sessions to now + ttlMs; returns how many. */
  keepAlive(nodeId: string, ttlMs: number): Promise<number>;
  /** Drop every session a previous run of `nodeId` left behind; returns how many. */
  reconcileOnStart(nodeId: string): Promise<number>;
  /** Live sessions in a scope. */
  count(scope: string): Promise<number>;

  /** Replay cache: true the first time `key` is seen within ttlMs, false for repeats. */
  seenOnce(key: string, ttlMs: number): Promise<boolean>;

  ban(address: string, ttlMs: number, reason: string): Promise<void>;
  unban(address: string): Promise<boolean>;
  listBans(): Promise<BanEntry[]>;
  /** Subscribe to ban-list changes from every node (including this one). Returns unsubscribe. */
  onBanChange(listener: BanListener): () => void;

  /** Count a strike against `source`; past the policy threshold the source is banned. */
  strike(source: string, kind: string, policy: StrikePolicy): Promise<StrikeResult>;

  health(): StoreHealth;
  close(): Promise<void>;
}

/** The store could not answer in time (or at all): callers apply their on_failure policy. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
