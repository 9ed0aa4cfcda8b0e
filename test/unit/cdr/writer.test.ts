import { describe, it, expect, afterEach } from 'vitest';
import { readFileSync, renameSync, existsSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createCdrWriter, cdrRecordsTotal, type CdrWriter } from '../../../src/sbc/cdr/index.js';
import { SinkQueue } from '../../../src/sbc/cdr/queue.js';
import { CdrSchema } from '../../../src/sbc/cdr/schema.js';
import { scratchDir, waitFor } from '../../helpers/procs.js';

const log = pino({ level: 'silent' });
const START = { peer: 'p', direction: 'inbound' as const, calling: '1', called: '2', source: { address: '127.0.0.1', port: 5060 }, transport: 'udp', tls: null };

function lines(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function count(sink: string, result: string): Promise<number> {
  const m = await cdrRecordsTotal.get();
  return m.values.filter((v) => v.labels.sink === sink && v.labels.result === result).reduce((a, v) => a + v.value, 0);
}

describe('cdr policy', () => {
  it('needs an absolute file path or a stream, and says so', () => {
    expect(CdrSchema.safeParse({ file: 'cdr.jsonl' }).error?.issues[0]?.message).toMatch(/absolute path/);
    expect(CdrSchema.safeParse({}).error?.issues[0]?.message).toBe('cdr needs file, redis_stream or both');
    expect(CdrSchema.safeParse({ redis_stream: { url: 'http://x' } }).success).toBe(false);
    expect(CdrSchema.parse({ redis_stream: { url: 'redis://127.0.0.1:6379' } }).redis_stream).toMatchObject({ key: 'peergate:cdr', maxlen: 1_000_000 });
  });
});

describe('cdr writer', () => {
  let w: CdrWriter | undefined;
  afterEach(async () => { await w?.close(); w = undefined; });

  it('appends one JSON line per call and reopens the file after a rename (logrotate)', async () => {
    const dir = scratchDir('cdr-');
    const file = join(dir, 'cdr.jsonl');
    w = createCdrWriter({ file, queue_max: 100 }, { log, node: 'n1', reopenSignal: null });
    w.recorder.begin({ ...START, id: 'a', callId: 'call-a' }).ended({ result: 'refused', status: 403 });
    await waitFor(() => lines(file).length === 1, 3000);
    renameSync(file, `${file}.1`);
    // Until reopened, records follow the renamed file (same descriptor).
    w.recorder.begin({ ...START, id: 'b', callId: 'call-b' }).ended({ result: 'canceled' });
    await waitFor(() => lines(`${file}.1`).length === 2, 3000);
    w.reopen();
    w.recorder.begin({ ...START, id: 'c', callId: 'call-c' }).ended({ result: 'no_route' });
    await waitFor(() => lines(file).length === 1, 3000);
    expect(lines(`${file}.1`).map((l) => l.call_id)).toEqual(['call-a', 'call-b']);
    expect(lines(file)[0]).toMatchObject({ call_id: 'call-c', node: 'n1', status: 404 });
  });

  it('reopens on SIGUSR1 by default', async () => {
    const dir = scratchDir('cdr-');
    const file = join(dir, 'cdr.jsonl');
    w = createCdrWriter({ file, queue_max: 100 }, { log });
    w.recorder.begin({ ...START, id: 'a', callId: 'call-a' }).ended({ result: 'refused' });
    await waitFor(() => lines(file).length === 1, 3000);
    renameSync(file, `${file}.1`);
    process.kill(process.pid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 50));
    w.recorder.begin({ ...START, id: 'b', callId: 'call-b' }).ended({ result: 'refused' });
    await waitFor(() => lines(file).length === 1, 3000);
    expect(lines(`${file}.1`)).toHaveLength(1);
  });

  it('a file it cannot write is counted and retried, never thrown; records written once it can', async () => {
    const dir = scratchDir('cdr-');
    const sub = join(dir, 'missing');
    const file = join(sub, 'cdr.jsonl');
    const failedBefore = await count('file', 'failed');
    w = createCdrWriter({ file, queue_max: 100 }, { log, reopenSignal: null });
    expect(() => w!.recorder.begin({ ...START, id: 'a', callId: 'call-a' }).ended({ result: 'refused' })).not.toThrow();
    await waitFor(async () => (await count('file', 'failed')) > failedBefore, 3000);
    mkdirSync(sub);
    await w.close(5000);
    w = undefined;
    expect(lines(file).map((l) => l.call_id)).toEqual(['call-a']);
  });

  it('a reload that changes the file finishes the old one and writes the new one', async () => {
    const dir = scratchDir('cdr-');
    w = createCdrWriter({ file: join(dir, 'a.jsonl'), queue_max: 100 }, { log, reopenSignal: null });
    w.recorder.begin({ ...START, id: '1', callId: 'one' }).ended({ result: 'refused' });
    await w.configure({ file: join(dir, 'b.jsonl'), queue_max: 100 });
    w.recorder.begin({ ...START, id: '2', callId: 'two' }).ended({ result: 'refused' });
    await waitFor(() => lines(join(dir, 'b.jsonl')).length === 1, 3000);
    expect(lines(join(dir, 'a.jsonl')).map((l) => l.call_id)).toEqual(['one']);
    expect(lines(join(dir, 'b.jsonl')).map((l) => l.call_id)).toEqual(['two']);
  });

  it('an unwritable path is a counted failure; closing drops what waits, counted', async () => {
    if (process.getuid?.() === 0) {
      // root writes anyway; a directory in the file's place fails for everyone.
      const dir = scratchDir('cdr-');
      const file = join(dir, 'cdr.jsonl');
      mkdirSync(file);
      const before = await count('file', 'failed');
      w = createCdrWriter({ file, queue_max: 100 }, { log, reopenSignal: null });
      w.recorder.begin({ ...START, id: 'a', callId: 'x' }).ended({ result: 'refused' });
      await waitFor(async () => (await count('file', 'failed')) > before, 3000);
      const dropped = await count('file', 'dropped');
      await w.close(50);
      w = undefined;
      expect(await count('file', 'dropped')).toBe(dropped + 1);
      return;
    }
    const dir = scratchDir('cdr-');
    chmodSync(dir, 0o500);
    const before = await count('file', 'failed');
    w = createCdrWriter({ file: join(dir, 'cdr.jsonl'), queue_max: 100 }, { log, reopenSignal: null });
    w.recorder.begin({ ...START, id: 'a', callId: 'x' }).ended({ result: 'refused' });
    await waitFor(async () => (await count('file', 'failed')) > before, 3000);
    await w.close(50);
    w = undefined;
  });
});

describe('sink queue', () => {
  it('keeps order across failures, bounds what waits, drops the oldest', async () => {
    const got: number[] = [];
    let fail = true;
    const counts = { written: 0, failed: 0, dropped: 0 };
    const q = new SinkQueue<number>(async (items) => {
      if (fail) throw new Error('down');
      got.push(...items);
    }, { written: (n) => { counts.written += n; }, failed: (n) => { counts.failed += n; }, dropped: (n) => { counts.dropped += n; } },
    { max: 5, batch: 2, minBackoffMs: 20, maxBackoffMs: 40 });
    for (let i = 1; i <= 8; i++) q.push(i);
    await new Promise((r) => setTimeout(r, 60));
    expect(counts.failed).toBeGreaterThan(0);
    expect(q.pending).toBeLessThanOrEqual(5);
    fail = false;
    expect(await q.flush(2000)).toBe(true);
    expect(got).toEqual([4, 5, 6, 7, 8]);
    expect(counts.dropped).toBe(3);
    expect(counts.written).toBe(5);
  });
});
