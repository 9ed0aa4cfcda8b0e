// Where records go: an append-only JSON-lines file (reopened on demand, for logrotate) and a
// Redis stream (XADD with an approximate MAXLEN). Each is a `deliver(lines)` for SinkQueue.
import { open, type FileHandle } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { lazyPackage } from '../../lazy-package.js';
import type { CdrRedisStream } from './schema.js';

/** A record serialized once: its JSON line and its Call-ID (the stream's index field). */
export interface Line { json: string; callId: string }

export interface Sink {
  readonly name: 'file' | 'redis';
  deliver(lines: Line[]): Promise<void>;
  /** Close what is open; the next delivery opens anew (logrotate's rename-then-signal). */
  reopen(): void;
  close(): Promise<void>;
}

/** Appends lines to `path` (created 0640 if missing). Opens lazily, so a bad path is a counted failure, not a crash. */
export class FileSink implements Sink {
  readonly name = 'file' as const;
  private fh: FileHandle | undefined;
  private stale = false;

  constructor(readonly path: string) {}

  async deliver(lines: Line[]): Promise<void> {
    if (this.stale && this.fh) {
      const old = this.fh;
      this.fh = undefined;
      await old.close().catch(() => undefined);
    }
    this.stale = false;
    this.fh ??= await open(this.path, 'a', 0o640);
    // One write per batch: each line is whole, and O_APPEND keeps concurrent writers apart.
    try {
      await this.fh.write(lines.map((l) => l.json).join('\n') + '\n');
    } catch (err) {
      // A failing descriptor (disk gone, ENOSPC) is reopened on the retry.
      this.stale = true;
      throw err;
    }
  }

  reopen(): void { this.stale = true; }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}

/** ioredis is loaded when a Redis stream sink is made, not by every process at start. */
const ioredis = lazyPackage<typeof import('ioredis')>('ioredis');

/** XADD each record to a stream: fields `call_id` and `record` (the JSON line). */
export class RedisStreamSink implements Sink {
  readonly name = 'redis' as const;
  private readonly redis: Redis;

  constructor(private readonly cfg: CdrRedisStream) {
    this.redis = new (ioredis().Redis)(cfg.url, {
      lazyConnect: true,
      // Down is down: fail at once and let the queue keep and retry the records.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: cfg.timeout_ms,
      connectTimeout: cfg.timeout_ms,
      retryStrategy: () => 1000,
    });
    // ioredis reports every failed reconnect as 'error'; the queue counts and logs failures.
    this.redis.on('error', () => undefined);
  }

  async deliver(lines: Line[]): Promise<void> {
    if (this.redis.status === 'wait') await this.redis.connect();
    const p = this.redis.pipeline();
    for (const l of lines) p.xadd(this.cfg.key, 'MAXLEN', '~', String(this.cfg.maxlen), '*', 'call_id', l.callId, 'record', l.json);
    const results = await p.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('redis pipeline failed');
  }

  reopen(): void { /* nothing to reopen */ }

  async close(): Promise<void> {
    try { await this.redis.quit(); } catch { this.redis.disconnect(); }
  }
}
