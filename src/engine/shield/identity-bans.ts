// Bans keyed by TLS peer identity (issue #17 item 4; RFC 5765 §5.1.2 reputation): a peer that
// proved its certificate in a mutual-TLS handshake is banned as that certificate (its SHA-256
// fingerprint), not as its address, which NAT or a shared SBE may give to other peers too.
// The transports ask here after a client certificate verified (a banned identity's handshake is
// refused before any SIP is read) and are told of each new ban, to close the identity's
// established connections. Bounded like the address ban set: strikes decide what lands here.

export interface IdentityBanEntry { fingerprint256: string; expiresAt: number }

export interface IdentityBanCounters {
  /** Bans applied (a ban that replaces a live one counts again). */
  bans: number;
  /** Inbound TLS handshakes refused because the verified certificate is banned. */
  handshakesRefused: number;
  /** Established connections closed when their identity was banned. */
  connectionsClosed: number;
}

/** Told of each ban as it is applied (e.g. to close the identity's connections). */
export type IdentityBanListener = (fingerprint256: string, ttlMs: number) => void;

export class IdentityBans {
  readonly counters: IdentityBanCounters = { bans: 0, handshakesRefused: 0, connectionsClosed: 0 };
  private readonly banned = new Map<string, number>();
  private readonly listeners = new Set<IdentityBanListener>();

  constructor(private readonly now: () => number, private maxBans: number) {}

  setMaxBans(max: number): void { this.maxBans = max; }

  /** Ban `fingerprint256` for `ttlMs` (replaces an existing ban) and tell the listeners. */
  ban(fingerprint256: string, ttlMs: number): void {
    if (!(ttlMs > 0) || fingerprint256.length === 0) return;
    const now = this.now();
    if (!this.banned.has(fingerprint256) && this.banned.size >= this.maxBans) {
      for (const [f, u] of this.banned) if (u <= now) this.banned.delete(f);
      if (this.banned.size >= this.maxBans) {
        const oldest = this.banned.keys().next().value;
        if (oldest !== undefined) this.banned.delete(oldest);
      }
    }
    this.banned.set(fingerprint256, now + ttlMs);
    this.counters.bans++;
    for (const l of this.listeners) {
      try { l(fingerprint256, ttlMs); } catch { /* a listener's bug never stops a ban */ }
    }
  }

  unban(fingerprint256: string): boolean {
    return this.banned.delete(fingerprint256);
  }

  /** One Map lookup, none while no identity is banned (the usual case). */
  isBanned(fingerprint256: string): boolean {
    if (this.banned.size === 0) return false;
    const until = this.banned.get(fingerprint256);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.banned.delete(fingerprint256);
    return false;
  }

  list(): IdentityBanEntry[] {
    const now = this.now();
    const out: IdentityBanEntry[] = [];
    for (const [fingerprint256, expiresAt] of this.banned) if (expiresAt > now) out.push({ fingerprint256, expiresAt });
    return out;
  }

  /** Subscribe to new bans; returns unsubscribe. */
  onBan(listener: IdentityBanListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  sweep(): void {
    const now = this.now();
    for (const [f, until] of this.banned) if (until <= now) this.banned.delete(f);
  }
}
