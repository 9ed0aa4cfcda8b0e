// RFC 6404 §4.9: a flood from a source that is no peer is dropped by the engine's shield
// before parsing, while a real peer's calls keep succeeding.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePorts, runSipp, startUas, startProcess, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const FLOOD_IP = '127.0.0.9';
const FLOOD_SECONDS = 6;
const FLOOD_PPS = 25_000;

let pg: RunningPeergate;
let p: { peer: number; core: number; ops: number; uas: number };

beforeAll(async () => {
  const [peer, core, ops, uas] = await freePorts(4);
  p = { peer: peer!, core: core!, ops: ops!, uas: uas! };
  startUas(CORE_IP, p.uas);
  pg = await startPeergate({
    listen: [listener('peer-udp', p.peer), listener('core-udp', p.core)],
    // Every source is known by address, so the engine admits only these before parsing.
    core: { targets: [`sip:${CORE_IP}:${p.uas}`], addresses: [`${CORE_IP}/32`] },
    // Signalling under flood is what is measured; an rtpengine would only compete for the two cores.
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg));

/** A separate process sends `pps` INVITE-sized datagrams per second for `seconds`, then reports what it sent. */
const FLOODER = `
const dgram = require('node:dgram');
const [addr, port, pps, seconds] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const msg = Buffer.from('INVITE sip:x@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/UDP ${FLOOD_IP}:9;branch=z9hG4bKflood\\r\\n' + 'X-Junk: ' + 'a'.repeat(600) + '\\r\\n\\r\\n');
s.bind(0, addr, () => {
  let sent = 0; const start = Date.now(); const total = Number(pps) * Number(seconds);
  const tick = () => {
    const due = Math.min(total, Math.floor((Date.now() - start) / 1000 * Number(pps)));
    let burst = 0;
    while (sent < due && burst < 2000) { s.send(msg, Number(port), '127.0.0.1'); sent++; burst++; }
    if (sent < total && Date.now() - start < Number(seconds) * 1000 + 2000) setImmediate(tick);
    else setTimeout(() => { console.log(JSON.stringify({ sent, ms: Date.now() - start })); s.close(); }, 50);
  };
  tick();
});`;

describe('flood from a non-peer source', () => {
  it(`drops a ${FLOOD_PPS}/s flood before parsing while the peer's calls succeed ≥ 99%`, async () => {
    const droppedBefore = await pg.metric('peergate_engine_shield_dropped_total');
    const flooder = startProcess(process.execPath, ['-e', FLOODER, FLOOD_IP, String(p.peer), String(FLOOD_PPS), String(FLOOD_SECONDS)]);
    const calls = runSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '100', '-r', '20', '-d', '100'], { timeoutS: 40 });
    await flooder.exited;
    const report = JSON.parse(flooder.output().trim().split('\n').pop()!) as { sent: number; ms: number };
    const r = await calls;
    const rate = report.sent / (report.ms / 1000);
    console.log(`flood: ${report.sent} datagrams in ${report.ms} ms (${rate | 0}/s); calls ${r.successful} ok, ${r.failed} failed`);
    expect(rate).toBeGreaterThanOrEqual(20_000);
    expect(r.successful).toBeGreaterThanOrEqual(99);
    const dropped = (await pg.metric('peergate_engine_shield_dropped_total')) - droppedBefore;
    // Loopback can lose datagrams under load, but most of the flood must have reached the shield and died there.
    expect(dropped).toBeGreaterThan(report.sent * 0.5);
  });
});
