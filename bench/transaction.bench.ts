// Transaction-layer matching cost with 10 000 live transactions of each kind.
// Run: npx tsx bench/transaction.bench.ts   (prints medians of 7 runs)
// Messages are pre-parsed SipMessage objects: this measures the layer, not the parser.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { HeaderField, SipRequest, SipResponse } from '../src/engine/message/types.js';
import type { Clock } from '../src/engine/transport/types.js';
import { TransactionLayer, buildResponse, type ServerTransaction } from '../src/engine/transaction/index.js';

const LIVE = 10_000;
const OPS = 200_000;
const RUNS = 7;

// Timers never fire: we measure lookups, not retransmissions.
const inertClock: Clock = { now: () => 0, setTimeout: () => 1, clearTimeout: () => {} };
const EMPTY = Buffer.alloc(0);
const h = (name: string, raw: string, value: string): HeaderField => ({ name, raw, value });

function req(method: string, branch: string, i: number): SipRequest {
  return {
    kind: 'request',
    method,
    uri: `sip:user${i}@biloxi.example`,
    headers: [
      h('via', 'Via', `SIP/2.0/UDP 192.0.2.10:5060;branch=${branch};rport`),
      h('via', 'Via', 'SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKlower'),
      h('max-forwards', 'Max-Forwards', '70'),
      h('from', 'From', `"Alice" <sip:alice@atlanta.example>;tag=f${i}`),
      h('to', 'To', `<sip:user${i}@biloxi.example>`),
      h('call-id', 'Call-ID', `call-${i}@atlanta.example`),
      h('cseq', 'CSeq', `1 ${method}`),
      h('contact', 'Contact', '<sip:alice@192.0.2.10:5060>'),
    ],
    body: EMPTY,
  };
}

const servers: ServerTransaction[] = [];
const layer = new TransactionLayer({
  clock: inertClock,
  send: () => undefined,
  tu: {
    request: (txn) => void servers.push(txn),
    ack: () => {},
    response: () => {},
    retransmitted2xx: () => {},
    timeout: () => {},
    transportError: () => {},
  },
});

const peer = { protocol: 'udp' as const, address: '198.51.100.7', port: 5080 };
const peerMeta = { source: peer };
const forgedMeta = { source: { ...peer, port: 5999 } };
// A gc() for the memory estimate without extra node flags.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const clientResponses: SipResponse[] = [];
const retransmittedRequests: SipRequest[] = [];
const prebuilt: Array<[SipRequest, SipResponse, SipRequest]> = [];
for (let i = 0; i < LIVE; i++) {
  const r = req('OPTIONS', `z9hG4bKc${i}x`, i);
  prebuilt.push([r, buildResponse(r, 200, 'OK', { toTag: `t${i}` }), req('INVITE', `z9hG4bKs${i}y`, i)]);
}
const heapBefore = heap();
for (let i = 0; i < LIVE; i++) {
  const [r, res, s] = prebuilt[i]!;
  layer.sendRequest(r, peer);
  layer.receive(res, peerMeta); // → Completed: later copies are retransmissions (absorbed)
  clientResponses.push(res);
  layer.receive(s, { source: { protocol: 'udp', address: '192.0.2.10', port: 5060 } });
  retransmittedRequests.push(s);
}
for (const s of servers) if (s.kind === 'ist') s.sendTrying();
const heapAfter = heap();
const strays = clientResponses.slice(0, 1000).map((r, i) => {
  const c = { ...r, headers: r.headers.slice() };
  c.headers[0] = h('via', 'Via', `SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnobody${i}`);
  return c;
});
const srcMeta = { source: { protocol: 'udp' as const, address: '192.0.2.10', port: 5060 } };

// Rates from CPU time (user+system of this process), which a shared, loaded machine distorts
// far less than wall-clock time; the wall-clock rate is printed beside it.
function measure(name: string, op: (i: number) => void): void {
  const cpuRates: number[] = [];
  const wallRates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) op(i);
    const ns = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    cpuRates.push(OPS / ((c.user + c.system) / 1e6));
    wallRates.push(OPS / (ns / 1e9));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  const cpu = median(cpuRates);
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US').padStart(11);
  console.log(`${name.padEnd(56)} ${fmt(cpu)} /s cpu (${(1e9 / cpu).toFixed(0).padStart(5)} ns/op)  ${fmt(median(wallRates))} /s wall`);
}

{
  // Calibration for a shared machine: CPU time of a trivial loop (about 10 ms on an idle modern core).
  const c0 = process.cpuUsage();
  let acc = 0;
  for (let i = 0; i < 10_000_000; i++) acc += i & 7;
  const c = process.cpuUsage(c0);
  console.log(`calibration: 1e7 trivial loop iterations took ${((c.user + c.system) / 1000).toFixed(0)} ms cpu (${acc > 0 ? 'ok' : ''})`);
}
console.log(`live transactions: ${layer.clientCount} client, ${layer.serverCount} server; ${OPS} ops per run, median of ${RUNS}`);
console.log(`heap per live transaction (layer state, incl. serialized request/response bytes, excl. the parsed messages): ${Math.round((heapAfter - heapBefore) / (2 * LIVE))} bytes`);
measure('raw lookup findClientTransaction(branch, method)', (i) => {
  layer.findClientTransaction(`z9hG4bKc${i % LIVE}x`, 'OPTIONS');
});
measure('receive(retransmitted response) → matched, absorbed', (i) => {
  layer.receive(clientResponses[i % LIVE]!, peerMeta);
});
measure('receive(response from wrong source) → forged, dropped', (i) => {
  layer.receive(clientResponses[i % LIVE]!, forgedMeta);
});
measure('receive(response, unknown branch) → stray, dropped', (i) => {
  layer.receive(strays[i % 1000]!, peerMeta);
});
measure('receive(retransmitted INVITE) → matched, 100 resent', (i) => {
  layer.receive(retransmittedRequests[i % LIVE]!, srcMeta);
});
let n = 0;
measure('new NIST + 200 over TCP (create, respond, terminate)', () => {
  n++;
  const r = req('OPTIONS', `z9hG4bKnew${n}`, n);
  const before = servers.length;
  layer.receive(r, { source: { protocol: 'tcp', address: '192.0.2.10', port: 40000 }, connectionId: 'c' });
  servers[before]!.respond(buildResponse(r, 200, 'OK', { toTag: 'x' }));
  servers.length = before;
});
console.log(`counters: ${JSON.stringify(layer.counters)}`);
