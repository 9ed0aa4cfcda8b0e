// The shield: a per-source-address admission check that runs before any parsing, on every UDP
// datagram, on every TCP/TLS connection accept and on every framed stream message (RFC 6404 §4.6
// ingress filtering, §4.9 rate limiting; RFC 5765 §5.1.2 bans). Order of checks, cheapest and
// most decisive first: ban set, deny CIDRs, allow CIDRs (when configured, everything else is
// denied), per-source token bucket.
//
// It runs for every packet of a flood, so admit() does one or two Map lookups and, for sources it
// has not seen recently, the ACL's address sets (cached per source); no allocation for
// known sources.
//
// Beside the address ban set, a ban set keyed by TLS peer identity (identity-bans.ts): the
// transports consult it after a client certificate verified, never per packet.
import { systemClock, type Clock } from '../transport/types.js';
import { AddressSet, normalizeAddress, sourceAddress } from './address-set.js';
import { IdentityBans, type IdentityBanCounters, type IdentityBanEntry, type IdentityBanListener } from './identity-bans.js';

export type { IdentityBanCounters, IdentityBanEntry, IdentityBanListener } from './identity-bans.js';

export interface ShieldRate {
  /** Sustained messages per second per source address. */
  ratePerSec: number;
  /** Bucket size: messages a source may send back to back. */
  burst: number;
}

export interface ShieldConfig {
  /** CIDRs or addresses whose traffic is always dropped. */
  deny?: string[];
  /** If non-empty, only these CIDRs or addresses are admitted. */
  allow?: string[];
  /** Per-source token bucket; absent or null = no rate limit. */
  rate?: ShieldRate | null;
  /** Cap on tracked sources (buckets); the oldest is evicted when full. Default 100,000. */
  maxSources?: number;
  /** Cap on the ban set; when full, expired bans are swept, then the oldest ban goes. Default 100,000. */
  maxBans?: number;
  /** How often idle buckets and expired bans are swept. Default 10 s. */
  sweepIntervalMs?: number;
  /**
   * Addresses or CIDRs of configured peers that send over UDP. A UDP source address is trivially
   * spoofed, so strikes "from" it may be an attacker's: a ban on such an address is withheld
   * (counted in bansWithheld, reported to onBanWithheld) instead of cutting the peer off.
   */
  protect?: string[];
  /** Told of every withheld ban (an alert for the log); kept by a configure() that omits it. */
  onBanWithheld?: (address: string, ttlMs: number) => void;
}

export interface ShieldCounters {
  admitted: number;
  dropped: { ban: number; deny: number; notAllowed: number; rateLimited: number };
  /** Bans not applied because the address is a protected peer's (ShieldConfig.protect). */
  bansWithheld: number;
  /** TLS identity bans: applied, handshakes refused, connections closed. */
  identity: IdentityBanCounters;
}

export type ShieldVerdict = 'admit' | 'ban' | 'deny' | 'notAllowed' | 'rateLimited';

export interface BanEntry { address: string; expiresAt: number }

/** Per-source state: token bucket plus the cached ACL verdict for the config epoch it was made in. */
interface Source { tokens: number; last: number; epoch: number; acl: 'admit' | 'deny' | 'notAllowed' }

/** Parsed ACL: kept apart so a bad config never half-replaces a good one. */
interface Acl { deny: AddressSet | null; allow: AddressSet | null }

export { normalizeAddress } from './address-set.js';

export class Shield {
  readonly counters: ShieldCounters;
  private readonly identities: IdentityBans;

  private acl: Acl = { deny: null, allow: null };
  /** Peers' UDP sources that are never banned (null: none). */
  private protect: AddressSet | null = null;
  private onBanWithheld: ShieldConfig['onBanWithheld'];
  private rate: ShieldRate | null = null;
  /** tokens per ms */
  private refill = 0;
  /** A bucket untouched this long is full again, i.e. the same as no bucket. */
  private idleMs = 0;
  private maxSources = 100_000;
  private maxBans = 100_000;
  private sweepIntervalMs = 10_000;
  private readonly sources = new Map<string, Source>();
  /**
   * Insertion order of `sources` as a ring of maxSources slots: a new source takes the slot of
   * the longest-tracked one and evicts it. O(1); not Map iteration, because V8 walks the
   * tombstones of deleted head entries on every keys().next(), which made a spoofed-source
   * flood quadratic. A fresh bucket is full, so evicting an active source costs it one burst.
   */
  private ring: (string | undefined)[] = [];
  private ringHead = 0;
  /** Bumped by configure(): cached ACL verdicts from older epochs are re-evaluated. */
  private epoch = 0;
  /** Whether any per-source state is needed (an ACL or a rate is configured). */
  private tracking = false;
  private readonly banned = new Map<string, number>();
  private sweepTimer: unknown = null;

