// TransportLayer over real UDP and TCP sockets on 127.0.0.1.
import { describe, it, expect, afterEach } from 'vitest';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Socket, type AddressInfo } from 'node:net';
import { TransportLayer } from '../../src/engine/transport/index.js';
import { Shield } from '../../src/engine/shield/index.js';
import type { InboundPacket, SendResult } from '../../src/engine/transport/types.js';
import { waitFor, runSipp, freePort, stopAll } from '../helpers/procs.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await stopAll();
});

function options(n: number, transport = 'UDP', body = ''): string {
  return `OPTIONS sip:peer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:5999;branch=z9hG4bK-${n}\r\n` +
    `From: <sip:t@127.0.0.1>;tag=${n}\r\nTo: <sip:peer@127.0.0.1>\r\nCall-ID: call-${n}\r\nCSeq: ${n} OPTIONS\r\n` +
    `Max-Forwards: 70\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

async function layer(opts: Partial<ConstructorParameters<typeof TransportLayer>[0]> = {}) {
  const t = new TransportLayer({
    listeners: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }, { protocol: 'tcp', address: '127.0.0.1', port: 0 }],
    ...opts,
  });
  const received: InboundPacket[] = [];
  t.on('message', (p) => received.push(p));
  await t.listen();
  cleanups.push(() => t.close());
  const port = (proto: string) => t.contacts().find((c) => c.protocol === proto)!.port;
  return { t, received, udpPort: port('udp'), tcpPort: port('tcp') };
}

function tcpClient(port: number): Promise<{ sock: Socket; data: () => string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let isClosed = false;
    const sock = createConnection({ host: '127.0.0.1', port }, () => resolve({ sock, data: () => buf, closed: () => isClosed }));
    sock.on('data', (d) => { buf += d.toString('latin1'); });
    sock.on('close', () => { isClosed = true; });
    sock.on('error', reject);
    cleanups.push(() => { sock.destroy(); });
  });
}

describe('TransportLayer UDP', () => {
  it('binds ephemeral ports and round-trips a datagram', async () => {
    const { t, received, udpPort } = await layer({ limits: { udpReceiveBufferBytes: 1 << 20 } });
    expect(udpPort).toBeGreaterThan(0);
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const replies: string[] = [];
    client.on('message', (m) => replies.push(m.toString()));
    client.send(options(1), udpPort, '127.0.0.1');
    await waitFor(() => received.length === 1, 3000);
    const p = received[0]!;
    expect(p.data.toString()).toBe(options(1));
    expect(p.source).toEqual({ protocol: 'udp', address: '127.0.0.1', port: client.address().port });
    expect(p.local).toEqual({ protocol: 'udp', address: '127.0.0.1', port: udpPort });
    expect(p.connectionId).toBeUndefined();
    const r = await t.send({ protocol: 'udp', address: '127.0.0.1', port: p.source.port }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'));
    expect(r).toMatchObject({ ok: true, local: { protocol: 'udp', port: udpPort }, bytes: 37 });
    await waitFor(() => replies.length === 1, 3000);
    expect(replies[0]).toMatch(/^SIP\/2.0 200 OK/);
  });

  it('sendThen (the engine\'s path, no promise): the datagram goes out, and `done` hears of it only after the call returned, as it does of a refusal', async () => {
    const { t, udpPort } = await layer();
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString()));
    const results: SendResult[] = [];
    let returned = false;
    const note = (r: SendResult) => { expect(returned).toBe(true); results.push(r); };
    const okBefore = t.stats.send.ok;
    const failedBefore = t.stats.send.failed;
    t.sendThen({ protocol: 'udp', address: '127.0.0.1', port: client.address().port }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'), note);
    t.sendThen({ protocol: 'udp', address: 'peer.example', port: 5060 }, Buffer.from('x'), note);
    t.sendThen({ protocol: 'udp', address: '127.0.0.1', port: 0 }, Buffer.from('x'), note);
    t.sendThen({ protocol: 'udp', address: '::1', port: 5060 }, Buffer.from('x'), note); // no IPv6 listener
    t.sendThen({ protocol: 'udp', address: '127.0.0.1', port: client.address().port }, Buffer.from('no one asks'));
    returned = true;
    await waitFor(() => results.length === 4 && got.length === 2, 3000);
    const byReason = results.map((r) => (r.ok ? `ok ${r.local.port} ${r.bytes}` : r.reason)).sort();
    expect(byReason).toEqual(['no-transport', `ok ${udpPort} 37`, 'unreachable', 'unreachable']);
    expect(got.sort()).toEqual(['SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', 'no one asks']);
    expect(t.stats.send.ok - okBefore).toBe(2);
    expect(t.stats.send.failed - failedBefore).toBe(3);
  });

  it('drops oversize and blank datagrams and shielded sources', async () => {
    const shield = new Shield({});
    const { received, udpPort, t } = await layer({ limits: { maxMessageSize: 1000 }, shield });
    const client = createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const send = (s: string) => new Promise<void>((r) => client.send(s, udpPort, '127.0.0.1', () => r()));
    await send(options(2, 'UDP', 'x'.repeat(2000)));
    await send('\r\n\r\n');
    await waitFor(() => t.stats.udp.keepAlives === 1, 3000);
    shield.ban('127.0.0.1', 60_000);
    await send(options(3));
    await waitFor(() => t.stats.udp.shieldDropped === 1, 3000);
    shield.unban('127.0.0.1');
    await send(options(4));
    await waitFor(() => received.length === 1, 3000);
    expect(received[0]!.data.toString()).toContain('call-4');
    expect(t.stats.udp.oversize).toBe(1);
    expect(t.stats.udp.keepAlives).toBe(1);
    expect(t.stats.udp.shieldDropped).toBe(1);
    expect(shield.counters.dropped.ban).toBe(1);
  });

  it('per-source token bucket: a burst beyond the bucket is dropped before parsing', async () => {
    const shield = new Shield({ rate: { ratePerSec: 2, burst: 5 } });
    cleanups.push(() => shield.close());
    const { received, udpPort, t } = await layer({ shield });
    const client = createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => client.close(() => r())));
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) await new Promise<void>((r) => client.send(options(100 + i), udpPort, '127.0.0.1', () => r()));
    await waitFor(() => received.length + t.stats.udp.shieldDropped === 40, 3000, 10, 'all 40 datagrams accounted for');
    const elapsedS = (Date.now() - t0) / 1000;
    // 5 from the burst, plus whatever refilled at 2/s while sending.
    expect(received.length).toBeGreaterThanOrEqual(5);
    expect(received.length).toBeLessThanOrEqual(5 + Math.ceil(elapsedS * 2));
    expect(shield.counters.dropped.rateLimited).toBe(40 - received.length);
  });

  it('answers sipp over UDP (real UA)', async () => {
    const { t, udpPort } = await layer();
    // Minimal UAS: answer OPTIONS with 200 copying the dialog headers.
    t.on('message', (p) => void t.send(p.source, reply200(p.data.toString())));
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${udpPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-m', '1', '-d', '10'], { timeoutS: 10 });
    // sipp's uac sends INVITE; our echo answers 200 to INVITE and BYE alike; ACK needs no answer.
    expect(res.successful).toBe(1);
    expect(res.failed).toBe(0);
  });
});

/** 200 OK for a request: copies Via/From/To/Call-ID/CSeq (adds a To tag). */
function reply200(req: string): Buffer {
  const lines = req.split('\r\n');
  const keep = lines.filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq):/i.test(l)).map((l) =>
    /^(to|t):/i.test(l) && !/;tag=/.test(l) ? `${l};tag=peergate` : l);
  const method = lines[0]!.split(' ')[0];
  if (method === 'ACK') return Buffer.alloc(0);
  const contact = 'Contact: <sip:t@127.0.0.1>';
  return Buffer.from(`SIP/2.0 200 OK\r\n${keep.join('\r\n')}\r\n${contact}\r\nContent-Length: 0\r\n\r\n`);
}

/** A plain TCP server standing in for a peer; its sockets are destroyed at cleanup. */
async function plainServer(onConn: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => { sockets.add(s); s.on('error', () => {}); onConn(s); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }));
  return (srv.address() as AddressInfo).port;
}

describe('TransportLayer TCP', () => {
  it('frames messages, replies over the same connection, and answers keep-alives', async () => {
    const { t, received, tcpPort } = await layer();
    const c = await tcpClient(tcpPort);
    const a = options(10, 'TCP', 'body-a'); const b = options(11, 'TCP');
    c.sock.write(a + b.slice(0, 20));
    await new Promise((r) => setTimeout(r, 30));
    c.sock.write(b.slice(20) + '\r\n\r\n');
    await waitFor(() => received.length === 2 && c.data() === '\r\n', 3000, 10, 'two messages and a pong');
    expect(received.map((p) => p.data.toString())).toEqual([a, b]);
    const p = received[0]!;
    expect(p.connectionId).toBeTruthy();
    expect(received[1]!.connectionId).toBe(p.connectionId);
    expect(p.source).toEqual({ protocol: 'tcp', address: '127.0.0.1', port: c.sock.localPort });
    expect(p.local).toEqual({ protocol: 'tcp', address: '127.0.0.1', port: tcpPort });
    // The client's source port accepts no connections: only the existing connection can carry the reply.
    const r = await t.send({ protocol: 'tcp', address: '127.0.0.1', port: 1, connectionId: p.connectionId }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'));
    expect(r).toMatchObject({ ok: true, connectionId: p.connectionId });
    await waitFor(() => c.data().includes('200 OK'), 3000);
    expect(t.stats.stream.keepAlives).toBe(1);
  });

  it('reuses a live connection to the same address:port without a connectionId', async () => {
    const { t, received, tcpPort } = await layer();
    const c = await tcpClient(tcpPort);
    c.sock.write(options(12, 'TCP'));
    await waitFor(() => received.length === 1, 3000);
    const r = await t.send({ protocol: 'tcp', address: '127.0.0.1', port: c.sock.localPort! }, Buffer.from(options(13, 'TCP')));
    expect(r).toMatchObject({ ok: true, connectionId: received[0]!.connectionId });
    await waitFor(() => c.data().includes('call-13'), 3000);
    expect(t.connectionCount).toBe(1);
  });

  it('closes a connection that sends a message without Content-Length', async () => {
    const { t, received, tcpPort } = await layer();
    const c = await tcpClient(tcpPort);
    c.sock.write('OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1\r\n\r\n');
    await waitFor(() => c.closed(), 3000, 10, 'server closes the connection');
    expect(received).toEqual([]);
    expect(t.stats.stream.framingErrors['no-content-length']).toBe(1);
    await waitFor(() => t.connectionCount === 0, 1000);
  });

  it('closes a connection sending garbage', async () => {
    const { t, tcpPort } = await layer();
    const c = await tcpClient(tcpPort);
    c.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.closed(), 3000);
    expect(t.stats.stream.framingErrors.garbage).toBe(1);
  });

  it('closes idle connections', async () => {
    const { t, tcpPort } = await layer({ limits: { idleTimeoutMs: 150 } });
    const c = await tcpClient(tcpPort);
    const opened = Date.now();
    await waitFor(() => c.closed(), 3000, 10, 'idle close');
    expect(Date.now() - opened).toBeGreaterThanOrEqual(100);
    expect(t.stats.stream.idleClosed).toBe(1);
  });

  it('enforces the per-source connection limit and frees slots on close', async () => {
    const { t, tcpPort } = await layer({ limits: { maxConnectionsPerSource: 2 } });
    const a = await tcpClient(tcpPort); await tcpClient(tcpPort);
    await waitFor(() => t.connectionCount === 2, 2000);
    const third = await tcpClient(tcpPort);
    await waitFor(() => third.closed(), 3000, 10, 'third connection refused');
    expect(t.stats.stream.perSourceRejected).toBe(1);
    a.sock.destroy();
    await waitFor(() => t.connectionCount === 1, 2000);
    const fourth = await tcpClient(tcpPort);
    await waitFor(() => t.connectionCount === 2, 2000);
    expect(fourth.closed()).toBe(false);
  });

  it('shield rejects connections from banned sources and drops messages per source', async () => {
    const shield = new Shield({});
    const { t, received, tcpPort } = await layer({ shield });
    const c = await tcpClient(tcpPort);
    await waitFor(() => t.connectionCount === 1, 2000);
    shield.ban('127.0.0.1', 60_000);
    c.sock.write(options(20, 'TCP'));
    const refused = await tcpClient(tcpPort);
    await waitFor(() => refused.closed(), 3000);
    expect(t.stats.stream.shieldRejected).toBe(1);
    await waitFor(() => t.stats.stream.shieldDropped === 1, 2000);
    expect(received).toEqual([]);
  });

  it('connects out when no connection exists, and reports refused', async () => {
    const { t } = await layer();
    let got = '';
    const port = await plainServer((s) => s.on('data', (d) => { got += d.toString(); }));
    const [r1, r2] = await Promise.all([
      t.send({ protocol: 'tcp', address: '127.0.0.1', port }, Buffer.from(options(30, 'TCP'))),
      t.send({ protocol: 'tcp', address: '127.0.0.1', port }, Buffer.from(options(31, 'TCP'))),
    ]);
    expect(r1.ok && r2.ok).toBe(true);
    // Concurrent sends share one new connection.
    expect(r1.ok && r2.ok && r1.connectionId === r2.connectionId).toBe(true);
    await waitFor(() => got.includes('call-30') && got.includes('call-31'), 3000);
    const closedPort = await freePort();
    const r3 = await t.send({ protocol: 'tcp', address: '127.0.0.1', port: closedPort }, Buffer.from('x'));
    expect(r3).toMatchObject({ ok: false, reason: 'refused' });
  });

  it('receives responses on a connection it opened', async () => {
    const { t, received } = await layer();
    const port = await plainServer((s) => s.on('data', () => s.write('SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n')));
    const r = await t.send({ protocol: 'tcp', address: '127.0.0.1', port }, Buffer.from(options(40, 'TCP')));
    await waitFor(() => received.length === 1, 3000);
    expect(r.ok && received[0]!.connectionId === r.connectionId).toBe(true);
    expect(received[0]!.source).toEqual({ protocol: 'tcp', address: '127.0.0.1', port });
    await t.close();
  });

  it('answers sipp over TCP (real UA, one connection)', async () => {
    const { t, tcpPort } = await layer();
    t.on('message', (p) => { const b = reply200(p.data.toString()); if (b.length) void t.send({ ...p.source, connectionId: p.connectionId! }, b); });
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${tcpPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 't1', '-m', '3', '-d', '10'], { timeoutS: 10 });
    expect(res.successful, res.output.slice(-1500)).toBe(3);
    expect(res.failed).toBe(0);
  });
});


describe('TransportLayer limits and robustness', () => {
  it('enforces the total connection limit', async () => {
    const { t, tcpPort } = await layer({ limits: { maxConnections: 2 } });
    await tcpClient(tcpPort); await tcpClient(tcpPort);
    await waitFor(() => t.connectionCount === 2, 2000);
    const third = await tcpClient(tcpPort);
    await waitFor(() => third.closed(), 3000);
    expect(t.stats.stream.totalRejected).toBe(1);
    // Outbound connections count too.
    const port = await plainServer(() => {});
    const r = await t.send({ protocol: 'tcp', address: '127.0.0.1', port }, Buffer.from(options(50, 'TCP')));
    expect(r).toMatchObject({ ok: false, reason: 'unreachable', detail: 'connection limit reached' });
  });

  it('a connection flood over the limit is refused in full but logged ten lines a second, the rest counted', async () => {
    const warned: Array<{ obj: { not_logged_before?: number }; msg: string }> = [];
    const { t, tcpPort } = await layer({ limits: { maxConnections: 1 }, logger: { debug() {}, warn: (obj, msg) => { warned.push({ obj, msg }); } } });
    await tcpClient(tcpPort);
    await waitFor(() => t.connectionCount === 1, 2000);
    const flood = await Promise.all(Array.from({ length: 40 }, () => tcpClient(tcpPort)));
    await waitFor(() => flood.every((c) => c.closed()), 5000, 10, 'flood connections refused');
    expect(t.stats.stream.totalRejected).toBe(40);
    const lines = warned.filter((w) => w.msg === 'connection limit reached');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(40);
    // A refusal after the budget's window carries how many were left out before it.
    await new Promise((r) => setTimeout(r, 1050));
    const late = await tcpClient(tcpPort);
    await waitFor(() => late.closed(), 3000);
    const all = warned.filter((w) => w.msg === 'connection limit reached');
    expect(all.length).toBe(lines.length + 1);
    expect(lines.length + all.reduce((n, w) => n + (w.obj.not_logged_before ?? 0), 0)).toBe(40);
  });

  it('closes a connection whose peer stops reading once the write buffer cap is hit', async () => {
    const { t, received, tcpPort } = await layer({ limits: { maxWriteBufferBytes: 256 * 1024 } });
    const c = await tcpClient(tcpPort);
    c.sock.pause(); // never reads
    c.sock.write(options(80, 'TCP'));
    await waitFor(() => received.length === 1, 3000);
    const id = received[0]!.connectionId!;
    const chunk = Buffer.alloc(60_000, 0x41);
    let last: Awaited<ReturnType<typeof t.send>> | undefined;
    for (let i = 0; i < 200; i++) {
      last = await Promise.race([t.send({ protocol: 'tcp', address: '127.0.0.1', port: 1, connectionId: id }, chunk), new Promise<undefined>((r) => setTimeout(() => r(undefined), 5))]);
      if (last && !last.ok) break;
    }
    expect(last).toMatchObject({ ok: false, reason: 'closed' });
    expect(t.stats.stream.writeOverflows).toBe(1);
    await waitFor(() => !t.hasConnection(id), 2000);
  });

  it('works over IPv6 loopback', async () => {
    const t = new TransportLayer({ listeners: [{ protocol: 'udp', address: '::1', port: 0 }, { protocol: 'tcp', address: '::1', port: 0 }] });
    const got: InboundPacket[] = [];
    t.on('message', (p) => got.push(p));
    await t.listen();
    cleanups.push(() => t.close());
    const [udp, tcp] = t.contacts();
    const u = createSocket('udp6');
    cleanups.push(() => new Promise<void>((r) => u.close(() => r())));
    u.send(options(60), udp!.port, '::1');
    const c = createConnection({ host: '::1', port: tcp!.port });
    cleanups.push(() => { c.destroy(); });
    c.write(options(61, 'TCP'));
    await waitFor(() => got.length === 2, 3000);
    expect(got.map((p) => p.source.address)).toEqual(['::1', '::1']);
    // No IPv4 UDP listener: sending to an IPv4 address has no transport.
    expect(await t.send({ protocol: 'udp', address: '127.0.0.1', port: 9 }, Buffer.from('x'))).toMatchObject({ ok: false, reason: 'no-transport' });
  });

  it('a throwing message listener neither crashes nor stops delivery', async () => {
    const { t, received, udpPort } = await layer();
    let calls = 0;
    t.prependListener('message', () => { calls++; throw new Error('app bug'); });
    const u = createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => u.close(() => r())));
    u.send(options(70), udpPort, '127.0.0.1');
    u.send(options(71), udpPort, '127.0.0.1');
    await waitFor(() => calls === 2, 3000);
    expect(t.stats.listenerErrors).toBe(2);
    // The throwing listener came first, so the later one missed the events; the transport is fine.
    expect(received).toEqual([]);
    const c = await tcpClient(t.contacts()[1]!.port);
    c.sock.write(options(72, 'TCP'));
    await waitFor(() => calls === 3, 3000);
  });

  it('rejects bad configuration with clear errors and reports bad send targets', async () => {
    expect(() => new TransportLayer({ listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }] })).toThrow(/tls options/);
    expect(() => new TransportLayer({ listeners: [{ protocol: 'udp', address: 'localhost', port: 0 }] })).toThrow(/not an IP address/);
    expect(() => new TransportLayer({ listeners: [{ protocol: 'sctp' as 'udp', address: '127.0.0.1', port: 0 }] })).toThrow(/unknown transport/);
    expect(() => new TransportLayer({ listeners: [], limits: { idleTimeoutMs: -1 } })).toThrow(/idleTimeoutMs/);
    const { t, udpPort } = await layer();
    const busy = new TransportLayer({ listeners: [{ protocol: 'udp', address: '127.0.0.1', port: udpPort }] });
    await expect(busy.listen()).rejects.toThrow(/udp listen 127.0.0.1/);
    expect(await t.send({ protocol: 'udp', address: 'example.com', port: 5060 }, Buffer.from('x'))).toMatchObject({ ok: false, reason: 'unreachable' });
    expect(await t.send({ protocol: 'tls', address: '127.0.0.1', port: 5061 }, Buffer.from('x'))).toMatchObject({ ok: false, reason: 'no-transport' });
    await t.close();
    expect(await t.send({ protocol: 'udp', address: '127.0.0.1', port: 9 }, Buffer.from('x'))).toMatchObject({ ok: false, reason: 'closed' });
  });
});
