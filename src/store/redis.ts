// RedisStore: shared state for a pool of SBEs (RFC 6404 §4.8) through ioredis — standalone,
// Sentinel or Cluster by configuration. Every check is one Lua script (atomic); every call is
// bounded by `timeoutMs` and fails with StoreUnavailableError rather than wait for a dead Redis.
import type { Redis, Cluster, RedisOptions, ClusterOptions } from 'ioredis';
import { lazyPackage } from '../lazy-package.js';
import { storeErrors, storeUp } from './metrics.js';
import * as lua from './lua.js';
import {
  StoreUnavailableError,
  type AcquireResult, type AdmitResult, type RateSpec, type BanEntry, type BanEvent, type BanListener, type SessionScope, type Store,
  type StoreHealth, type StrikePolicy, type StrikeResult, type TakeResult,
} from './types.js';

export interface RedisStoreOptions {
  /** Standalone: redis://[user:password@]host:port[/db] or rediss:// (TLS). */
  url?: string;
  /** Sentinel: the master's name, the sentinels ("host:port"), the master's password and db. */
  sentinel?: { name: string; sentinels: string[]; password?: string; db?: number };
  /** Cluster: seed nodes ("host:port") and the nodes' password. */
  cluster?: { nodes: string[]; password?: string };
  /** Prefix of every key and of the ban channel; lets several deployments share a Redis. */
  keyPrefix?: string;
  /** Upper bound of any one call, ms (default 150). */
  timeoutMs?: number;
  /** Delay between reconnect attempts, ms (default 250): recovery is automatic. */
  reconnectMs?: number;
}

const SCRIPTS = {
  pgTake: lua.TAKE,
  pgAcquire: lua.ACQUIRE,
  pgAdmit: lua.ADMIT,
  pgRelease: lua.RELEASE,
  pgKeepAlive: lua.KEEPALIVE,
  pgReconcile: lua.RECONCILE,
  pgCount: lua.COUNT,
  pgBan: lua.BAN,
  pgUnban: lua.UNBAN,
  pgListBans: lua.LIST_BANS,
  pgStrike: lua.STRIKE,
} as const;
type ScriptName = keyof typeof SCRIPTS;

/** Sessions refreshed / reconciled per script run, so one run never blocks Redis for long. */
const CHUNK = 1000;
/** Bound on chunks per call (1000 × 1000 = a million sessions per node). */
const MAX_CHUNKS = 1000;
/** How long a starting node waits for Redis before dropping its leftovers (else they expire by ttl). */
const RECONCILE_WAIT_MS = 2000;

type Client = Redis | Cluster;

/** ioredis is loaded when a RedisStore is made: a node without `store.redis` never needs it. */
const ioredis = lazyPackage<typeof import('ioredis')>('ioredis');

