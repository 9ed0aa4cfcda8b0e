// Issue #16.1: after any load, every count returns to zero once RFC 3261 timers expire.
// SIPp uac → `peergate start` → SIPp uas, INVITE…ACK…BYE with no hold time (the reporter's
// policy of bench/b2bua.bench.ts), in three variants: no media with the memory store, media
// anchored on a real rtpengine, and the store in Redis. Counts are read from /metrics, from
// rtpengine over ng and from Redis itself. The variants take turns for their start and load
// (one load on the machine at a time, as each asserts no failed call) and wait out their
// timers side by side: the waits are most of the file's time and cost no CPU.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePorts, runSipp, startUas, waitFor, stopInOrder, type Proc } from '../helpers/procs.js';
import { startTwoSided, sumMetric, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';

/** A rate a loaded 2-core CI machine keeps up with (no datagram loss), for ~8 s. */
const RATE = Number(process.env.STUCK_LOAD_RATE ?? 150);
const SECONDS = 8;
const TOTAL = RATE * SECONDS;
/** RFC 3261 T1 of the node (policy engine.sip_timers): what is checked is that everything is
 *  gone once the timers ran, not the RFC's 32 s, so Timers J/L/M run 64*T1 = 16 s. Not lower:
 *  at 100 ms the node retransmits to SIPp whenever a loaded machine answers slower than that,
 *  and the rtpengine variant lost calls on a busy machine where the RFC's T1 did not. */
const T1 = 250;

let uasPort: number;
let uas: Proc;

/** One variant's start and load at a time; their timer waits overlap. */
let turn: Promise<unknown> = Promise.resolve();
function inTurn<T>(f: () => Promise<T>): Promise<T> {
  const run = turn.then(f);
  turn = run.catch(() => undefined);
  return run;
}

beforeAll(async () => {
  [uasPort] = await freePorts(1) as [number];
  uas = startUas('127.0.0.3', uasPort, { extra: ['-max_socket', '5000'] });
});

afterAll(() => stopInOrder(uas));

function node(extra: Record<string, unknown>): Promise<{ pg: RunningPeergate; target: string }> {
  return startTwoSided(`sip:127.0.0.3:${uasPort}`, {
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    engine: { sip_timers: { t1_ms: T1 } },
    ...extra,
  });
}

const COUNTS = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions', 'peergate_limit_sessions_local', 'peergate_media_sessions'];

/** The load: every call set up and ended by the caller's BYE, none failed. */
async function load(target: string): Promise<void> {
  const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(RATE), '-m', String(TOTAL), '-l', String(RATE * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: SECONDS * 4 + 20 });
  expect(r.successful).toBe(TOTAL);
  expect(r.failed).toBe(0);
}

/** After the load, wait (bounded: Timers J/L/M are 64*T1) for every count to be zero. */
async function drain(pg: RunningPeergate, others: () => Promise<Record<string, number>> = async () => ({})): Promise<void> {
  let last: Record<string, number> = {};
  const read = async () => {
    const text = await pg.metrics();
    const out: Record<string, number> = {};
    for (const n of COUNTS) out[n] = sumMetric(text, n);
    return { ...out, ...(await others()) };
  };
  await waitFor(async () => {
    last = await read();
    return Object.values(last).every((v) => v === 0);
  }, 64 * T1 + 20_000, 250, 'every count back to zero').catch(() => undefined);
  expect(last).toEqual(Object.fromEntries(Object.keys(last).map((k) => [k, 0])));
  // Every call ended as a caller's BYE: nothing was ended by a timer or reconciliation.
  expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(TOTAL);
}

describe.concurrent('no session outlives its call (issue #16.1)', () => {
  it(`no media, memory store: ${TOTAL} calls at ${RATE}/s leave nothing behind`, async () => {
    let pg: RunningPeergate | undefined;
    try {
      await inTurn(async () => {
        const n = await node({ media: { anchoring: false } });
        pg = n.pg;
        await load(n.target);
      });
      await drain(pg!);
    } finally { await pg?.stop(); }
  }, 150_000);

  it(`media anchored on rtpengine: ${TOTAL} calls at ${RATE}/s leave no rtpengine session`, async () => {
    let rtp: TestRtpengine | undefined;
    let pg: RunningPeergate | undefined;
    try {
      await inTurn(async () => {
        rtp = await startRtpengine({ portSpan: 8000 });
        const n = await node({ media: { anchoring: true, rtpengine: [{ address: rtp.address }] } });
        pg = n.pg;
        await load(n.target);
      });
      await drain(pg!, async () => ({ rtpengine_calls: (await rtp!.calls()).length }));
      expect(await pg!.metric('peergate_media_calls_total')).toBeGreaterThan(0);
    } finally {
      await pg?.stop();
      await rtp?.stop();
    }
  }, 150_000);

  it(`store in Redis: ${TOTAL} calls at ${RATE}/s leave no session entry in Redis`, async () => {
    let redis: TestRedis | undefined;
    let pg: RunningPeergate | undefined;
    const { Redis } = await import('ioredis');
    let client: InstanceType<typeof Redis> | undefined;
    try {
      await inTurn(async () => {
        redis = await startRedis();
        const n = await node({ media: { anchoring: false }, store: { redis: { url: redis.url, on_failure: 'fail_closed' } } });
        pg = n.pg;
        await load(n.target);
      });
      const c = client = new Redis(redis!.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await c.connect();
      await drain(pg!, async () => ({
        redis_global_scope: await c.zcard('peergate:{s}:scope:global'),
        redis_peer_scope: await c.zcard('peergate:{s}:scope:peer:carrier-a'),
        redis_session_keys: (await c.keys('peergate:{s}:sid:*')).length,
      }));
    } finally {
      client?.disconnect();
      await pg?.stop();
      await redis?.stop();
    }
  }, 150_000);
});
