// Push the shared ban list into this node's engine shield (RFC 5765 §5.1.2 across the pool):
// the whole list once, then every change as it is published, and the whole list again after
// a reconnect (changes published while the node was away were missed).
import type { BanEvent, Store } from './types.js';

/** What the engine's Shield offers (src/engine/shield): structurally typed, no import needed. */
export interface BanSink {
  ban(address: string, ttlMs: number): void;
  unban(address: string): unknown;
  /** Current bans; lets a resync lift bans that were removed while this node was away. */
  bans?(): readonly { address: string }[];
}

export interface BanSync {
  /** Re-read the shared list and apply it (also done on every reconnect). */
  resync(): Promise<void>;
  stop(): void;
}

export async function syncBans(store: Store, sink: BanSink): Promise<BanSync> {
  let stopped = false;
  const resync = async (): Promise<void> => {
    let list;
    try { list = await store.listBans(); } catch { return; /* next reconnect resyncs */ }
    if (stopped) return;
    const live = new Set<string>();
    for (const b of list) { live.add(b.address); sink.ban(b.address, b.ttlMs); }
    if (sink.bans) for (const b of sink.bans()) if (!live.has(b.address)) sink.unban(b.address);
  };
  const off = store.onBanChange((e: BanEvent) => {
    if (stopped) return;
    if (e.type === 'ban') sink.ban(e.address, e.ttlMs);
    else if (e.type === 'unban') sink.unban(e.address);
    else void resync();
  });
  await resync();
  return { resync, stop: () => { stopped = true; off(); } };
}
