// Call records end to end: `peergate start` as a real process between real SIPp instances
// (and a raw UDP caller for the refused and timed-out cases), writing a CDR file and a Redis
// stream. Every record is matched to its call by the Call-ID the caller actually sent.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { freePorts, runSipp, startSipp, startUas, stopAll, scratchDir, waitFor } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua');
const PEER_B_IP = '127.0.0.4';
const DEAD_IP = '127.0.0.5';

let pg: RunningPeergate;
let redis: TestRedis;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number; peerUas: number; dead: number };
let coreUasDir: string;
let cdrDir: string;
const cdrFile = () => join(cdrDir, 'cdr.jsonl');

type Rec = Record<string, any>;
function records(path = cdrFile()): Rec[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
}
async function recordFor(callId: string, path = cdrFile()): Promise<Rec> {
  return (await waitFor(() => records(path).find((r) => r.call_id === callId), 10_000, 50, `CDR for ${callId} in ${path}`))!;
}

/** Call-IDs in a SIPp -trace_msg log, in order of appearance. */
function sippCallIds(dir: string): string[] {
  const log = readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  return [...new Set([...log.matchAll(/^Call-ID:\s*(.*)$/gim)].map((m) => m[1]!.trim()))];
}

/** A raw UDP INVITE from `from`: every response until a final one (ACKed) or `ms`. */
async function rawInvite(from: string, toPort: number, called: string, callId: string, ms = 8000): Promise<string[]> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  const port = s.address().port;
  const branch = `z9hG4bK-${Math.random().toString(16).slice(2)}`;
  const head = `Via: SIP/2.0/UDP ${from}:${port};branch=${branch}\r\nFrom: <sip:+15557654321@${from}>;tag=raw1\r\nCall-ID: ${callId}\r\n`;
  const got: string[] = [];
  const final = new Promise<void>((resolve) => {
    s.on('message', (m) => {
      const msg = m.toString();
      got.push(msg);
      const status = Number(/^SIP\/2\.0 (\d{3})/.exec(msg)?.[1]);
      if (status >= 300) {
        const to = /^To:.*$/m.exec(msg)?.[0] ?? `To: <sip:${called}@127.0.0.1>`;
        s.send(`ACK sip:${called}@127.0.0.1 SIP/2.0\r\n${head}${to}\r\nMax-Forwards: 70\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`, toPort, '127.0.0.1');
      }
      if (status >= 200) resolve();
    });
  });
  s.send(`INVITE sip:${called}@127.0.0.1 SIP/2.0\r\n${head}To: <sip:${called}@127.0.0.1>\r\nMax-Forwards: 70\r\nCSeq: 1 INVITE\r\nContact: <sip:x@${from}:${port}>\r\nContent-Length: 0\r\n\r\n`, toPort, '127.0.0.1');
  await Promise.race([final, new Promise((r) => setTimeout(r, ms))]);
  await new Promise((r) => setTimeout(r, 100));
  s.close();
  return got;
}

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUasPort, peerUas, dead] = await freePorts(6);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUasPort!, peerUas: peerUas!, dead: dead! };
  redis = await startRedis();
  coreUasDir = scratchDir('core-uas-');
  cdrDir = scratchDir('cdr-');
  startUas(CORE_IP, ports.coreUas, { dir: coreUasDir, extra: ['-trace_msg'] });
  pg = await startPeergate({
    listen: [listener('peer-udp', ports.peerSip), listener('core-udp', ports.coreSip)],
    core: { targets: [`sip:${CORE_IP}:${ports.coreUas}`], media: { srtp: 'forbidden' } },
    media: { rtpengine: 'spawn', embedded: { port_min: 44000 + (ports.ops % 200) * 40, port_max: 44000 + (ports.ops % 200) * 40 + 39 } },
    ops: { port: ports.ops },
    log: { level: 'info' },
    failover: { no_answer_ms: 1000 },
    cdr: { file: cdrFile(), redis_stream: { url: redis.url, key: 'test:cdr', maxlen: 1000 } },
    peers: [
      { id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:${ports.peerUas}`], identity: { mode: 'verify' } },
      { id: 'carrier-b', match: { addresses: [`${PEER_B_IP}/32`] }, limits: { cps: 1, burst: 1 } },
      { id: 'carrier-dead', match: { addresses: [`${DEAD_IP}/32`] }, targets: [`sip:${DEAD_IP}:${ports.dead}`] },
    ],
    routes: [
      { from: 'core', called_prefix: '+44', to: 'carrier-a' },
      { from: 'core', called_prefix: '+49', to: 'carrier-dead' },
      { from: 'carrier-b', to: 'carrier-dead' },
      { from: 'peers', to: 'core' },
    ],
  });
}, 90_000);

afterAll(async () => {
  await pg?.stop();
  await stopAll();
  await redis?.stop();
});

describe('call records', () => {
  it('records an answered call with both Call-IDs, times, media, and who hung up; /admin/calls and logs carry the Call-ID', async () => {
    const dir = scratchDir('uac-');
    const run = runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '1', '-d', '1500', '-trace_msg'], { dir, timeoutS: 30 });
    // While the call is up, the admin API shows it under the caller's Call-ID.
    const listed = await waitFor(async () => {
      const { calls } = await (await pg.admin('/admin/calls')).json() as { calls: Array<{ call_id: string }> };
      return calls[0]?.call_id;
    }, 10_000, 50, 'call listed on /admin/calls');
    const r = await run;
    expect(r.successful).toBe(1);
    const [callId] = sippCallIds(dir);
    expect(listed).toBe(callId);
    const rec = await recordFor(callId!);
    const coreIds = sippCallIds(coreUasDir);
    expect(coreIds).toContain(rec.b_call_id);
    expect(rec.b_call_id).not.toBe(callId);
    expect(rec).toMatchObject({
      peer: 'carrier-a', direction: 'inbound', calling: 'sipp', called: '+15551230000', transport: 'udp',
      tls_identity: null, status: 200, result: 'caller_bye', ended_by: 'caller', end_reason: 'bye',
      media: { anchored: true, srtp_a: false, srtp_b: false },
      // Verified per the peer's policy; SIPp sends no Identity header.
      identity: { verdict: 'none', verstat: 'No-TN-Validation' },
    });
    expect(rec.source).toMatch(new RegExp(`^${PEER_IP.replace(/\./g, '\\.')}:\\d+$`));
    expect(rec.duration_s).toBeGreaterThanOrEqual(1.2);
    expect(rec.duration_s).toBeLessThan(10);
    expect(Date.parse(rec.answer_time)).toBeGreaterThanOrEqual(Date.parse(rec.setup_time));
    expect(Date.parse(rec.end_time) - Date.parse(rec.answer_time)).toBe(Math.round(rec.duration_s * 1000));
    // The call's log lines carry the caller's Call-ID next to peergate's own id.
    expect(pg.proc.output()).toContain(`"call":"${rec.id}","call_id":"${callId}"`);
  });

  it('records SRTP per side: SDES from the peer, plain RTP toward the core', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, PEER_IP, () => r()));
    const port = s.address().port;
    const got: string[] = [];
    s.on('message', (m) => got.push(m.toString()));
    const send = (m: string) => s.send(m, ports.peerSip, '127.0.0.1');
    const sdp = `v=0\r\no=- 1 1 IN IP4 ${PEER_IP}\r\ns=-\r\nc=IN IP4 ${PEER_IP}\r\nt=0 0\r\nm=audio 7010 RTP/SAVP 0\r\n` +
      'a=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n';
    const head = (branch: string) => `Via: SIP/2.0/UDP ${PEER_IP}:${port};branch=z9hG4bK-srtp-${branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@${PEER_IP}>;tag=s1\r\nCall-ID: cdr-srtp-1\r\n`;
    send(`INVITE sip:+15551230000@127.0.0.1 SIP/2.0\r\n${head('inv')}To: <sip:+15551230000@127.0.0.1>\r\nCSeq: 1 INVITE\r\n` +
      `Contact: <sip:x@${PEER_IP}:${port}>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`);
    const ok = (await waitFor(() => got.find((m) => m.startsWith('SIP/2.0 200')), 10_000, 50, '200 OK'))!;
    expect(ok).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    const to = /^To:.*$/m.exec(ok)![0];
    const contact = /^Contact:\s*<([^>]+)>/m.exec(ok)![1];
    send(`ACK ${contact} SIP/2.0\r\n${head('ack')}${to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 200));
    send(`BYE ${contact} SIP/2.0\r\n${head('bye')}${to}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => got.some((m) => m.startsWith('SIP/2.0 200') && /CSeq: 2 BYE/.test(m)), 10_000, 50, '200 to BYE');
    s.close();
    expect(await recordFor('cdr-srtp-1')).toMatchObject({ result: 'caller_bye', media: { anchored: true, srtp_a: true, srtp_b: false } });
  });

  it('records a cancelled call', async () => {
    const uas = startSipp(['-sf', join(SCEN, 'uas-ring-forever.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
    const dir = scratchDir('uac-cancel-');
    const r = await runSipp(['-sf', join(SCEN, 'uac-cancel.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1',
      '-s', '+442079460000', '-m', '1', '-trace_msg'], { dir, timeoutS: 20 });
    expect(r.successful).toBe(1);
    const rec = await recordFor(sippCallIds(dir)[0]!);
    expect(rec).toMatchObject({
      peer: 'carrier-a', direction: 'outbound', calling: '+15550001', called: '+442079460000',
      status: 487, result: 'canceled', ended_by: 'caller', end_reason: 'cancel', answer_time: null, duration_s: 0,
    });
    expect(rec.b_call_id).toEqual(expect.any(String));
    await uas.stop();
  });

  it('records a call that timed out on a target that never answers, and one refused by the rate limit', async () => {
    // carrier-b may start one call per second: the first goes to a dead target, the second is refused.
    const timedOut = rawInvite(PEER_B_IP, ports.peerSip, '+15551230000', 'cdr-timeout-1');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await rawInvite(PEER_B_IP, ports.peerSip, '+15551230000', 'cdr-refused-1');
    expect(refused.some((m) => m.startsWith('SIP/2.0 503'))).toBe(true);
    expect((await timedOut).some((m) => m.startsWith('SIP/2.0 408'))).toBe(true);
    expect(await recordFor('cdr-refused-1')).toMatchObject({
      peer: 'carrier-b', direction: 'inbound', status: 503, result: 'refused', ended_by: 'peergate', end_reason: 'limit_cps', b_call_id: null,
      identity: null, answer_time: null, media: { anchored: false, srtp_a: false, srtp_b: false },
    });
    const t = await recordFor('cdr-timeout-1');
    expect(t).toMatchObject({ peer: 'carrier-b', status: 408, result: 'failed', ended_by: 'peergate', end_reason: 'no_answer', target: `sip:${DEAD_IP}:${ports.dead}` });
    expect(t.b_call_id).toEqual(expect.any(String));
    expect(t.setup_s).toBeGreaterThanOrEqual(0.9);
  });

  it('records a call refused by admission (Max-Forwards 0)', async () => {
    const mf0 = await rawInviteMf0();
    expect(mf0.some((m) => m.startsWith('SIP/2.0 483'))).toBe(true);
    expect(await recordFor('cdr-mf0-2')).toMatchObject({ status: 483, result: 'refused', ended_by: 'peergate', peer: 'carrier-a' });
  });

  it('writes to a new file after logrotate renames the old one and sends SIGUSR1', async () => {
    const before = records().length;
    renameSync(cdrFile(), `${cdrFile()}.1`);
    process.kill(pg.proc.pid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 300));
    const dir = scratchDir('uac-rot-');
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '1', '-trace_msg'], { dir, timeoutS: 30 });
    expect(r.successful).toBe(1);
    const callId = sippCallIds(dir)[0]!;
    const rec = await recordFor(callId);
    expect(rec.result).toBe('caller_bye');
    expect(records()).toHaveLength(1);
    expect(records(`${cdrFile()}.1`)).toHaveLength(before);
    // peergate kept running (SIGUSR1 did not start an inspector or stop it).
    expect(pg.proc.child.exitCode).toBeNull();
  });

  it('XADDs every record to the Redis stream, with its Call-ID as a field', async () => {
    const client = new Redis(redis.url);
    try {
      const fileIds = [...records(`${cdrFile()}.1`), ...records()].map((r) => r.call_id as string);
      const entries = (await waitFor(async () => {
        const e = await client.xrange('test:cdr', '-', '+');
        return e.length >= fileIds.length ? e : undefined;
      }, 10_000, 100, 'stream entries'))!;
      const streamIds = entries.map(([, fields]) => fields[fields.indexOf('call_id') + 1]);
      expect(streamIds.sort()).toEqual([...fileIds].sort());
      for (const [, fields] of entries) {
        const rec = JSON.parse(fields[fields.indexOf('record') + 1]!) as Rec;
        expect(rec.call_id).toBe(fields[fields.indexOf('call_id') + 1]);
      }
    } finally {
      client.disconnect();
    }
    expect(await pg.metric('peergate_cdr_records_total', { sink: 'redis', result: 'dropped' })).toBe(0);
  });

  it('keeps taking calls while Redis is down, and catches the stream up when it is back', async () => {
    await redis.stop();
    const dir = scratchDir('uac-noredis-');
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '1', '-trace_msg'], { dir, timeoutS: 30 });
    expect(r.successful).toBe(1);
    const callId = sippCallIds(dir)[0]!;
    await recordFor(callId);
    await waitFor(async () => (await pg.metric('peergate_cdr_records_total', { sink: 'redis', result: 'failed' })) > 0, 10_000, 100, 'redis failure counted');
    await redis.restart();
    const client = new Redis(redis.url);
    try {
      // The restarted Redis is empty: the record kept in the queue is the one that arrives.
      const entries = (await waitFor(async () => {
        const e = await client.xrange('test:cdr', '-', '+');
        return e.length ? e : undefined;
      }, 40_000, 200, 'queued record written after Redis returned'))!;
      expect(entries.map(([, f]) => f[f.indexOf('call_id') + 1])).toEqual([callId]);
    } finally {
      client.disconnect();
    }
  }, 60_000);

  it('a policy reload that moves the file writes new records to the new one at once', async () => {
    const policy = parse(readFileSync(pg.policyPath, 'utf8')) as Record<string, any>;
    const moved = join(cdrDir, 'moved.jsonl');
    policy.cdr = { file: moved };
    writeFileSync(pg.policyPath, stringify(policy));
    const res = await pg.admin('/admin/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    const before = records().length;
    const dir = scratchDir('uac-reload-');
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', '1', '-trace_msg'], { dir, timeoutS: 30 });
    expect(r.successful).toBe(1);
    const callId = sippCallIds(dir)[0]!;
    expect((await recordFor(callId, moved)).result).toBe('caller_bye');
    expect(records()).toHaveLength(before);
  });
});

async function rawInviteMf0(): Promise<string[]> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, PEER_IP, () => r()));
  const port = s.address().port;
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  s.send(`INVITE sip:+15551230000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${PEER_IP}:${port};branch=z9hG4bK-mf0\r\nFrom: <sip:x@${PEER_IP}>;tag=m1\r\n` +
    `To: <sip:+15551230000@127.0.0.1>\r\nCall-ID: cdr-mf0-2\r\nMax-Forwards: 0\r\nCSeq: 1 INVITE\r\nContact: <sip:x@${PEER_IP}:${port}>\r\nContent-Length: 0\r\n\r\n`, ports.peerSip, '127.0.0.1');
  await waitFor(() => got.some((m) => /^SIP\/2\.0 [3-6]/.test(m)), 5000, 50, 'final response');
  s.close();
  return got;
}
