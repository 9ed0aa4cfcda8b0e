// Call records (CDRs): the composition the app wires in. `createCdrWriter(policy.cdr)` gives
// the B2BUA its CallRecorder and owns the sinks: a JSON-lines file reopened on SIGUSR1 and an
// optional Redis stream. Writing never blocks or fails a call: each sink has a bounded queue,
// and failures (disk full, Redis down) are logged, counted and retried.
import type { Logger } from 'pino';
import { counter } from '../../ops/metrics.js';
import type { CallRecorder } from './events.js';
import { CallRecords, type CallRecord } from './record.js';
import { SinkQueue } from './queue.js';
import { FileSink, RedisStreamSink, type Line, type Sink } from './sinks.js';
import type { CdrPolicy } from './schema.js';

export type { CallRecorder, CallTrace, CallStart, CallEnd, CallAnswer, IdentityVerdict, EndedBy } from './events.js';
export { noCallRecorder } from './events.js';
export type { CallRecord } from './record.js';
export { CallRecords, sdpIsSrtp } from './record.js';

/** Records by sink and result: written, failed (a delivery attempt; retried), dropped (lost). */
export const cdrRecordsTotal = counter('peergate_cdr_records_total', 'Call records by sink and result (written, failed attempts, dropped)', ['sink', 'result']);

export interface CdrWriter {
  /** Give this to the B2BUA (`new B2bua({ ..., recorder })`). */
  readonly recorder: CallRecorder;
  /** Close and reopen the file before the next write (logrotate: rename, then SIGUSR1). */
  reopen(): void;
  /** Apply a reloaded policy's `cdr`: sinks whose settings changed are flushed, then replaced. */
  configure(next: CdrPolicy | undefined): Promise<void>;
  /** Flush what is waiting (at most `timeoutMs`), then close. Records after this are dropped and counted. */
  close(timeoutMs?: number): Promise<void>;
}

export interface CdrWriterOptions {
  log: Logger;
  /** The node id written in each record (pool). */
  node?: string;
  /** Signal that reopens the file; null: none (the caller calls reopen()). Default SIGUSR1. */
  reopenSignal?: NodeJS.Signals | null;
}

interface Active { key: string; sink: Sink; queue: SinkQueue<Line> }

/** Sinks built from `policy` (none when it is undefined); see CdrWriter. */
export function createCdrWriter(policy: CdrPolicy | undefined, opts: CdrWriterOptions): CdrWriter {
  const log = opts.log.child({ module: 'cdr' });
  let sinks: Active[] = [];
  const lastWarn = new Map<string, number>();

  const open = (key: string, sink: Sink, max: number): Active => {
    const name = sink.name;
    const queue = new SinkQueue<Line>((lines) => sink.deliver(lines), {
      written: (n) => cdrRecordsTotal.inc({ sink: name, result: 'written' }, n),
      failed: (n, err) => {
        cdrRecordsTotal.inc({ sink: name, result: 'failed' }, n);
        // One line per sink per 10 s is enough to tell an operator; the counter has the rest.
        const now = Date.now();
        if (now - (lastWarn.get(name) ?? 0) >= 10_000) {
          lastWarn.set(name, now);
          log.warn({ sink: name, err: err.message, pending: queue.pending + n }, 'call record write failed; will retry');
        }
      },
      dropped: (n) => {
        cdrRecordsTotal.inc({ sink: name, result: 'dropped' }, n);
        log.error({ sink: name, dropped: n }, 'call records dropped (queue full or closing)');
      },
    }, { max });
    return { key, sink, queue };
  };

  const wanted = (p: CdrPolicy | undefined): Array<{ key: string; make: () => Sink; max: number }> => {
    if (!p) return [];
    const out: Array<{ key: string; make: () => Sink; max: number }> = [];
    if (p.file) out.push({ key: `file:${p.file}`, make: () => new FileSink(p.file!), max: p.queue_max });
    if (p.redis_stream) {
      const r = p.redis_stream;
      out.push({ key: `redis:${JSON.stringify(r)}`, make: () => new RedisStreamSink(r), max: p.queue_max });
    }
    return out;
  };

  const retire = async (a: Active, timeoutMs: number): Promise<void> => {
    await a.queue.close(timeoutMs);
    await a.sink.close();
  };

  sinks = wanted(policy).map((w) => open(w.key, w.make(), w.max));

  const emit = (r: CallRecord): void => {
    try {
      const line: Line = { json: JSON.stringify(r), callId: r.call_id };
      for (const a of sinks) a.queue.push(line);
    } catch (err) {
      log.error({ err: String(err), call: r.id }, 'call record not serializable');
    }
  };
  // Without a sink (the default) a record is neither built nor serialised: that was ≈ 1% of
  // the CPU per call for nothing.
  const recorder = new CallRecords(emit, { ...(opts.node !== undefined ? { node: opts.node } : {}), wanted: () => sinks.length > 0 });

  const signal = opts.reopenSignal === undefined ? 'SIGUSR1' : opts.reopenSignal;
  const onSignal = (): void => { writer.reopen(); };
  if (signal) process.on(signal, onSignal);

  const writer: CdrWriter = {
    recorder,
    reopen() {
      if (sinks.some((a) => a.sink.name === 'file')) log.info('reopening call record file');
      for (const a of sinks) a.sink.reopen();
    },
    async configure(next) {
      const want = wanted(next);
      const keep = sinks.filter((a) => want.some((w) => w.key === a.key));
      const gone = sinks.filter((a) => !keep.includes(a));
      const added = want.filter((w) => !sinks.some((a) => a.key === w.key)).map((w) => open(w.key, w.make(), w.max));
      // New records go to the new set at once; the old sinks finish what they hold.
      sinks = [...keep, ...added];
      await Promise.all(gone.map((a) => retire(a, 5000)));
    },
    async close(timeoutMs = 5000) {
      if (signal) process.off(signal, onSignal);
      const all = sinks;
      sinks = [];
      await Promise.all(all.map((a) => retire(a, timeoutMs)));
    },
  };
  return writer;
}
