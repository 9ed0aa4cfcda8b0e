// Bans that cannot be turned against peers (issue #17.4), end to end: garbage sent from a
// socket bound to a configured UDP peer's address (what a spoofer's packets look like) earns
// strikes, but the ban is withheld, so the real peer's calls (SIPp from that address) all go
// through; the same garbage from an address that is no peer gets that address banned.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { freePorts, runSipp, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';

const STRANGER_IP = '127.0.0.9';

let pg: RunningPeergate;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number };

async function bound(ip: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, ip, () => res()); });
  return s;
}

/** `count` unparseable datagrams in bursts of 50 every 5 ms (bounded in count and time). */
async function flood(sock: Socket, count: number): Promise<void> {
  const junk = Buffer.from('INVITE \u0000\u0001 garbage\r\nVia: ;;;\r\n\r\n');
  for (let sent = 0; sent < count;) {
    for (let i = 0; i < 50 && sent < count; i++, sent++) sock.send(junk, ports.peerSip, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUas] = await freePorts(4);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUas! };
  startUas(CORE_IP, ports.coreUas);
  pg = await startPeergate(twoSidedPolicy({ peerPort: ports.peerSip, corePort: ports.coreSip, opsPort: ports.ops, coreTarget: `sip:${CORE_IP}:${ports.coreUas}`, peerIp: PEER_IP, logLevel: 'warn' }, {
    media: { anchoring: false },
    limits: { strikes: { threshold: 10, window_s: 60, ban_s: 120 } },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, transport: 'udp' }],
  }));
}, 60_000);

afterAll(() => stopInOrder(pg));

describe('strikes from a configured UDP peer’s address', () => {
  it('a garbage flood claiming the peer’s address does not stop its calls; strikes and the withheld ban are counted', async () => {
    const spoofer = await bound(PEER_IP);
    const strikes0 = await pg.metric('peergate_strikes_total', { kind: 'malformed' });
    const calls = runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '20', '-r', '10', '-d', '100'], { timeoutS: 40 });
    await flood(spoofer, 3000);
    const r = await calls;
    spoofer.close();
    expect(r.successful).toBe(20);
    expect(r.failed).toBe(0);
    expect(await pg.metric('peergate_strikes_total', { kind: 'malformed' })).toBeGreaterThanOrEqual(strikes0 + 10);
    await waitFor(async () => (await pg.metric('peergate_engine_shield_bans_withheld_total')) >= 1, 5000, 50, 'a withheld ban counted');
    expect(pg.proc.output()).toContain('ban withheld');
    expect(await pg.metric('peergate_engine_shield_dropped_total', { reason: 'ban' })).toBe(0);
    // After the flood the peer still calls.
    const after = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '2', '-r', '2', '-d', '100'], { timeoutS: 20 });
    expect(after.successful).toBe(2);
  }, 90_000);

  it('the same garbage from an address that is no peer bans it', async () => {
    const stranger = await bound(STRANGER_IP);
    await flood(stranger, 200);
    await waitFor(async () => (await pg.metric('peergate_engine_shield_dropped_total', { reason: 'ban' })) > 0, 10_000, 50, 'the stranger banned');
    stranger.close();
    const bans = await (await pg.admin('/admin/bans')).json() as unknown;
    expect(JSON.stringify(bans)).toContain(STRANGER_IP);
  }, 30_000);
});
