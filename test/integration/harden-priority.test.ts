// Limits that never deny an emergency call (issue #17.8, RFC 6404 §4.9), end to end with real
// SIPp: with the peer's session limit reached an ordinary call gets 503 but an emergency call
// passes, up to the reserved share, after which it is refused too; Resource-Priority values in
// namespaces the peer is not trusted for never reach the core (checked in the core's SIPp log).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, startUas, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-harden');

let pg: RunningPeergate;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number };
let coreDir: string;

function messageLog(dir: string): string {
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

const call = (called: string, count: number, pauseMs: number, rp?: string) => runSipp([
  ...(rp ? ['-sf', join(SCEN, 'uac-priority.xml'), '-key', 'rp', rp] : ['-sn', 'uac']),
  `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', called, '-m', String(count), '-r', '10', '-d', String(pauseMs),
], { timeoutS: 40 });

const held = () => pg.metric('peergate_limit_sessions_local');

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUas] = await freePorts(4);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUas! };
  coreDir = scratchDir('harden-prio-core-');
  startUas(CORE_IP, ports.coreUas, { dir: coreDir, extra: ['-trace_msg'] });
  pg = await startPeergate(twoSidedPolicy({ peerPort: ports.peerSip, corePort: ports.coreSip, opsPort: ports.ops, coreTarget: `sip:${CORE_IP}:${ports.coreUas}`, peerIp: PEER_IP, logLevel: 'warn' }, {
    // The operator even lets Resource-Priority cross toward the core: untrusted values still must not.
    core: { targets: [`sip:${CORE_IP}:${ports.coreUas}`], topology: { forward_headers: ['Resource-Priority'] } },
    media: { anchoring: false },
    limits: { priority: { emergency_numbers: ['911'], reserved_share: 0.5 } },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, limits: { sessions: 2, resource_priority: ['ets'] } }],
  }));
}, 60_000);

afterAll(() => stopInOrder(pg));

describe('emergency calls past the session limit', () => {
  it('limit reached: an ordinary call gets 503, an emergency call passes; with the reserve used, it is refused too', async () => {
    const admitted0 = await pg.metric('peergate_priority_calls_total', { kind: 'emergency', result: 'admitted' });
    const refused0 = await pg.metric('peergate_priority_calls_total', { kind: 'emergency', result: 'refused' });
    const ordinary = call('+15550002', 2, 8000);
    await waitFor(async () => (await held()) === 2, 10_000, 50, 'two ordinary calls up');
    const over = await call('+15550003', 1, 100);
    expect(over.successful).toBe(0);
    expect(over.failed).toBe(1);
    // The emergency call takes the one reserved slot (2 × 0.5) and stays up.
    const emergency = call('911', 1, 5000);
    await waitFor(async () => (await held()) === 3, 10_000, 50, 'the emergency call up past the limit');
    const second = await call('911', 1, 100);
    expect(second.successful).toBe(0);
    expect(second.failed).toBe(1);
    expect((await emergency).successful).toBe(1);
    expect((await ordinary).successful).toBe(2);
    expect(await pg.metric('peergate_priority_calls_total', { kind: 'emergency', result: 'admitted' })).toBe(admitted0 + 1);
    expect(await pg.metric('peergate_priority_calls_total', { kind: 'emergency', result: 'refused' })).toBe(refused0 + 1);
    expect(await pg.metric('peergate_limit_refusals_total', { peer: 'carrier-a', reason: 'sessions' })).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('Resource-Priority', () => {
  it('only namespaces trusted from the peer reach the core; untrusted ones are removed and counted', async () => {
    const stripped0 = await pg.metric('peergate_resource_priority_stripped_total', { peer: 'carrier-a' });
    expect((await call('+15550004', 1, 100, 'wps.1')).successful).toBe(1);
    expect((await call('+15550005', 1, 100, 'ets.0, wps.1')).successful).toBe(1);
    const coreSaw = messageLog(coreDir);
    const values = [...coreSaw.matchAll(/^Resource-Priority:\s*(.*)$/gim)].map((m) => m[1]!.trim());
    expect(values.length).toBeGreaterThanOrEqual(1);
    expect(new Set(values)).toEqual(new Set(['ets.0']));
    expect(coreSaw).not.toContain('wps.1');
    expect(await pg.metric('peergate_resource_priority_stripped_total', { peer: 'carrier-a' })).toBe(stripped0 + 2);
    expect(await pg.metric('peergate_priority_calls_total', { kind: 'resource_priority', result: 'admitted' })).toBeGreaterThanOrEqual(1);
  }, 40_000);
});
