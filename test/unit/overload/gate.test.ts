// The overload gate in front of the real UA core (parser, core, transaction layer), with a
// clock whose timers can run late (the lag probe measures exactly that).
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../helpers/manual-clock.js';
import { gatedCore, LOCAL, PEER } from '../../helpers/gated-core.js';
import { OverloadGate, type OverloadOptions } from '../../../src/engine/overload/index.js';
import { MIN_BACKLOG_BYTES } from '../../../src/engine/overload/gate.js';

function harness(opts: OverloadOptions = {}, tryingDelayMs?: number) {
  const h = gatedCore({ probeMs: 20, intervalMs: 100, onsetIntervals: 1, ...opts }, tryingDelayMs ?? 0);
  const feed = (text: string) => h.core.onPacket({ data: Buffer.from(text), source: PEER, local: LOCAL });
  const fromApp = (txnId: string, sip: string) => h.core.onSip(h.app, ['m', 'sip', txnId, ''], sip);
  return { ...h, feed, fromApp };
}

const via = (b: string, extra = '') => `Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${b}${extra}\r\n`;
const INVITE = (id: string, extra = '', viaExtra = '') => `INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\n${via(id, viaExtra)}Max-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${id}\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:6000>\r\n${extra}Content-Length: 0\r\n\r\n`;
const inDialog = (method: string, id: string, tag: string, cseq: number, b: string) => `${method} sip:svc@127.0.0.1:5070 SIP/2.0\r\n${via(b)}Max-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=${tag}\r\nCall-ID: ${id}\r\nCSeq: ${cseq} ${method}\r\nContent-Length: 0\r\n\r\n`;
const txnOf = (frame: string) => frame.split('\r\n')[0]!.split('|')[8]!;

/** Put the gate into shedding: timers run `lagMs` late for `ms`. */
function overload(h: ReturnType<typeof harness>, lagMs: number, ms: number) {
  h.clock.lag = lagMs;
  h.clock.advance(ms);
  h.clock.lag = 0;
}

