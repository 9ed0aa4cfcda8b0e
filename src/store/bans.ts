// Push the shared ban list into this node's engine shield (RFC 5765 §5.1.2 across the pool):
// the whole list once, then every change as it is published, and the whole list again after
// a reconnect (changes published while the node was away were missed). Address bans and TLS
// identity bans (ban-key.ts) travel the same way; each goes to its own set in the shield.
import { banTarget } from './ban-key.js';
import type { BanEvent, Store } from './types.js';

/** What the engine's Shield offers (src/engine/shield): structurally typed, no import needed. */
export interface BanSink {
  ban(address: string, ttlMs: number): void;
  unban(address: string): unknown;
  /** Current bans; lets a resync lift bans that were removed while this node was away. */
  bans?(): readonly { address: string }[];
  /** TLS identity bans, by certificate SHA-256 fingerprint; without them such bans are ignored. */
  banIdentity?(fingerprint256: string, ttlMs: number): void;
  unbanIdentity?(fingerprint256: string): unknown;
  identityBans?(): readonly { fingerprint256: string }[];
}

export interface BanSync {
  /** Re-read the shared list and apply it (also done on every reconnect). */
  resync(): Promise<void>;
  stop(): void;
}

export async function syncBans(store: Store, sink: BanSink): Promise<BanSync> {
  let stopped = false;
  const apply = (key: string, ttlMs: number | undefined): void => {
    const t = banTarget(key);
    if (t.kind === 'address') {
      if (ttlMs === undefined) sink.unban(t.address); else sink.ban(t.address, ttlMs);
    } else if (ttlMs === undefined) sink.unbanIdentity?.(t.fingerprint256);
    else sink.banIdentity?.(t.fingerprint256, ttlMs);
  };
  const resync = async (): Promise<void> => {
    let list;
    try { list = await store.listBans(); } catch { return; /* next reconnect resyncs */ }
    if (stopped) return;
    const live = new Set<string>();
    const liveIds = new Set<string>();
    for (const b of list) {
      const t = banTarget(b.address);
      if (t.kind === 'address') live.add(t.address); else liveIds.add(t.fingerprint256);
      apply(b.address, b.ttlMs);
    }
    if (sink.bans) for (const b of sink.bans()) if (!live.has(b.address)) sink.unban(b.address);
    if (sink.identityBans) for (const b of sink.identityBans()) if (!liveIds.has(b.fingerprint256)) sink.unbanIdentity?.(b.fingerprint256);
  };
  const off = store.onBanChange((e: BanEvent) => {
    if (stopped) return;
    if (e.type === 'ban') apply(e.address, e.ttlMs);
    else if (e.type === 'unban') apply(e.address, undefined);
    else void resync();
  });
  await resync();
  return { resync, stop: () => { stopped = true; off(); } };
}
