// The warm-up before the listeners open (policy `warmup`, src/app/warmup): `peergate start`
// places its warm-up calls through its own engine and B2BUA processes, and only then binds the
// policy's SIP listeners; nothing of the warm-up is left to see afterwards (no call counted, no
// call record, no call listed), and the calls of real SIPp that follow are counted exactly. A
// warm-up that cannot finish in `timeout_s` is cut there and the node starts anyway. A node with
// TLS peers only warms up the same way, and its TLS listener, opened after, carries a peer's call.
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, heldCalls, scratchDir, startUas, stopAll, waitFor } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, sumMetric, twoSidedPolicy } from '../helpers/peergate.js';
import { RawUa } from '../helpers/raw-ua.js';
import { connect as tlsConnect } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { createFederationCa, createPeerCertificate } from '../../src/pki/files.js';

afterAll(() => stopAll());

interface LogLine { msg?: string; time?: number; placed?: number; completed?: number; failed?: number; b2buas?: number; start_ms?: Record<string, number> }

function logLines(output: string): LogLine[] {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) as LogLine; } catch { return {}; } });
}

/** OPTIONS from PEER_IP to `port` every 50 ms until stopped: when the first answer came. */
async function probeUntilAnswered(port: number): Promise<{ firstAnswerAt: () => number | undefined; stop: () => void }> {
  const ua = await RawUa.open(PEER_IP);
  let first: number | undefined;
  let n = 0;
  ua.onMessage(() => { first ??= Date.now(); });
  const t = setInterval(() => {
    n++;
    ua.send([
      `OPTIONS sip:${PEER_IP}:${port} SIP/2.0`, `Via: SIP/2.0/UDP ${PEER_IP}:${ua.port};branch=z9hG4bK-probe-${n};rport`, 'Max-Forwards: 70',
      `From: <sip:probe@${PEER_IP}>;tag=p${n}`, `To: <sip:${PEER_IP}:${port}>`, `Call-ID: probe-${n}@${PEER_IP}`, `CSeq: ${n} OPTIONS`, 'Content-Length: 0', '', '',
    ].join('\r\n'), port);
  }, 50);
  return { firstAnswerAt: () => first, stop: () => { clearInterval(t); ua.close(); } };
}