describe('overload gate in front of the UA core', () => {
  it('no overload: every new INVITE reaches the app; nothing is shed', () => {
    const h = harness();
    for (let i = 0; i < 20; i++) { h.feed(INVITE(`ok${i}`)); h.clock.advance(10); }
    expect(h.frames).toHaveLength(20);
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(0);
    expect(Object.values(h.gate.totals())).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('event-loop lag: new INVITEs get 503 + Retry-After from the engine, the app sees none of them', () => {
    const h = harness({ maxLossPercent: 100, stepPercent: 50, retryAfterS: 3 });
    overload(h, 80, 400);
    expect(h.gate.state.loss).toBe(100);
    h.feed(INVITE('shed-1'));
    expect(h.frames).toHaveLength(0);
    const r = h.sent.find((s) => s.startsWith('SIP/2.0 503 Service Unavailable\r\n'))!;
    expect(r).toContain('\r\nRetry-After: 3\r\n');
    expect(r).toMatch(/\r\nTo: <sip:svc@127\.0\.0\.1>;tag=\w+\r\n/);
    expect(r).toContain('\r\nCall-ID: shed-1\r\n');
    expect(h.sent.some((s) => s.startsWith('SIP/2.0 100'))).toBe(false);
    expect(h.gate.totals().event_loop_lag).toBe(1);
    // Refused statelessly (RFC 3261 §8.2.7): no transaction is left, so a retransmission (its 503
    // lost) is a new request, decided and counted again.
    expect(h.core.stats().serverTransactions).toBe(0);
    h.feed(INVITE('shed-1'));
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(2);
    expect(h.gate.totals().event_loop_lag).toBe(2);
    // The ACK of the 503 finds no transaction and no dialog: dropped, nothing sent, no app frame.
    const sent = h.sent.length;
    h.feed(`ACK sip:svc@127.0.0.1:5070 SIP/2.0\r\n${via('shed-1')}Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=x\r\nCall-ID: shed-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
    expect(h.frames).toHaveLength(0);
    expect(h.sent.length).toBe(sent);
    expect(h.core.stats().serverTransactions).toBe(0);
  });

  it('a refusal is decided before the app view and sent statelessly: one 503, no timer, no transaction (RFC 3261 §8.2.7)', () => {
    const h = harness({ stepPercent: 100, retryAfterS: 2 });
    overload(h, 100, 800);
    h.gate.close(); // its probe would keep the clock's timer list non-empty
    h.clock.lag = 0;
    const timersBefore = h.clock.pending;
    h.feed(INVITE('g1'));
    // No Timer G or H, no unanswered timer, no Timer I window: the transaction ended with the 503.
    expect(h.clock.pending - timersBefore).toBe(0);
    expect(h.core.stats().serverTransactions).toBe(0);
    const first = h.sent.filter((s) => s.startsWith('SIP/2.0 503'));
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:6000;branch=z9hG4bK-g1;rport=6000\r\nFrom: <sip:a@127\.0\.0\.1>;tag=fa\r\nTo: <sip:svc@127\.0\.0\.1>;tag=\w+\r\nCall-ID: g1\r\nCSeq: 1 INVITE\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n$/);
    h.clock.advance(500 + 1000 + 5); // T1, then 2·T1: a stateful transaction would have resent it twice
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(1);
    h.feed(`ACK sip:svc@127.0.0.1:5070 SIP/2.0\r\n${via('g1')}Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=x\r\nCall-ID: g1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
    expect(h.clock.pending - timersBefore).toBe(0);
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(1);
    expect(h.core.stats().serverTransactions).toBe(0);
    expect(h.frames).toHaveLength(0);
  });

  it('an unanswered admitted INVITE still has its unanswered timer; a bad top Via still gets 400 while shedding', () => {
    const h = harness({ stepPercent: 100 });
    h.feed(INVITE('u1'));
    expect(h.frames).toHaveLength(1);
    overload(h, 100, 800);
    h.feed(INVITE('bad').replace('Via: SIP/2.0/UDP 127.0.0.1:6000;', 'Via: SIP/2.0/UDP 127.0.0.1:6000 x y;'));
    expect(h.sent.some((s) => s.startsWith('SIP/2.0 400') && s.includes('Call-ID: bad'))).toBe(true);
    expect(h.sent.some((s) => s.startsWith('SIP/2.0 503') && s.includes('Call-ID: bad'))).toBe(false);
    expect(h.core.stats().serverTransactions).toBe(1);
    h.clock.advance(70_000); // the engine forgets a request no app answered (spec §7.10)
    expect(h.core.stats().serverTransactions).toBe(0);
  });

  it('requests of an established call still reach the app while every new INVITE is shed', () => {
    const h = harness({ stepPercent: 100 });
    h.feed(INVITE('held'));
    h.fromApp(txnOf(h.frames.shift()!), 'SIP/2.0 200 OK\r\nContact: <sip:b@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n');
    const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(h.sent.find((s) => s.startsWith('SIP/2.0 200'))!)![1]!;
    h.frames.length = 0;
    overload(h, 100, 800);
    expect(h.gate.state.loss).toBe(100);
    h.feed(inDialog('ACK', 'held', tag, 1, 'ack1'));
    h.feed(inDialog('INVITE', 'held', tag, 2, 'reinv'));
    h.feed(inDialog('BYE', 'held', tag, 3, 'bye'));
    h.feed(INVITE('new-1'));
    const methods = h.frames.map((f) => f.split('\r\n')[1]!.split(' ')[0]);
    expect(methods).toEqual(['ACK', 'INVITE', 'BYE']);
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(1);
  });

  it('a CANCEL for an admitted INVITE is never shed', () => {
    const h = harness({ stepPercent: 100 });
    h.feed(INVITE('c1'));
    overload(h, 100, 800);
    h.feed(`CANCEL sip:svc@127.0.0.1:5070 SIP/2.0\r\n${via('c1')}Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n`);
    expect(h.sent.some((s) => s.startsWith('SIP/2.0 200 OK') && s.includes('CSeq: 1 CANCEL'))).toBe(true);
    expect(h.sent.some((s) => s.startsWith('SIP/2.0 487'))).toBe(true);
  });

  it('partial loss refuses that share; recovery: after the lag ends, no call is shed', () => {
    const h = harness({ stepPercent: 20, maxLossPercent: 40 });
    overload(h, 80, 300);
    expect(h.gate.state.loss).toBe(40);
    for (let i = 0; i < 10; i++) h.feed(INVITE(`p${i}`));
    expect(h.frames).toHaveLength(6);
    h.clock.advance(500);
    expect(h.gate.state.loss).toBe(0);
    h.frames.length = 0;
    for (let i = 0; i < 10; i++) h.feed(INVITE(`r${i}`));
    expect(h.frames).toHaveLength(10);
  });

  it('the app backlog (INVITEs it has not answered) is a signal; answered ones leave it', () => {
    const h = harness({ pendingHigh: 5, pendingLow: 2, stepPercent: 100 });
    for (let i = 0; i < 8; i++) h.feed(INVITE(`b${i}`));
    h.clock.advance(200);
    expect(h.gate.state.pending).toBe(8);
    expect(h.gate.state.reason).toBe('pending_setups');
    h.feed(INVITE('b-shed'));
    expect(h.gate.totals().pending_setups).toBe(1);
    for (const f of h.frames.splice(0)) h.fromApp(txnOf(f), 'SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n');
    h.clock.advance(800);
    expect(h.gate.state.pending).toBe(0);
    expect(h.gate.state.loss).toBe(0);
  });

  it('the priority predicate exempts emergency calls from shedding', () => {
    const h = harness({ stepPercent: 100 });
    h.gate.setPriorityPredicate((req) => req.headers.some((x) => x.name === 'resource-priority'));
    overload(h, 100, 800);
    h.feed(INVITE('normal'));
    h.feed(INVITE('prio', 'Resource-Priority: esnet.0\r\n'));
    expect(h.frames).toHaveLength(1);
    expect(h.frames[0]).toContain('Call-ID: prio');
    expect(h.gate.exemptedCount).toBe(1);
  });

  it('RFC 7339: a client with oc in its Via hears the loss in every response; others get no oc', () => {
    const h = harness({ stepPercent: 30, maxLossPercent: 30, ocValidityMs: 1500 });
    h.feed(INVITE('oc0', '', ';oc;oc-algo="loss,rate"'));
    expect(h.sent[0]).toMatch(/^SIP\/2\.0 100 Trying\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:6000;branch=z9hG4bK-oc0;rport=6000;oc=0;oc-algo="loss";oc-validity=0;oc-seq=[\d.]+\r\n/);
    overload(h, 80, 800);
    h.sent.length = 0;
    for (let i = 1; i <= 4; i++) h.feed(INVITE(`oc${i}`, '', ';oc'));
    const vias = h.sent.map((s) => /\r\nVia: ([^\r]*)/.exec(s)![1]!);
    expect(vias.every((v) => /;oc=30;oc-algo="loss";oc-validity=1500;oc-seq=[\d.]+$/.test(v))).toBe(true);
    expect(h.sent.filter((s) => s.startsWith('SIP/2.0 503'))).toHaveLength(1);
    // The app's own response to an admitted INVITE carries it too.
    const f = h.frames.find((x) => x.includes('Call-ID: oc1'))!;
    h.fromApp(txnOf(f), 'SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
    expect(h.sent.at(-1)).toMatch(/;oc=30;oc-algo="loss";oc-validity=1500;/);
    h.sent.length = 0;
    h.feed(INVITE('no-oc'));
    h.feed(INVITE('rate-only', '', ';oc;oc-algo="rate"'));
    expect(h.sent.filter((s) => s.includes(';oc='))).toHaveLength(0);
  });

  it('100 Trying deferred 200 ms (engine.trying_delay_ms): a shed INVITE gets its 503 and never a 100; an admitted one its 100 with the oc feedback', () => {
    const h = harness({ maxLossPercent: 100, stepPercent: 50 }, 200);
    h.feed(INVITE('slow', '', ';oc'));
    expect(h.sent).toHaveLength(0);
    h.clock.advance(200);
    expect(h.sent).toHaveLength(1);
    expect(h.sent[0]).toMatch(/^SIP\/2\.0 100 Trying\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:6000;branch=z9hG4bK-slow;rport=6000;oc=0;oc-algo="loss";/);
    overload(h, 80, 400);
    expect(h.gate.state.loss).toBe(100);
    h.sent.length = 0;
    h.feed(INVITE('shed-2'));
    h.clock.advance(450);
    expect(h.sent.map((s) => s.split('\r\n')[0])).toEqual(['SIP/2.0 503 Service Unavailable']);
    expect(h.frames.filter((f) => f.includes('Call-ID: shed-2'))).toHaveLength(0);
  });

  it('close() stops the probe: loss no longer moves', () => {
    const h = harness();
    h.gate.close();
    overload(h, 200, 1000);
    expect(h.gate.state.loss).toBe(0);
  });
});

describe('overload gate: the UDP receive-queue signal', () => {
  function queueGate(q: { fill: number; bytes: number; drops: number }) {
    const clock = new ManualClock();
    let reads = 0;
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => { reads++; return { ...q }; },
    }, { probeMs: 20, intervalMs: 100 });
    return { clock, gate, q, reads: () => reads };
  }

  it('is read about once per control interval, not every probe tick', () => {
    const g = queueGate({ fill: 0, bytes: 0, drops: 0 });
    g.clock.advance(1000); // 50 ticks, 10 intervals
    expect(g.reads()).toBeGreaterThanOrEqual(9);
    expect(g.reads()).toBeLessThanOrEqual(11);
    expect(g.gate.state.loss).toBe(0);
    g.gate.close();
  });

  it('is not read while the node is idle (nothing read since an empty reading, ticks on time); any datagram read or a late tick reads it again', () => {
    const clock = new ManualClock();
    let reads = 0;
    let read = 0;
    let bytes = 0;
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => { reads++; return { fill: bytes / (4 * 1024 * 1024), bytes, drops: 0 }; },
      chargedBytesRead: () => read,
    }, { probeMs: 20, intervalMs: 100 });
    clock.advance(1000);
    expect(reads).toBe(1); // the first reading; then nothing was read
    expect(gate.state.queueBytes).toBe(0);
    read += 2_300; // one INVITE read: the next interval reads the queue
    clock.advance(100);
    expect(reads).toBe(2);
    // A backlog found: read again at every interval even if the listeners read nothing more.
    bytes = 300 * 1024;
    read += 2_300;
    clock.advance(100);
    expect(reads).toBe(3);
    expect(gate.state.queueBytes).toBe(300 * 1024);
    clock.advance(300);
    expect(reads).toBe(6);
    expect(gate.state.loss).toBeGreaterThan(0);
    bytes = 0;
    clock.advance(100);
    expect(reads).toBe(7);
    const idleFrom = reads;
    clock.advance(500);
    expect(reads).toBe(idleFrom);
    // A stalled loop (ticks 30 ms late) may hide a queue: it is read, though nothing was read.
    clock.lag = 30;
    clock.advance(200);
    clock.lag = 0;
    expect(reads).toBeGreaterThan(idleFrom);
    gate.close();
  });

  it('a calm node is probed every 100 ms, not every 20; a datagram read, a transaction or a late tick makes it busy again', () => {
    const clock = new ManualClock();
    let ticks = 0;
    const at: number[] = [];
    const set = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) => set(() => { ticks++; at.push(clock.now()); fn(); }, ms);
    let read = 0;
    let transactions = 0;
    const gate = new OverloadGate(clock, {
      transactions: () => transactions, dialogs: () => 0,
      receiveQueue: () => ({ fill: 0, bytes: 0, drops: 0 }),
      chargedBytesRead: () => read,
    }, { probeMs: 20, intervalMs: 100 });
    clock.advance(1000);
    ticks = 0;
    clock.advance(1000);
    expect(ticks).toBe(10);
    // Traffic: every tick sees new bytes read.
    ticks = 0;
    for (let i = 0; i < 50; i++) { read += 1_000; clock.advance(20); }
    expect(ticks).toBeGreaterThanOrEqual(45);
    // Nothing read, but transactions alive (e.g. a TLS peer's calls): still busy.
    transactions = 3;
    ticks = 0;
    clock.advance(1000);
    expect(ticks).toBeGreaterThanOrEqual(45);
    transactions = 0;
    clock.advance(200);
    ticks = 0;
    clock.advance(1000);
    expect(ticks).toBe(10);
    // A tick 30 ms late (a stall): the next probe comes 20 ms after it, not 100.
    clock.lag = 30;
    clock.advance(130);
    clock.lag = 0;
    clock.advance(60);
    const late = at.findIndex((t, i) => i > 0 && t - at[i - 1]! >= 130);
    expect(late).toBeGreaterThan(0);
    expect(at[late + 1]! - at[late]!).toBeLessThanOrEqual(20 + 30);
    gate.close();
  });

  it('is read on the tick that closes a control interval, so that decision sees the queue as it is', () => {
    const clock = new ManualClock();
    const at: number[] = [];
    // The queue fills only from 110 ms on: a reading taken before the closing tick would miss it.
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => { at.push(clock.now()); return { fill: 0.5, bytes: clock.now() >= 110 ? 900 * 1024 : 0, drops: 0 }; },
    }, { probeMs: 20, intervalMs: 100 });
    clock.advance(120);
    expect(at).toEqual([120]);
    expect(gate.state.queueBytes).toBe(900 * 1024);
    expect(gate.state.loss).toBeGreaterThanOrEqual(20);
    expect(gate.state.reason).toBe('receive_queue');
    clock.advance(200);
    expect(at).toEqual([120, 220, 320]);
    gate.close();
  });

  it("turns the queue's bytes into a delay by the rate the listeners read at (PIE): the same queue read twice as fast is half the delay", () => {
    const clock = new ManualClock();
    let read = 0;
    let perMs = 20_000; // charged bytes read per ms
    let last = 0;
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => ({ fill: 0.1, bytes: 100 * 1024, drops: 0 }),
      chargedBytesRead: () => { read += (clock.now() - last) * perMs; last = clock.now(); return read; },
    }, { probeMs: 20, intervalMs: 100 });
    clock.advance(220); // readings at 120 (no rate yet) and 220
    expect(gate.state.queueDelayMs).toBeCloseTo((100 * 1024) / 20_000, 5);
    perMs = 40_000;
    clock.advance(100);
    expect(gate.state.queueDelayMs).toBeCloseTo((100 * 1024) / 40_000, 5);
    perMs = 0; // nothing read for a whole interval: a stalled loop, the delay is as long as it gets
    clock.advance(100);
    expect(gate.state.queueDelayMs).toBe(10_000);
    // 100 KiB over the 192 KiB high mark? No: the law never started, whatever the delay.
    expect(gate.state.loss).toBe(0);
    gate.close();
  });

  it('asks the loops\' utilisation once per control interval and reports it, without moving the loss (BENCHMARKS.md "Overload: headroom")', () => {
    const shed = (utilisation: number | undefined) => {
      const clock = new ManualClock();
      let bytes = 900 * 1024;
      let asked = 0;
      const gate = new OverloadGate(clock, {
        transactions: () => 0, dialogs: () => 0,
        receiveQueue: () => ({ fill: bytes / (4 * 1024 * 1024), bytes, drops: 0 }),
        ...(utilisation !== undefined ? { utilisation: () => { asked++; return utilisation; } } : {}),
      }, { probeMs: 20, intervalMs: 100 });
      clock.advance(520);
      bytes = 0;
      clock.advance(100);
      const state = gate.state;
      gate.close();
      return { loss: state.loss, utilisation: state.utilisation, asked };
    };
    const none = shed(undefined);
    expect(none.utilisation).toBeUndefined();
    expect(none.loss).toBeGreaterThan(0);
    const busy = shed(0.3);
    expect(busy.asked).toBe(6); // the closing ticks at 20, 120, …, 620 ms
    expect(busy.utilisation).toBe(0.3);
    expect(busy.loss).toBe(none.loss);
  });

  it('a few datagrams waiting while the listeners read little are no backlog: a refusing node is not held refusing by them', () => {
    const clock = new ManualClock();
    let read = 0;
    let last = 0;
    let perMs = 20_000;
    let bytes = 900 * 1024;
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => ({ fill: bytes / (4 * 1024 * 1024), bytes, drops: 0 }),
      chargedBytesRead: () => { read += (clock.now() - last) * perMs; last = clock.now(); return read; },
    }, { probeMs: 20, intervalMs: 100 });
    clock.advance(500);
    expect(gate.state.loss).toBeGreaterThan(0);
    // Most INVITEs refused: the listener reads 50 B/ms, and each reading finds one INVITE and an
    // ACK waiting (≈ 3.6 KB charged): 72 ms by bytes over rate, far over the 10 ms target.
    perMs = 50;
    bytes = 3_584;
    clock.advance(100);
    expect(bytes).toBeLessThan(MIN_BACKLOG_BYTES);
    expect(gate.state.queueDelayMs).toBe(0);
    clock.advance(3_000);
    expect(gate.state.loss).toBe(0);
    // A real backlog at that read rate still counts.
    bytes = 64 * 1024;
    clock.advance(100);
    expect(gate.state.queueDelayMs).toBeCloseTo(bytes / 50, 5);
    gate.close();
  });

  // Each case: the queue as the gate starts, whether it sheds 500 ms later, the change, whether
  // it sheds `ms` after that.
  it.each([
    ['a drop counter already at 50 is history; one new drop sheds', { fill: 0, bytes: 0, drops: 50 }, false, { drops: 51 }, 200, true],
    // From 100 % the queue law takes ≈ 1.3 s down to 0 (its error is clipped, then 30 % off per
    // idle interval), where halving took 0.6 s: a lone spike of the reading must not drop it either.
    ['a queue of 900 KiB sheds at once; once empty the loss returns to 0', { fill: 0.9, bytes: 900 * 1024, drops: 0 }, true, { fill: 0, bytes: 0 }, 1500, false],
  ] as const)('%s', (_title, start, shedsFirst, change, ms, shedsAfter) => {
    const g = queueGate({ ...start });
    g.clock.advance(500);
    expect(g.gate.state.loss > 0).toBe(shedsFirst);
    if (shedsFirst) expect(g.gate.state.reason).toBe('receive_queue');
    Object.assign(g.q, change);
    g.clock.advance(ms);
    expect(g.gate.state.loss > 0).toBe(shedsAfter);
    g.gate.close();
  });
});

