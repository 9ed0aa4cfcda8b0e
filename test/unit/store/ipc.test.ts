// StoreClient (src/store/ipc.ts) over the workers' Channel (src/app/workers/channel.ts): the
// shared behavioural suite with two clients ("two workers") on one MemoryStore served by the
// "primary", every message passing through JSON as child_process.fork's 'json' serialization
// does. Plus what only the channel shows: failures keep their meaning, a closed channel is an
// unavailable store, never a hang.
import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import { MemoryStore } from '../../../src/store/memory.js';
import { StoreClient, serveStore, type StoreOp } from '../../../src/store/ipc.js';
import { StoreUnavailableError, type Store } from '../../../src/store/types.js';
import { Channel, type IpcEndpoint } from '../../../src/app/workers/channel.js';
import { storeBehaviour } from '../../helpers/store-suite.js';

/** Two connected endpoints; messages cross as JSON text, asynchronously, like a fork's IPC. */
function pipe(): [IpcEndpoint, IpcEndpoint, () => void] {
  const left = new EventEmitter();
  const right = new EventEmitter();
  let open = true;
  const end = (self: EventEmitter, other: EventEmitter): IpcEndpoint => Object.assign(self, {
    send: (m: object) => { const text = JSON.stringify(m); setImmediate(() => { if (open) other.emit('message', JSON.parse(text)); }); return true; },
    get connected() { return open; },
  });
  return [end(left, right), end(right, left), () => { open = false; }];
}

/** A "worker" client of `store` served by a "primary", with ban events forwarded as the pool does. */
function connect(store: Store, timeoutMs = 2000): { client: StoreClient; primary: Channel; worker: Channel; cut: () => void } {
  const [p, w, cut] = pipe();
  const primary = new Channel(p, { store: (op: string, args: unknown) => serveStore(store, op, args) }, timeoutMs);
  const handlers: Record<string, (e: never) => void> = {};
  const worker = new Channel(w, handlers, timeoutMs);
  const client = new StoreClient({ kind: store.kind, call: (op: StoreOp, args) => worker.call('store', [op, args]) });
  handlers.ban = (e) => client.deliverBanEvent(e);
  store.onBanChange((e) => primary.notify('ban', [e]));
  return { client, primary, worker, cut };
}

storeBehaviour('StoreClient over the worker channel (MemoryStore in the primary)', async () => {
  const s = new MemoryStore();
  const a = connect(s);
  const b = connect(s);
  return {
    a: a.client, b: b.client,
    close: async () => { a.primary.close(); a.worker.close(); b.primary.close(); b.worker.close(); await s.close(); },
  };
});

describe('StoreClient failures', () => {
  it('a StoreUnavailableError in the primary is one in the worker (on_failure applies)', async () => {
    const s = new MemoryStore();
    const failing = Object.assign(Object.create(s) as Store, {
      admit: () => Promise.reject(new StoreUnavailableError('redis timeout')),
    });
    const { client } = connect(failing);
    await expect(client.admit(undefined, [{ scope: 'peer:x', limit: 1 }], 'c1', 'n/w0', 1000)).rejects.toBeInstanceOf(StoreUnavailableError);
    // Any other failure stays an ordinary error, with its message.
    await expect(client.release(undefined as unknown as string)).resolves.toBe(false);
  });

  it('a primary that does not answer, or a closed channel, is an unavailable store within the timeout', async () => {
    const s = new MemoryStore();
    const { client, cut } = connect(s, 300);
    expect((await client.acquire([{ scope: 'g', limit: 2 }], 'c1', 'n/w0', 5000)).ok).toBe(true);
    cut();
    const t0 = Date.now();
    await expect(client.count('g')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - t0).toBeLessThan(1000);
    await client.close();
    await expect(client.count('g')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('freeing a dead worker\'s slots by its node id leaves the other worker\'s', async () => {
    const s = new MemoryStore();
    const w0 = connect(s).client;
    const w1 = connect(s).client;
    expect((await w0.acquire([{ scope: 'peer:a', limit: 3 }], 'c0', 'node/w0', 60_000)).ok).toBe(true);
    expect((await w1.acquire([{ scope: 'peer:a', limit: 3 }], 'c1', 'node/w1', 60_000)).ok).toBe(true);
    expect((await w1.acquire([{ scope: 'peer:a', limit: 3 }], 'c2', 'node/w1', 60_000)).ok).toBe(true);
    expect((await w0.acquire([{ scope: 'peer:a', limit: 3 }], 'c3', 'node/w0', 60_000)).ok).toBe(false);
    // What the pool does when worker 0 dies.
    expect(await s.reconcileOnStart('node/w0')).toBe(1);
    expect(await w1.count('peer:a')).toBe(2);
    expect((await w1.acquire([{ scope: 'peer:a', limit: 3 }], 'c3', 'node/w1', 60_000)).ok).toBe(true);
  });

  it('an unknown operation is refused, not run', async () => {
    await expect(serveStore(new MemoryStore(), 'flushall', [])).rejects.toMatchObject({ unavailable: false, message: 'store: unknown operation flushall' });
  });
});