  constructor(config: ShieldConfig = {}, private readonly clock: Clock = systemClock) {
    this.identities = new IdentityBans(() => clock.now(), this.maxBans);
    this.counters = { admitted: 0, dropped: { ban: 0, deny: 0, notAllowed: 0, rateLimited: 0 }, bansWithheld: 0, identity: this.identities.counters };
    this.configure(config);
  }

  /**
   * Replace the configuration. Validates everything first: on a bad entry it throws and the
   * previous configuration stays in force. Bans and bucket state survive.
   */
  configure(config: ShieldConfig): void {
    const deny = config.deny && config.deny.length > 0 ? new AddressSet(config.deny, 'shield deny') : null;
    const allow = config.allow && config.allow.length > 0 ? new AddressSet(config.allow, 'shield allow') : null;
    const protect = config.protect && config.protect.length > 0 ? new AddressSet(config.protect, 'shield protect') : null;
    const rate = config.rate ?? null;
    if (rate) {
      if (!(Number.isFinite(rate.ratePerSec) && rate.ratePerSec > 0)) throw new Error('shield rate: ratePerSec must be a positive number');
      if (!(Number.isFinite(rate.burst) && rate.burst >= 1)) throw new Error('shield rate: burst must be ≥ 1');
    }
    const maxSources = config.maxSources ?? this.maxSources;
    if (!(Number.isInteger(maxSources) && maxSources > 0)) throw new Error('shield maxSources must be a positive integer');
    const maxBans = config.maxBans ?? this.maxBans;
    if (!(Number.isInteger(maxBans) && maxBans > 0)) throw new Error('shield maxBans must be a positive integer');
    const sweep = config.sweepIntervalMs ?? this.sweepIntervalMs;
    if (!(Number.isFinite(sweep) && sweep > 0)) throw new Error('shield sweepIntervalMs must be positive');

    this.acl = { deny, allow };
    this.protect = protect;
    // A reconfiguration from a reloaded policy keeps the alert hook it does not name.
    if (config.onBanWithheld) this.onBanWithheld = config.onBanWithheld;
    this.rate = rate ? { ...rate } : null;
    this.refill = rate ? rate.ratePerSec / 1000 : 0;
    this.idleMs = rate ? Math.ceil((rate.burst / rate.ratePerSec) * 1000) : 0;
    if (maxSources !== this.maxSources || this.ring.length === 0) {
      // Resizing the ring forgets insertion order: start over with the entries we have.
      this.ring = [...this.sources.keys()].slice(-maxSources);
      if (this.sources.size > maxSources) for (const k of [...this.sources.keys()].slice(0, this.sources.size - maxSources)) this.sources.delete(k);
      this.ringHead = this.ring.length % maxSources;
    }
    this.maxSources = maxSources;
    this.maxBans = maxBans;
    this.identities.setMaxBans(maxBans);
    this.sweepIntervalMs = sweep;
    this.epoch++;
    this.tracking = deny !== null || allow !== null || rate !== null;
    if (!this.tracking) { this.sources.clear(); this.ring = []; this.ringHead = 0; }
    else if (rate) for (const b of this.sources.values()) if (b.tokens > rate.burst) b.tokens = rate.burst;
    this.armSweep();
  }

  /** True to let the packet/connection in. Never throws. */
  admit(address: string): boolean {
    const v = this.check(address);
    if (v === 'admit') { this.counters.admitted++; return true; }
    this.counters.dropped[v]++;
    return false;
  }

  /** The decision with its reason, without counting it. */
  check(address: string): ShieldVerdict {
    if (this.banned.size > 0) {
      const until = this.banned.get(address);
      if (until !== undefined) {
        if (until > this.clock.now()) return 'ban';
        this.banned.delete(address);
      }
    }
    if (!this.tracking) return 'admit';
    const now = this.clock.now();
    let s = this.sources.get(address);
    if (s === undefined) {
      this.remember(address);
      s = { tokens: this.rate ? this.rate.burst : 0, last: now, epoch: this.epoch, acl: this.evalAcl(address) };
      this.sources.set(address, s);
    } else if (s.epoch !== this.epoch) {
      s.acl = this.evalAcl(address);
      s.epoch = this.epoch;
    }
    const rate = this.rate;
    if (s.acl !== 'admit' || rate === null) { s.last = now; return s.acl; }
    let tokens = s.tokens + (now - s.last) * this.refill;
    if (tokens > rate.burst) tokens = rate.burst;
    s.last = now;
    if (tokens < 1) { s.tokens = tokens; return 'rateLimited'; }
    s.tokens = tokens - 1;
    return 'admit';
  }