describe('overload metrics: the receive queues', () => {
  it('export the last queue share and the kernel drop counter of the reported gate', async () => {
    const { default: client } = await import('prom-client');
    const { reportGate } = await import('../../../src/engine/overload/metrics.js');
    const clock = new ManualClock();
    const gate = new OverloadGate(clock, {
      transactions: () => 0, dialogs: () => 0,
      receiveQueue: () => ({ fill: 0.3, bytes: 300 * 1024, drops: 7 }),
      utilisation: () => 0.42,
    }, { probeMs: 20, intervalMs: 100 });
    reportGate(gate);
    try {
      clock.advance(200);
      expect(await client.register.getSingleMetricAsString('peergate_udp_receive_queue_ratio')).toMatch(/^peergate_udp_receive_queue_ratio 0\.3$/m);
      expect(await client.register.getSingleMetricAsString('peergate_udp_receive_queue_bytes')).toMatch(/^peergate_udp_receive_queue_bytes 307200$/m);
      expect(await client.register.getSingleMetricAsString('peergate_udp_kernel_drops')).toMatch(/^peergate_udp_kernel_drops 7$/m);
      expect(await client.register.getSingleMetricAsString('peergate_overload_loop_utilisation_ratio')).toMatch(/^peergate_overload_loop_utilisation_ratio 0\.42$/m);
    } finally {
      reportGate(undefined);
      gate.close();
    }
  });
});
