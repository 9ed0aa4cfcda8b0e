// Memory per held call (issue #18 item 5): an established call through `peergate start` must
// not keep the INVITE's drachtio-srf Request and Response objects (each with its parsed
// SipMessage and the received text) for its life: src/sbc/slim-dialog.ts swaps them for small
// stand-ins once both legs are up. Nor may it keep timer objects of its own (its RFC 4028 and
// maximum-duration timers are deadlines in one queue per process: src/sbc/session/deadlines.ts),
// or a closure per leg for the relay and the session (shared listeners: src/sbc/established.ts).
// Real SIPp on both sides; a heap snapshot of the running process (SIGUSR2), taken once every
// transaction of the calls has ended, counts the objects while the calls are held; then the
// calls end with BYE through the slimmed dialogs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, heldCalls, startUas, stopInOrder, waitFor, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';
import { heapCensus } from '../../bench/heap-census.js';

const CALLS = 40;
/** RFC 3261 T1 of the node (policy engine.sip_timers): the calls' transactions end 64*T1 after
 *  them (6.4 s, not 32 s); the calls only need to outlast that wait and the snapshot. */
const T1 = 100;
/** How long each call is held: the snapshot is taken ≈ 8 s in (1 s to set the calls up, 64*T1 for
 *  their transactions), so 20 s leaves it 12 s; the test checks the calls are all still up
 *  right before it signals the snapshot (a slow machine fails there, it cannot pass weaker). */
const HOLD_MS = 20_000;
let pg: RunningPeergate;
let uas: Proc;
let peerPort: number;

beforeAll(async () => {
  const [uasPort, p, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
  peerPort = p;
  uas = startUas(CORE_IP, uasPort);
  pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn' }, {
    media: { anchoring: false },
    // One process: the heap snapshot below must see the B2BUA's objects (with workers they live in
    // the worker processes, which this test does not snapshot).
    workers: 1,
    engine: { sip_timers: { t1_ms: T1 } },
  }), { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2`.trim() } });
}, 60_000);

afterAll(() => stopInOrder(pg, uas));

const snapshots = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).map((f) => join(dir, f));

describe('held calls keep no drachtio-srf Request or Response', () => {
  it(`${CALLS} held calls: 2 drachtio-srf Dialogs each and no INVITE Request/Response/SipMessage; BYE still ends them`, async () => {
    const calls = heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, CALLS, HOLD_MS, 150);
    await waitFor(async () => (await pg.metric('peergate_active_calls')) === CALLS, 20_000, 200, `${CALLS} calls up`);
    // Every transaction of the calls ends (Timer L/M: 64*T1): what is left is what a held call keeps.
    await waitFor(async () => (await pg.metric('peergate_engine_server_transactions')) === 0
      && (await pg.metric('peergate_engine_client_transactions')) === 0, 64 * T1 + 15_000, 250, 'the calls\' transactions to end');
    // The snapshot below must see the calls still held (HOLD_MS).
    expect(await pg.metric('peergate_active_calls')).toBe(CALLS);

    process.kill(pg.proc.pid, 'SIGUSR2');
    const file = (await waitFor(() => snapshots(pg.dir)[0], 60_000, 200, 'a heap snapshot'))!;
    // The snapshot is written on peergate's main thread: /metrics answers once it is complete.
    await waitFor(() => pg.metrics().then(() => true, () => false), 60_000, 500, 'peergate answering after the snapshot');
    let size = -1;
    await waitFor(() => { const now = statSync(file).size; const same = now === size; size = now; return same; }, 30_000, 300, 'the snapshot file complete');
    const census = await heapCensus(file);
    unlinkSync(file);
    const count = (name: string) => census.by.get(`object:${name}`)?.count ?? 0;

    // The control: the calls are there (an engine Dialog and a drachtio-srf Dialog per leg).
    expect(count('Dialog')).toBeGreaterThanOrEqual(4 * CALLS);
    // Before slimming: 2 Request, 2 Response and 4 SipMessage per held call. Now only what
    // requests in flight hold (none here), never one per call.
    for (const name of ['Request', 'Response', 'SipMessage']) expect(count(name), name).toBeLessThan(CALLS / 4);
    // One stand-in pair per drachtio-srf Dialog.
    expect(count('SlimRequest')).toBe(2 * CALLS);
    expect(count('SlimResponse')).toBe(2 * CALLS);

    // One record and one session per call...
    expect(count('EstablishedCall')).toBe(CALLS);
    expect(count('CallSession')).toBe(CALLS);
    // ...and no timer of its own: before, 3 node Timeouts per call (maximum duration, one RFC 4028
    // refresher per leg). What is left is the process's own timers, not one per call.
    expect(count('Timeout'), 'Timeout').toBeLessThan(CALLS / 2);
    // Each drachtio-srf Dialog's listener table is a fast-mode ListenerTable, not Node's
    // null-prototype dictionary (≈ 450 B each once the session and the relay listen).
    expect(count('ListenerTable')).toBe(2 * CALLS);

    // In-dialog requests still work on the stand-ins: every caller's BYE ends its call.
    const r = await calls;
    expect(r.failed).toBe(0);
    expect(r.successful).toBe(CALLS);
    await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 200, 'every call ended');
    expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(CALLS);
  }, 240_000);
});
