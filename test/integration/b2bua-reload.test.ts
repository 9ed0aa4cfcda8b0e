// Policy reload through `peergate start`: atomic, and calls keep the policy they started with.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { stringify } from 'yaml';
import { freePorts, runSipp, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, ADMIN_TOKEN, type RunningPeergate } from '../helpers/peergate.js';

let pg: RunningPeergate;
let p: { peer: number; core: number; ops: number; uas: number };

function policy(peerAddress: string, extra: Record<string, unknown> = {}) {
  return {
    ...extra,
    listen: [listener('peer-udp', p.peer), listener('core-udp', p.core)],
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { rtpengine: 'spawn', embedded: { port_min: 44000 + (p.ops % 100) * 20, port_max: 44000 + (p.ops % 100) * 20 + 19 } },
    ops: { port: p.ops, admin_token: ADMIN_TOKEN },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [peerAddress] } }],
    routes: [{ from: 'peers', to: 'core' }],
  };
}

beforeAll(async () => {
  const [peer, core, ops, uas] = await freePorts(4);
  p = { peer: peer!, core: core!, ops: ops!, uas: uas! };
  startUas(CORE_IP, p.uas);
  pg = await startPeergate(policy(`${PEER_IP}/32`));
}, 60_000);

afterAll(() => stopInOrder(pg));

const call = (holdMs: number) => runSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1', '-d', String(holdMs)], { timeoutS: 15 });

describe('policy reload', () => {
  it('a broken file keeps the running policy and counts the error', async () => {
    const errorsBefore = await pg.metric('peergate_policy_reloads_total', { result: 'error' });
    writeFileSync(pg.policyPath, stringify(policy(`${PEER_IP}/32`)).replace('listen:', 'listen:\n  - { name: x, sid: peer }\nbogus: 1\nlisten2:'));
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_policy_reloads_total', { result: 'error' })) > errorsBefore, 5000);
    const r = await call(100);
    expect(r.successful).toBe(1);
  });

  it('a call in progress keeps the policy it started with; new calls get the new one', async () => {
    writeFileSync(pg.policyPath, stringify(policy(`${PEER_IP}/32`)));
    const okBefore = await pg.metric('peergate_policy_reloads_total', { result: 'ok' });
    const longCall = call(3000);
    await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-a' })) === 1, 5000, 50, 'call up');
    // The new policy no longer recognises the peer's address.
    writeFileSync(pg.policyPath, stringify(policy('127.0.0.99/32')));
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_policy_reloads_total', { result: 'ok' })) > okBefore, 5000);
    const refused = await runSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1', '-recv_timeout', '2000'], { timeoutS: 5 });
    expect(refused.successful).toBe(0);
    const r = await longCall;
    expect(r.successful).toBe(1);
    expect(r.failed).toBe(0);
  });

  it('answers unknown sources 403 once the policy says unknown_source: 403', async () => {
    const options = async () => {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.9', () => r()));
      const got: string[] = [];
      sock.on('message', (m) => got.push(m.toString()));
      const lp = sock.address().port;
      sock.send(`OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:${lp};branch=z9hG4bK-${Math.random()}\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: ${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, p.peer, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 800));
      sock.close();
      return got;
    };
    expect(await options()).toEqual([]);
    const okBefore = await pg.metric('peergate_policy_reloads_total', { result: 'ok' });
    writeFileSync(pg.policyPath, stringify(policy(`${PEER_IP}/32`, { unknown_source: '403' })));
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_policy_reloads_total', { result: 'ok' })) > okBefore, 5000);
    expect((await options()).some((m) => m.startsWith('SIP/2.0 403'))).toBe(true);
  });
});