/** The ban subscriber waits for Redis rather than failing: it has no caller to answer. */
const SUBSCRIBER: RedisOptions = {
  scripts: undefined, commandTimeout: undefined, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false,
};

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new TypeError(`redis node "${s}" is not host:port`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function checkName(what: string, s: string): void {
  // Names end up in key names and in newline-separated session records.
  if (s.length === 0 || s.includes('\n')) throw new TypeError(`${what} must be non-empty and single-line`);
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly client: Client;
  private readonly sub: Client;
  private readonly prefix: string;
  private readonly sidPrefix: string;
  private readonly channel: string;
  private readonly bansKeys: [string, string];
  private readonly timeoutMs: number;
  private readonly listeners = new Set<BanListener>();
  private state: StoreHealth;
  private strikeSeq = 0;
  private readonly strikeTag = Math.random().toString(36).slice(2, 10);
  private closed = false;
  private readonly subscribed: Promise<boolean>;

  constructor(opts: RedisStoreOptions) {
    this.timeoutMs = opts.timeoutMs ?? 150;
    this.prefix = opts.keyPrefix ?? 'peergate:';
    this.sidPrefix = `${this.prefix}{s}:sid:`;
    this.channel = `${this.prefix}bans`;
    this.bansKeys = [`${this.prefix}{b}:bans`, `${this.prefix}{b}:bexp`];
    this.state = { state: 'down', kind: 'redis', since: Date.now(), lastError: 'connecting' };
    storeUp.set({ kind: 'redis' }, 0);

    const reconnectMs = opts.reconnectMs ?? 250;
    const { Redis, Cluster } = ioredis();
    const common: RedisOptions = {
      commandTimeout: this.timeoutMs,
      // Fail at once while disconnected instead of queueing behind a dead link.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(1000, this.timeoutMs * 4),
      retryStrategy: () => reconnectMs,
      scripts: Object.fromEntries(Object.entries(SCRIPTS).map(([k, v]) => [k, { lua: v }])),
    };
    if (opts.cluster) {
      const nodes = opts.cluster.nodes.map(hostPort);
      if (nodes.length === 0) throw new TypeError('redis cluster needs at least one node');
      const copts: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: () => reconnectMs,
        scripts: common.scripts,
        redisOptions: {
          commandTimeout: this.timeoutMs, maxRetriesPerRequest: 0, connectTimeout: common.connectTimeout,
          password: opts.cluster.password,
        },
      };
      this.client = new Cluster(nodes, copts);
      this.sub = new Cluster(nodes, {
        ...copts, scripts: undefined, enableOfflineQueue: true,
        redisOptions: { ...copts.redisOptions, commandTimeout: undefined, maxRetriesPerRequest: null },
      });
    } else if (opts.sentinel) {
      const s = opts.sentinel;
      const so: RedisOptions = {
        ...common, sentinels: s.sentinels.map(hostPort), name: s.name, password: s.password, db: s.db ?? 0,
        sentinelRetryStrategy: () => reconnectMs,
      };
      this.client = new Redis(so);
      this.sub = new Redis({ ...so, ...SUBSCRIBER });
    } else {
      const url = opts.url ?? 'redis://127.0.0.1:6379';
      this.client = new Redis(url, common);
      this.sub = new Redis(url, { ...common, ...SUBSCRIBER });
    }

    this.client.on('ready', () => this.markUp());
    this.client.on('close', () => this.markDown('connection closed'));
    this.client.on('error', (e: Error) => { this.state.lastError = e.message; });
    this.sub.on('error', () => { /* reported through the main connection */ });
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel === this.channel) this.onMessage(msg);
    });
    let onSubscribed!: (ok: boolean) => void;
    this.subscribed = new Promise((resolve) => { onSubscribed = resolve; });
    let isSubscribed = false;
    const subscribe = () => {
      this.sub.subscribe(this.channel).then(() => { isSubscribed = true; onSubscribed(true); }, () => { /* retried on the next ready */ });
    };
    if (this.sub instanceof Cluster) {
      this.sub.on('ready', () => {
        if (!isSubscribed) subscribe();
        this.emit({ type: 'resync' });
      });
      subscribe();
    } else {
      // The subscription is ours on every (re)connect (autoResubscribe is off): ioredis's own
      // resubscribe has no rejection handler, so a close racing a reconnect left an unhandled
      // "Connection is closed." rejection. Bans published while this node was away were missed
      // either way, so listeners re-read the list.
      this.sub.on('ready', () => {
        subscribe();
        this.emit({ type: 'resync' });
      });
    }
    // Scripts are loaded on every (re)connect so call setups never pay a NOSCRIPT round trip.
    if (!(this.client instanceof Cluster)) {
      const c = this.client;
      c.on('ready', () => {
        for (const src of Object.values(SCRIPTS)) void c.script('LOAD', src).catch(() => { /* EVAL fallback */ });
      });
    }
  }

  /**
   * Resolves true once connected and subscribed to ban changes, or false after `timeoutMs`
   * (the store keeps trying either way).
   */
  async ready(timeoutMs = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const up = this.state.state === 'up' ? Promise.resolve(true) : new Promise<boolean>((resolve) => {
      this.client.once('ready', () => resolve(true));
    });
    const limit = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    try {
      return await Promise.race([Promise.all([up, this.subscribed]).then(([x, y]) => x && y), limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  async take(key: string, ratePerS: number, burst: number): Promise<TakeResult> {
    if (!(ratePerS > 0) || !(burst >= 1)) throw new RangeError('token bucket needs rate > 0 and burst >= 1');
    const [allowed, wait] = await this.run('pgTake', 'take', [`${this.prefix}tb:{${key}}`], [ratePerS, burst]) as [number, number];
    return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterMs: Math.max(1, wait) };
  }

  async acquire(scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AcquireResult> {
    const r = await this.slots('acquire', undefined, scopes, sessionId, nodeId, ttlMs);
    if (r.ok) return r;
    if (r.rateLimited) throw new Error('acquire cannot be rate limited');
    return { ok: false, scope: r.scope, limit: r.limit, count: r.count };
  }

  async admit(rate: RateSpec | undefined, scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult> {
    return this.slots('admit', rate, scopes, sessionId, nodeId, ttlMs);
  }

  /** acquire() and admit(): the same keys; with a rate, a bucket in front (script ADMIT). */
  private async slots(op: string, rate: RateSpec | undefined,
    scopes: readonly SessionScope[], sessionId: string, nodeId: string, ttlMs: number): Promise<AdmitResult> {
    checkName('session id', sessionId);
    checkName('node id', nodeId);
    const keys: string[] = [];
    const args: (string | number)[] = [];
    if (rate !== undefined) {
      if (!(rate.ratePerS > 0) || !(rate.burst >= 1)) throw new RangeError('token bucket needs rate > 0 and burst >= 1');
      keys.push(`${this.prefix}{s}:tb:${rate.key}`);
      args.push(rate.ratePerS, rate.burst);
    }
    keys.push(this.sidPrefix + sessionId, `${this.prefix}{s}:node:${nodeId}`);
    args.push(Math.ceil(ttlMs), sessionId);
    for (const s of scopes) {
      checkName('scope', s.scope);
      keys.push(`${this.prefix}{s}:scope:${s.scope}`);
      args.push(s.limit === undefined ? -1 : s.limit);
    }
    let reply: [number, number, number];
    try {
      reply = await this.run(rate === undefined ? 'pgAcquire' : 'pgAdmit', op, keys, args) as [number, number, number];
    } catch (e) {
      // A timed-out acquire may still run once a slow Redis catches up, holding a slot for a
      // call we refused. A release queued behind it on the same connection undoes it.
      if (e instanceof StoreUnavailableError) this.compensate(sessionId);
      throw e;
    }
    const [ok, idx, count] = reply;
    if (ok === 1) return { ok: true };
    if (ok === 2) return { ok: false, rateLimited: true, retryAfterMs: Math.max(1, idx) };
    const hit = scopes[idx - 1]!;
    return { ok: false, rateLimited: false, scope: hit.scope, limit: hit.limit ?? Infinity, count };
  }

  async release(sessionId: string): Promise<boolean> {
    checkName('session id', sessionId);
    return (await this.run('pgRelease', 'release', [this.sidPrefix + sessionId], [sessionId])) === 1;
  }

  async keepAlive(nodeId: string, ttlMs: number): Promise<number> {
    checkName('node id', nodeId);
    const key = `${this.prefix}{s}:node:${nodeId}`;
    let total = 0;
    let target = 0;
    for (let i = 0; i < MAX_CHUNKS; i++) {
      const [n, exp] = await this.run('pgKeepAlive', 'keepalive', [key], [Math.ceil(ttlMs), CHUNK, this.sidPrefix, target]) as [number, number];
      total += n;
      target = exp;
      if (n < CHUNK) break;
    }
    return total;
  }

  async reconcileOnStart(nodeId: string): Promise<number> {
    checkName('node id', nodeId);
    // Called right after the client is created: without waiting for the connection (bounded)
    // it always failed, and a restarted node's leftovers stayed counted until their ttl.
    await this.ready(RECONCILE_WAIT_MS);
    const key = `${this.prefix}{s}:node:${nodeId}`;
    let total = 0;
    for (let i = 0; i < MAX_CHUNKS; i++) {
      const n = await this.run('pgReconcile', 'reconcile', [key], [this.sidPrefix, CHUNK]) as number;
      total += n;
      if (n < CHUNK) break;
    }
    return total;
  }

  async count(scope: string): Promise<number> {
    checkName('scope', scope);
    return await this.run('pgCount', 'count', [`${this.prefix}{s}:scope:${scope}`], []) as number;
  }

  async seenOnce(key: string, ttlMs: number): Promise<boolean> {
    const r = await this.bounded('seen_once', this.client.set(`${this.prefix}rp:{${key}}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'));
    return r === 'OK';
  }

  async ban(address: string, ttlMs: number, reason: string): Promise<void> {
    checkName('address', address);
    await this.run('pgBan', 'ban', this.bansKeys, [address, Math.max(1, Math.ceil(ttlMs)), reason, this.channel]);
  }

  async unban(address: string): Promise<boolean> {
    checkName('address', address);
    return (await this.run('pgUnban', 'unban', this.bansKeys, [address, this.channel])) === 1;
  }

  async listBans(): Promise<BanEntry[]> {
    const flat = await this.run('pgListBans', 'list_bans', this.bansKeys, []) as string[];
    const out: BanEntry[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      out.push({ address: flat[i]!, ttlMs: Number(flat[i + 1]), reason: flat[i + 2]! });
    }
    return out;
  }

  onBanChange(listener: BanListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async strike(source: string, kind: string, policy: StrikePolicy): Promise<StrikeResult> {
    checkName('source', source);
    const member = `${this.strikeTag}:${++this.strikeSeq}:${kind}`;
    const count = await this.run('pgStrike', 'strike', [`${this.prefix}strk:{${source}}`],
      [Math.ceil(policy.windowMs), policy.threshold, member]) as number;
    if (count < policy.threshold) return { count, banned: false };
    // Separate call: the ban list lives in another hash slot than the source's strikes.
    await this.ban(source, policy.banMs, `strikes: ${count} in ${Math.round(policy.windowMs / 1000)} s, last ${kind}`);
    return { count, banned: true };
  }

  health(): StoreHealth { return { ...this.state }; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.markDown('closed');
    this.client.disconnect();
    this.sub.disconnect();
  }

  private compensate(sessionId: string): void {
    const fn = (this.client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>).pgRelease!;
    try {
      void fn.call(this.client, 1, this.sidPrefix + sessionId, sessionId).catch(() => { /* expires by ttl */ });
    } catch { /* not connected: the acquire was not sent either, or it expires by ttl */ }
  }

  private run(name: ScriptName, op: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!;
    return this.bounded(op, fn.call(this.client, keys.length, ...keys, ...args));
  }

  /** Bound a call by the timeout even where ioredis would not (cluster slot refresh, sentinel). */
  private async bounded<T>(op: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs + 20);
    });
    try {
      const v = await Promise.race([p, timeout]);
      if (this.state.state !== 'up') this.markUp();
      return v;
    } catch (e) {
      p.catch(() => { /* settled later; already reported */ });
      const msg = e instanceof Error ? e.message : String(e);
      // A script or argument error is a bug or bad input, not an outage.
      if (/^(ERR|WRONGTYPE|NOSCRIPT)\b/.test(msg)) throw e;
      storeErrors.inc({ kind: 'redis', op });
      this.markDown(msg);
      throw new StoreUnavailableError(`redis ${op}: ${msg}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  private markUp(): void {
    if (this.closed) return;
    this.state = { state: 'up', kind: 'redis', since: Date.now() };
    storeUp.set({ kind: 'redis' }, 1);
  }

  private markDown(why: string): void {
    if (this.state.state === 'down') { this.state.lastError = why; return; }
    this.state = { state: 'down', kind: 'redis', since: Date.now(), lastError: why };
    storeUp.set({ kind: 'redis' }, 0);
  }

  private onMessage(msg: string): void {
    let e: unknown;
    try { e = JSON.parse(msg); } catch { return; }
    if (typeof e !== 'object' || e === null) return;
    const o = e as Record<string, unknown>;
    if (typeof o.address !== 'string') return;
    if (o.type === 'ban' && typeof o.ttlMs === 'number') {
      this.emit({ type: 'ban', address: o.address, ttlMs: o.ttlMs, reason: typeof o.reason === 'string' ? o.reason : '' });
    } else if (o.type === 'unban') {
      this.emit({ type: 'unban', address: o.address });
    }
  }

  private emit(e: BanEvent): void {
    for (const l of this.listeners) {
      try { l(e); } catch { /* a listener's bug must not break the store */ }
    }
  }
}
