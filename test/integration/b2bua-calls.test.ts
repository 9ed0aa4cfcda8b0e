// End to end: `peergate start` as a real process between real SIPp instances. The peer
// lives on 127.0.0.2, the core on 127.0.0.3 and peergate on 127.0.0.1, so any address that
// leaks across is visible in the far side's message log.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { freePorts, runSipp, startSipp, startUas, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua');

let pg: RunningPeergate;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number; peerUas: number; deadCore: number };
let coreUasDir: string;

function policy(overrides: Record<string, any> = {}) {
  return {
    listen: [listener('peer-udp', ports.peerSip), listener('peer-tcp', ports.peerSip), listener('core-udp', ports.coreSip)],
    core: { targets: [`sip:${CORE_IP}:${ports.deadCore}`, `sip:${CORE_IP}:${ports.coreUas}`] },
    media: { rtpengine: 'spawn', embedded: { port_min: 40000 + (ports.ops % 200) * 100, port_max: 40000 + (ports.ops % 200) * 100 + 99 } },
    ops: { port: ports.ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:${ports.peerUas}`] }],
    routes: [{ from: 'core', called_prefix: '+44', to: 'carrier-a' }, { from: 'peers', to: 'core' }],
    ...overrides,
  };
}

/** Messages sipp wrote with -trace_msg in `dir`. */
function messageLog(dir: string): string {
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

/** Values of a header in a sipp message log (each occurrence). */
function headerValues(log: string, name: string): string[] {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'gim');
  return [...log.matchAll(re)].map((m) => m[1]!.trim());
}

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUasPort, peerUas, deadCore] = await freePorts(6);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUasPort!, peerUas: peerUas!, deadCore: deadCore! };
  coreUasDir = scratchDir('core-uas-');
  startUas(CORE_IP, ports.coreUas, { dir: coreUasDir, extra: ['-trace_msg'] });
  pg = await startPeergate(policy());
}, 60_000);

afterAll(() => stopInOrder(pg));

describe('peer → core calls through peergate', () => {
  it('carries calls from a peer to the core, failing over from a dead first target', async () => {
    const dir = scratchDir('uac-');
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '3', '-r', '3', '-d', '200', '-trace_msg'], { dir, timeoutS: 40 });
    expect(r.output.slice(-2000) && r.successful).toBe(3);
    expect(r.failed).toBe(0);

    // Topology: nothing of the peer side appears in what the core received, and vice versa.
    const coreSaw = messageLog(coreUasDir);
    const peerSaw = messageLog(dir);
    expect(coreSaw).not.toContain(PEER_IP);
    const peerCallIds = headerValues(peerSaw, 'Call-ID');
    expect(peerCallIds.length).toBeGreaterThan(0);
    for (const id of new Set(peerCallIds)) expect(coreSaw).not.toContain(id);
    const peerTags = [...peerSaw.matchAll(/tag=([^;>\s]+)/g)].map((m) => m[1]!);
    for (const t of new Set(peerTags)) if (t.includes('SIPpTag00')) expect(coreSaw).not.toContain(t);
    const peerBranches = [...peerSaw.matchAll(/branch=([^;>\s]+)/g)].map((m) => m[1]!);
    for (const b of new Set(peerBranches)) expect(coreSaw).not.toContain(b);
    expect(peerSaw).not.toContain(CORE_IP);
    expect(peerSaw).not.toContain(`:${ports.coreUas}`);
    for (const id of new Set(headerValues(coreSaw, 'Call-ID'))) expect(peerSaw).not.toContain(id);

    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'inbound' })).toBeGreaterThanOrEqual(3);
    expect(await pg.metric('peergate_requests_total', { peer: 'carrier-a', method: 'INVITE' })).toBeGreaterThanOrEqual(3);
  });

  it('carries calls over TCP from the peer', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 't1', '-s', '+15551230000',
      '-m', '2', '-r', '2', '-d', '100'], { timeoutS: 40 });
    expect(r.successful).toBe(2);
  });
});

describe('core → peer calls and call events', () => {
  it('routes by called prefix to the peer, and CANCEL before answer ends both legs', async () => {
    const uasDir = scratchDir('peer-uas-');
    const uas = startSipp(['-sf', join(SCEN, 'uas-ring-forever.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1'], uasDir);
    const r = await runSipp(['-sf', join(SCEN, 'uac-cancel.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460000', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(await uas.exited).toBe(0);
  });

  it('passes a 486 from the called side back to the caller', async () => {
    const uas = startSipp(['-sf', join(SCEN, 'uas-busy.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
    const r = await runSipp(['-sf', join(SCEN, 'uac-expect-486.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460001', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(await uas.exited).toBe(0);
  });

  it('relays a BYE from the called side to the caller', async () => {
    const uas = startSipp(['-sf', join(SCEN, 'uas-bye.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
    const r = await runSipp(['-sf', join(SCEN, 'uac-recv-bye.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460002', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(await uas.exited).toBe(0);
  });

  it('relays INFO and UPDATE inside a call', async () => {
    const uas = startSipp(['-sf', join(SCEN, 'uas-info-update.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
    const r = await runSipp(['-sf', join(SCEN, 'uac-info-update.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460004', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(await uas.exited).toBe(0);
  });

  it('fails over to the next core target on 503, without waiting for the no-answer timer', async () => {
    // No -m: INVITE retransmissions left over from the dead-target test (Timer B runs 32 s)
    // may arrive first and must not use up this responder.
    const first = startSipp(['-sf', join(SCEN, 'uas-503.xml'), '-i', CORE_IP, '-p', String(ports.deadCore), '-t', 'u1']);
    await waitFor(() => udpPortTaken(CORE_IP, ports.deadCore), 5000, 50, 'the 503 target listening');
    const t0 = Date.now();
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1', '-d', '100'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(Date.now() - t0).toBeLessThan(3000);
    await first.stop();
  });

  it('relays a re-INVITE and the caller BYE', async () => {
    const uas = startSipp(['-sf', join(SCEN, 'uas-reinvite.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
    const r = await runSipp(['-sf', join(SCEN, 'uac-reinvite.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460003', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    expect(await uas.exited).toBe(0);
  });
});

/** True once something has bound `address:port` (our own bind attempt fails). */
function udpPortTaken(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(true));
    s.bind(port, address, () => s.close(() => resolve(false)));
  });
}

/** Send one UDP datagram from `from` and collect whatever comes back within `ms`. */
async function udpExchange(from: string, to: number, payload: string, ms = 1500): Promise<string[]> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  s.send(payload.replace(/\{port\}/g, String(s.address().port)), to, '127.0.0.1');
  await new Promise((r) => setTimeout(r, ms));
  s.close();
  return got;
}

const request = (method: string, from: string, extra = '') =>
  `${method} sip:+15551230000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${from}:{port};branch=z9hG4bK-${method}-${Math.random().toString(16).slice(2)}\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:x@${from}>;tag=t1\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: ${Math.random().toString(16).slice(2)}@${from}\r\n` +
  `CSeq: 1 ${method}\r\nContact: <sip:x@${from}:{port}>\r\n${extra}Content-Length: 0\r\n\r\n`;

describe('ingress filtering and admission', () => {
  it('gives an unknown source no answer at all', async () => {
    const got = await udpExchange('127.0.0.9', ports.peerSip, request('OPTIONS', '127.0.0.9'));
    expect(got).toEqual([]);
    expect(await pg.metric('peergate_refusals_total', { peer: 'unknown' })).toBeGreaterThanOrEqual(1);
  });

  it('finds nothing for a sipvicious svmap scan from an unknown source', async () => {
    const [lp] = await freePorts(1);
    const { startProcess } = await import('../helpers/procs.js');
    const p = startProcess('svmap', ['-b', '127.0.0.9', '-P', String(lp), '-x', '127.0.0.9', '127.0.0.1', '-p', String(ports.peerSip), '-t', '1']);
    await p.exited;
    expect(p.output()).not.toMatch(/127\.0\.0\.1:\d+\s*\|/);
  });

  it('answers OPTIONS from a known peer and refuses its REGISTER', async () => {
    const ok = await udpExchange(PEER_IP, ports.peerSip, request('OPTIONS', PEER_IP));
    expect(ok.some((m) => m.startsWith('SIP/2.0 200'))).toBe(true);
    const reg = await udpExchange(PEER_IP, ports.peerSip, request('REGISTER', PEER_IP));
    expect(reg.some((m) => m.startsWith('SIP/2.0 403'))).toBe(true);
  });

  it('refuses Max-Forwards 0 with 483', async () => {
    const got = await udpExchange(PEER_IP, ports.peerSip, request('INVITE', PEER_IP).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
    expect(got.some((m) => m.startsWith('SIP/2.0 483'))).toBe(true);
  });

  it('lists active calls and peers on the admin API behind the bearer token', async () => {
    const unauth = await fetch(`http://127.0.0.1:${pg.opsPort}/admin/peers`);
    expect(unauth.status).toBe(401);
    const { peers } = await (await pg.admin('/admin/peers')).json() as { peers: Array<{ id: string }> };
    expect(peers.map((p) => p.id)).toContain('carrier-a');
    await waitFor(async () => ((await (await pg.admin('/admin/calls')).json()) as { calls: unknown[] }).calls.length === 0, 5000);
  });

  it('counts every call attempt by result, not only established calls', async () => {
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'outbound', result: 'canceled' })).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'outbound', result: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'inbound', result: 'refused' })).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'outbound', result: 'callee_bye' })).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_active_calls', { peer: 'carrier-a' })).toBe(0);
    // Setup time is observed for answered and failed calls alike.
    expect(await pg.metric('peergate_call_setup_seconds_count', { peer: 'carrier-a', direction: 'inbound' })).toBeGreaterThanOrEqual(5);
    expect(await pg.metric('peergate_call_setup_seconds_count', { peer: 'carrier-a', direction: 'outbound' })).toBeGreaterThanOrEqual(3);
  });
});
