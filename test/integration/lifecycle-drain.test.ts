// Graceful drain of `peergate start` (issue #16.3) with real SIPp on both sides: SIGTERM (or
// POST /admin/drain) refuses new calls with 503 + Retry-After and /ready 503 at once, lets
// calls in progress finish, and exits 0; at the drain deadline (or on a second SIGTERM) the
// remaining calls get BYE on both legs with a Reason, and rtpengine and Redis are left clean.
import { describe, it, expect, afterEach } from 'vitest';
import { createSocket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { exitWithin, freePorts, runSipp, startSipp, startUas, stopAll, waitFor, type SippResult } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-lifecycle');

let pg: RunningPeergate | undefined;
let rtpe: TestRtpengine | undefined;
let redis: TestRedis | undefined;
afterEach(async () => {
  await pg?.proc.stop('SIGKILL');
  pg = undefined;
  await stopAll();
  await rtpe?.stop();
  await redis?.stop();
  rtpe = undefined;
  redis = undefined;
});

function policy(p: { peer: number; core: number; ops: number; uas: number }, extra: Record<string, unknown> = {}) {
  return twoSidedPolicy({ peerPort: p.peer, corePort: p.core, opsPort: p.ops, coreTarget: `sip:${CORE_IP}:${p.uas}`, peerIp: PEER_IP, logLevel: 'info' },
    { media: { anchoring: false }, ...extra });
}

/** One INVITE from the peer's address, answered how? (status line and Retry-After). */
async function inviteOnce(port: number): Promise<{ status: number; retryAfter?: string; text: string }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, PEER_IP, () => r()));
  const lp = sock.address().port;
  const callId = `drain-${Math.random()}`;
  try {
    const final = new Promise<string>((resolve) => {
      sock.on('message', (m) => { const t = m.toString(); if (!/^SIP\/2\.0 1\d\d/.test(t)) resolve(t); });
    });
    sock.send([
      `INVITE sip:+15551230000@127.0.0.1:${port} SIP/2.0`, `Via: SIP/2.0/UDP ${PEER_IP}:${lp};branch=z9hG4bK-${Math.random().toString(36).slice(2)}`,
      'Max-Forwards: 70', `From: <sip:+15550001@${PEER_IP}>;tag=a1`, '<sip:+15551230000@127.0.0.1>'.replace(/^/, 'To: '),
      `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:caller@${PEER_IP}:${lp}>`, 'Content-Length: 0', '', '',
    ].join('\r\n'), port, '127.0.0.1');
    const text = await Promise.race([final, new Promise<string>((_, rej) => setTimeout(() => rej(new Error('no final response')), 5000))]);
    const status = Number(text.slice(8, 11));
    const retryAfter = /^Retry-After:\s*(\S+)/im.exec(text)?.[1];
    return { status, ...(retryAfter ? { retryAfter } : {}), text };
  } finally {
    sock.close();
  }
}

const ready = async (pgr: RunningPeergate) => (await fetch(`http://127.0.0.1:${pgr.opsPort}/ready`)).status;

/** Fresh ports for one node: its peer and core listeners, its ops server, and the core's UAS. */
async function fourPorts(): Promise<{ peer: number; core: number; ops: number; uas: number }> {
  const [peer, core, ops, uas] = await freePorts(4) as [number, number, number, number];
  return { peer, core, ops, uas };
}

/** SIGTERM to `node`, then its exit code (or 'still running' after `ms`) and how long that took. */
async function terminate(node: RunningPeergate, ms: number): Promise<{ code: number | null | 'still running'; tookMs: number }> {
  const sentAt = Date.now();
  process.kill(node.proc.pid, 'SIGTERM');
  const code = await exitWithin(node.proc, ms);
  return { code, tookMs: Date.now() - sentAt };
}