  private remember(address: string): void {
    const max = this.maxSources;
    if (this.ring.length < max) { this.ring.push(address); this.ringHead = this.ring.length % max; return; }
    const evict = this.ring[this.ringHead];
    // The slot may name a source already swept (or swept and seen again): deleting it then
    // only costs that source a fresh, full bucket.
    if (evict !== undefined) this.sources.delete(evict);
    this.ring[this.ringHead] = address;
    this.ringHead = (this.ringHead + 1) % max;
  }

  /** Cached per source by check(): even the IPv4 fast path is cheaper to look up than redo. */
  private evalAcl(address: string): 'admit' | 'deny' | 'notAllowed' {
    const acl = this.acl;
    if (!acl.deny && !acl.allow) return 'admit';
    const a = sourceAddress(address); // read once for both sets
    if (acl.deny && acl.deny.contains(a)) return 'deny';
    if (acl.allow && !acl.allow.contains(a)) return 'notAllowed';
    return 'admit';
  }

  /** Drop everything from `address` for `ttlMs` (replaces an existing ban); a protected peer
   *  address is not banned (see ShieldConfig.protect). */
  ban(address: string, ttlMs: number): void {
    if (!(ttlMs > 0)) return;
    if (this.isProtected(address)) {
      this.counters.bansWithheld++;
      try { this.onBanWithheld?.(address, ttlMs); } catch { /* an alert hook never stops the shield */ }
      return;
    }
    const until = this.clock.now() + ttlMs;
    this.setBan(address, until);
    const mapped = normalizeAddress(address);
    if (mapped !== address) this.setBan(mapped, until);
  }

  private setBan(address: string, until: number): void {
    if (!this.banned.has(address) && this.banned.size >= this.maxBans) {
      // Bans come from strikes, and strikes can come from spoofed UDP sources: keep it bounded.
      const now = this.clock.now();
      for (const [a, u] of this.banned) if (u <= now) this.banned.delete(a);
      if (this.banned.size >= this.maxBans) {
        const oldest = this.banned.keys().next().value;
        if (oldest !== undefined) this.banned.delete(oldest);
      }
    }
    this.banned.set(address, until);
  }

  /** Whether `address` is a configured peer's UDP source (never banned). */
  isProtected(address: string): boolean {
    return this.protect !== null && this.protect.has(address);
  }

  unban(address: string): boolean {
    return this.banned.delete(address);
  }

  isBanned(address: string): boolean {
    const until = this.banned.get(address);
    return until !== undefined && until > this.clock.now();
  }

  /** Current (unexpired) bans. */
  bans(): BanEntry[] {
    const now = this.clock.now();
    const out: BanEntry[] = [];
    for (const [address, expiresAt] of this.banned) if (expiresAt > now) out.push({ address, expiresAt });
    return out;
  }

  /**
   * Ban a TLS peer identity (SHA-256 fingerprint of its verified certificate) for `ttlMs`.
   * Never withheld: a certificate cannot be spoofed the way a UDP source address can. The
   * transports close its connections (onIdentityBan) and refuse its handshakes.
   */
  banIdentity(fingerprint256: string, ttlMs: number): void { this.identities.ban(fingerprint256, ttlMs); }

  unbanIdentity(fingerprint256: string): boolean { return this.identities.unban(fingerprint256); }

  isIdentityBanned(fingerprint256: string): boolean { return this.identities.isBanned(fingerprint256); }

  /** Current (unexpired) identity bans. */
  identityBans(): IdentityBanEntry[] { return this.identities.list(); }

  /** Told of every identity ban as it is applied; returns unsubscribe. */
  onIdentityBan(listener: IdentityBanListener): () => void { return this.identities.onBan(listener); }

  /** Number of sources with live state (for metrics and tests). */
  get trackedSources(): number { return this.sources.size; }

  /** Remove expired bans and buckets idle long enough to be full again. Called by the timer. */
  sweep(): void {
    const now = this.clock.now();
    for (const [a, until] of this.banned) if (until <= now) this.banned.delete(a);
    this.identities.sweep();
    // An entry idle for idleMs has a full bucket again, so dropping it changes no decision.
    const idle = Math.max(this.idleMs, this.sweepIntervalMs);
    for (const [a, b] of this.sources) if (now - b.last >= idle) this.sources.delete(a);
    if (this.sources.size === 0) { this.ring = []; this.ringHead = 0; }
  }

  /** Stop the sweep timer (the shield keeps working; memory is then only bounded by maxSources). */
  close(): void {
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.closed = true;
  }

  private closed = false;

  private armSweep(): void {
    if (this.closed) return;
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    const tick = (): void => {
      this.sweep();
      this.sweepTimer = this.clock.setTimeout(tick, this.sweepIntervalMs);
      unref(this.sweepTimer);
    };
    this.sweepTimer = this.clock.setTimeout(tick, this.sweepIntervalMs);
    unref(this.sweepTimer);
  }
}

function unref(h: unknown): void {
  const t = h as { unref?: () => void } | null;
  if (t && typeof t.unref === 'function') t.unref();
}
