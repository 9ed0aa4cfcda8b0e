// listen[].advertise (NAT): the address written into our Via and Contact instead of the bound
// one. The core listener binds 0.0.0.0 and advertises 127.0.0.4 (all traffic stays on loopback).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, startUas, scratchDir, stopInOrder } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

let pg: RunningPeergate;
let p: { peer: number; core: number; ops: number; uas: number };
let uasDir: string;

beforeAll(async () => {
  const [peer, core, ops, uas] = await freePorts(4);
  p = { peer: peer!, core: core!, ops: ops!, uas: uas! };
  uasDir = scratchDir('adv-uas-');
  startUas('127.0.0.3', p.uas, { dir: uasDir, extra: ['-trace_msg'] });
  pg = await startPeergate({
    listen: [
      listener('peer-udp', p.peer),
      { name: 'core-udp', side: 'core', transport: 'udp', address: '0.0.0.0', port: p.core, advertise: '127.0.0.4' },
    ],
    core: { targets: [`sip:127.0.0.3:${p.uas}`] },
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg));

describe('advertised listener address', () => {
  it('sends toward the core from the core listener, with the advertised host in Via and Contact, and the call completes', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-m', '1', '-d', '100'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    const log = readdirSync(uasDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(uasDir, f), 'utf8')).join('\n');
    const invite = log.slice(log.indexOf('INVITE sip:'));
    expect(invite).toMatch(new RegExp(`^Via: SIP/2\\.0/UDP 127\\.0\\.0\\.4:${p.core};`, 'm'));
    expect(invite).toMatch(new RegExp(`^Contact: <sip:127\\.0\\.0\\.4:${p.core}>`, 'm'));
    expect(invite).not.toMatch(/0\.0\.0\.0/);
    // The egress hint is for the engine only.
    expect(log).not.toMatch(/X-Peergate-Egress/i);
  });
});