describe('graceful drain', () => {
  it('SIGTERM: /ready 503 at once, a new INVITE gets 503 with Retry-After, held calls complete, exit 0', async () => {
    const p = await fourPorts();
    startUas(CORE_IP, p.uas);
    pg = await startPeergate(policy(p, { lifecycle: { drain_timeout_s: 60, retry_after_s: 17 } }));
    const held = runSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '2', '-r', '10', '-d', '5000'], { timeoutS: 30 });
    await waitFor(async () => (await pg!.metric('peergate_active_calls', { peer: 'carrier-a' })) === 2, 10_000, 50, 'two calls up');
    const sentAt = Date.now();
    process.kill(pg.proc.pid, 'SIGTERM');
    await waitFor(async () => (await ready(pg!)) === 503, 1000, 20, '/ready 503 right after SIGTERM');
    const refused = await inviteOnce(p.peer);
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('17');
    expect(await pg.metric('peergate_draining')).toBe(1);
    const r: SippResult = await held;
    expect(r.successful, `${r.output.slice(-1500)}\n${pg.proc.output().slice(-3000)}`).toBe(2);
    expect(r.failed).toBe(0);
    const code = await exitWithin(pg.proc, 10_000);
    expect(code).toBe(0);
    // It waited for the calls (held 5 s), not for the 60 s deadline.
    expect(Date.now() - sentAt).toBeGreaterThan(3000);
    expect(Date.now() - sentAt).toBeLessThan(20_000);
    expect(pg.proc.output()).toContain('drained: no call left');
  }, 60_000);

  it('POST /admin/drain answers 202 with the calls in progress and drains like SIGTERM', async () => {
    const p = await fourPorts();
    pg = await startPeergate(policy(p));
    const unauth = await fetch(`http://127.0.0.1:${p.ops}/admin/drain`, { method: 'POST' });
    expect(unauth.status).toBe(401);
    expect(await ready(pg)).toBe(200);
    const res = await pg.admin('/admin/drain', { method: 'POST' });
    expect(res.status).toBe(202);
    const body = await res.json() as { draining: boolean; calls: number; deadline: number };
    expect(body.draining).toBe(true);
    expect(body.calls).toBe(0);
    expect(body.deadline).toBeGreaterThan(Date.now());
    // No call in progress: the drain is over at once.
    const code = await exitWithin(pg.proc, 10_000);
    expect(code).toBe(0);
  }, 40_000);

  it('at the drain deadline held calls get BYE on both legs with a Reason; rtpengine and Redis are left clean', async () => {
    const p = await fourPorts();
    // Independent processes: started side by side.
    [rtpe, redis] = await Promise.all([startRtpengine(), startRedis()]);
    const callee = runSipp(['-sf', join(SCEN, 'uas-recv-bye-reason.xml'), '-i', CORE_IP, '-p', String(p.uas), '-t', 'u1', '-m', '2'], { timeoutS: 40 });
    pg = await startPeergate(policy(p, {
      media: { rtpengine: [{ address: rtpe.address }] },
      store: { redis: { url: redis.url, key_prefix: 'pgdrain:' } },
      lifecycle: { drain_timeout_s: 2 },
    }));
    const caller = runSipp(['-sf', join(SCEN, 'uac-recv-bye-reason.xml'), `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '2', '-r', '10'], { timeoutS: 40 });
    await waitFor(async () => (await pg!.metric('peergate_active_calls', { peer: 'carrier-a' })) === 2, 10_000, 50, 'two calls up');
    expect((await rtpe.calls()).length).toBe(2);
    const sessionsInRedis = () => execFileSync('redis-cli', ['-p', String(redis!.port), '--scan', '--pattern', 'pgdrain:*sid*']).toString().trim().split('\n').filter(Boolean).length;
    expect(sessionsInRedis()).toBe(2);
    const end = await terminate(pg, 15_000);
    expect(end.code).toBe(0);
    expect(end.tookMs).toBeGreaterThanOrEqual(1900);
    const [a, b] = await Promise.all([caller, callee]);
    expect(a.successful, a.output).toBe(2);
    expect(a.failed).toBe(0);
    expect(b.successful, b.output).toBe(2);
    expect(b.failed).toBe(0);
    expect(pg.proc.output()).toContain('drain deadline: ending the remaining calls');
    expect(await rtpe.calls()).toEqual([]);
    expect(sessionsInRedis()).toBe(0);
  }, 90_000);

  it('at the drain deadline with both peers gone, it exits within seconds, not after Timer F', async () => {
    const p = await fourPorts();
    const callee = startUas(CORE_IP, p.uas);
    pg = await startPeergate(policy(p, { lifecycle: { drain_timeout_s: 1 } }));
    const caller = startSipp(['-sn', 'uac', `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '2', '-r', '10', '-d', '60000']);
    await waitFor(async () => (await pg!.metric('peergate_active_calls', { peer: 'carrier-a' })) === 2, 10_000, 50, 'two calls up');
    // Nobody answers the BYEs now: each would wait Timer F (32 s) for an answer.
    await Promise.all([caller.stop('SIGKILL'), callee.stop('SIGKILL')]);
    const end = await terminate(pg, 30_000);
    expect(end.code, pg.proc.output().slice(-2000)).toBe(0);
    expect(pg.proc.output()).toContain('drain deadline: ending the remaining calls');
    // 1 s deadline + at most 3 s for the BYEs' answers + 2 s settle, and closing.
    expect(end.tookMs).toBeLessThan(12_000);
  }, 60_000);

  it('a second SIGTERM ends at once: BYE on both legs, exit 0 long before the deadline', async () => {
    const p = await fourPorts();
    const callee = runSipp(['-sf', join(SCEN, 'uas-recv-bye-reason.xml'), '-i', CORE_IP, '-p', String(p.uas), '-t', 'u1', '-m', '1'], { timeoutS: 40 });
    pg = await startPeergate(policy(p, { lifecycle: { drain_timeout_s: 300 } }));
    const caller = runSipp(['-sf', join(SCEN, 'uac-recv-bye-reason.xml'), `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1'], { timeoutS: 40 });
    await waitFor(async () => (await pg!.metric('peergate_active_calls', { peer: 'carrier-a' })) === 1, 10_000, 50, 'call up');
    process.kill(pg.proc.pid, 'SIGTERM');
    await waitFor(async () => (await ready(pg!)) === 503, 1000, 20, 'draining');
    // Still draining: the call is up.
    await new Promise((r) => setTimeout(r, 500));
    expect(await pg.metric('peergate_active_calls', { peer: 'carrier-a' })).toBe(1);
    const end = await terminate(pg, 10_000);
    expect(end.code).toBe(0);
    expect(end.tookMs).toBeLessThan(8000);
    const [a, b] = await Promise.all([caller, callee]);
    expect(a.successful, a.output).toBe(1);
    expect(b.successful, b.output).toBe(1);
    expect(pg.proc.output()).toContain('stopping now: ending every call');
  }, 60_000);

  it('SIGINT while a call still rings: the B-leg is CANCELed, the caller gets 503 with a Reason, exit 0', async () => {
    const p = await fourPorts();
    const callee = runSipp(['-sf', join(SCEN, '..', 'sipp-b2bua', 'uas-ring-forever.xml'), '-i', CORE_IP, '-p', String(p.uas), '-t', 'u1', '-m', '1'], { timeoutS: 40 });
    pg = await startPeergate(policy(p, { lifecycle: { drain_timeout_s: 300 } }));
    const caller = runSipp(['-sf', join(SCEN, 'uac-expect-503-reason.xml'), `127.0.0.1:${p.peer}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1'], { timeoutS: 40 });
    await waitFor(() => pg!.proc.output().includes('"msg":"new call"'), 10_000, 50, 'call ringing');
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pg.proc.pid, 'SIGINT');
    const code = await exitWithin(pg.proc, 10_000);
    expect(code).toBe(0);
    const [a, b] = await Promise.all([caller, callee]);
    expect(a.successful, a.output).toBe(1);
    expect(b.successful, b.output).toBe(1);
  }, 60_000);
});