describe('warm-up before the listeners open', () => {
  it('workers: its calls go through every worker, the listeners open after it, and nothing of it is counted', async () => {
    const [uasPort, peerPort, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
    startUas(CORE_IP, uasPort);
    const dir = scratchDir('warmup-');
    const cdr = join(dir, 'cdr.jsonl');
    const probe = await probeUntilAnswered(peerPort);
    const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'info' }, {
      media: { anchoring: false }, workers: 2, lifecycle: { drain_timeout_s: 0 },
      warmup: { calls: 300, rate: 150 }, cdr: { file: cdr },
      // Short RFC 3261 timers (Timer J = 64*T1 = 6.4 s), so that the end can wait for every transaction.
      engine: { sip_timers: { t1_ms: 100, t2_ms: 400, t4_ms: 1000 } },
    }), { dir, readyTimeoutMs: 60_000 });
    try {
      const lines = logLines(pg.proc.output());
      const done = lines.find((l) => l.msg === 'warm-up done');
      expect(done, pg.proc.output().slice(-3000)).toMatchObject({ placed: 300, completed: 300, failed: 0, b2buas: 2 });
      expect(lines.find((l) => l.msg === 'peergate started')?.start_ms?.['warmup']).toBeGreaterThan(1500);
      // The peer-side listener answered nothing before the warm-up was over.
      const answered = await waitFor(() => probe.firstAnswerAt(), 5000, 20, 'an answer to OPTIONS');
      probe.stop();
      expect(answered).toBeGreaterThanOrEqual(done!.time!);
      // The warm-up's calls are no calls of the node's: per call, at info, it logged nothing.
      expect(lines.filter((l) => l.msg === 'new call')).toEqual([]);
      const before = await pg.metrics();
      expect(sumMetric(before, 'peergate_calls_total')).toBe(0);
      expect(sumMetric(before, 'peergate_requests_total', { method: 'INVITE' })).toBe(0);
      // The node's own engine and store carried none of it: no dialog, no client transaction, no
      // limit session (the warm-up ran on an engine and stores of its own).
      expect(sumMetric(before, 'peergate_engine_dialogs')).toBe(0);
      expect(sumMetric(before, 'peergate_engine_client_transactions')).toBe(0);
      expect(sumMetric(before, 'peergate_limit_sessions_local')).toBe(0);
      expect(((await (await pg.admin('/admin/calls')).json()) as { calls: unknown[] }).calls).toEqual([]);

      const r = await heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, 20, 0);
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful).toBe(20);
      await waitFor(async () => (await pg.metric('peergate_calls_total')) === 20, 5000, 100, '20 calls counted');
      expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a' })).toBe(20);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 5000, 100, 'calls ended');
      // One record per SIPp call, none for the warm-up's.
      await waitFor(() => existsSync(cdr) && readFileSync(cdr, 'utf8').trim().split('\n').length >= 20, 5000, 100, '20 call records');
      const records = readFileSync(cdr, 'utf8').trim().split('\n');
      expect(records.length).toBe(20);
      expect(records.filter((l) => l.includes('warm-up') || l.includes('warmup'))).toEqual([]);
      // Once the timers have run, nothing is left: no dialog, transaction or limit session.
      await waitFor(async () => {
        const m = await pg.metrics();
        const left = ['peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions', 'peergate_limit_sessions_local']
          .reduce((n, name) => n + sumMetric(m, name), 0);
        return left === 0 || undefined;
      }, 20_000, 200, 'no dialog, transaction or limit session left');
    } finally {
      probe.stop();
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  });

  it('workers: 1, a warm-up that cannot finish in timeout_s is cut there and the node starts', async () => {
    const [uasPort, peerPort, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
    startUas(CORE_IP, uasPort);
    const t0 = Date.now();
    const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'info' }, {
      media: { anchoring: false }, workers: 1, lifecycle: { drain_timeout_s: 0 },
      warmup: { calls: 20_000, rate: 100, timeout_s: 1 },
    }), { readyTimeoutMs: 60_000 });
    try {
      const done = logLines(pg.proc.output()).find((l) => l.msg === 'warm-up done');
      // ≈ 100 calls in the second it had, through the one in-process B2BUA; far from 20,000.
      expect(done, pg.proc.output().slice(-3000)).toMatchObject({ b2buas: 1 });
      expect(done!.placed).toBeGreaterThan(20);
      expect(done!.placed).toBeLessThan(1000);
      expect(done!.completed! + done!.failed!).toBe(done!.placed);
      expect(Date.now() - t0).toBeLessThan(30_000);
      const r = await heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, 5, 0);
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful).toBe(5);
      await waitFor(async () => (await pg.metric('peergate_calls_total')) === 5, 5000, 100, '5 calls counted');
    } finally {
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  });

  it('TLS peers only: the warm-up runs, none of it is counted, and the TLS listener opened after it carries a call', async () => {
    const [uasPort, tlsPort, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
    startUas(CORE_IP, uasPort);
    const dir = scratchDir('warmup-tls-');
    const ca = createFederationCa(dir);
    const sbe = createPeerCertificate(dir, 'sbe', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
    const peer = createPeerCertificate(dir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] });
    // TLS is the node's only peer-side transport.
    const pg = await startPeergate({
      listen: [listener('peer-tls', tlsPort), listener('core-udp', corePort)],
      tls: { certificate: sbe.certPath, key: sbe.keyPath, client_cas: [ca.certPath], require_client_cert: true },
      core: { targets: [`sip:${CORE_IP}:${uasPort}`] },
      media: { anchoring: false }, workers: 2, lifecycle: { drain_timeout_s: 0 },
      ops: { port: opsPort }, log: { level: 'info' },
      peers: [{ id: 'carrier-a', transport: 'tls', match: { addresses: [`${PEER_IP}/32`], certificate: { subject_alt_names: ['sbc.carrier-a.example'] } } }],
      routes: [{ from: 'peers', to: 'core' }],
      warmup: { calls: 200, rate: 200 },
    }, { dir, readyTimeoutMs: 60_000 });
    try {
      const done = logLines(pg.proc.output()).find((l) => l.msg === 'warm-up done');
      expect(done, pg.proc.output().slice(-3000)).toMatchObject({ placed: 200, completed: 200, failed: 0, b2buas: 2 });
      // The warm-up's calls were on an engine of its own; no TLS connection came before the peer's.
      const before = await pg.metrics();
      expect(sumMetric(before, 'peergate_tls_handshakes_total')).toBe(0);
      expect(sumMetric(before, 'peergate_calls_total')).toBe(0);

      // A peer's call over mutual TLS to the listener opened after the warm-up.
      const sock = tlsConnect({
        socket: tcpConnect({ host: '127.0.0.1', port: tlsPort, localAddress: PEER_IP }),
        ca: readFileSync(ca.certPath), cert: readFileSync(peer.certPath), key: readFileSync(peer.keyPath), checkServerIdentity: () => undefined,
      });
      let got = '';
      sock.on('data', (d: Buffer) => { got += d.toString(); });
      sock.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => { sock.once('secureConnect', () => resolve()); sock.once('error', reject); });
      const sdp = `v=0\r\no=- 1 1 IN IP4 ${PEER_IP}\r\ns=-\r\nc=IN IP4 ${PEER_IP}\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n`;
      const local = `${PEER_IP}:${sock.localPort!}`;
      sock.write(`INVITE sip:+15551230000@127.0.0.1:${tlsPort};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS ${local};branch=z9hG4bK-wtls-1\r\nMax-Forwards: 70\r\n`
        + `From: <sip:+15550001@carrier-a.example>;tag=wtls\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: warmup-tls-1\r\nCSeq: 1 INVITE\r\n`
        + `Contact: <sip:a@${local};transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`);
      await waitFor(() => got.includes('SIP/2.0 200') || undefined, 8000, 50, 'a 200 over TLS');
      expect(await pg.metric('peergate_tls_handshakes_total', { result: 'ok' })).toBe(1);
      sock.destroy();
    } finally {
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  });
});
