// The primary's mutual-TLS stream path alone (src/engine/transport/streams.ts, framer.ts): a
// TransportLayer with one TLS listener (client certificate required) in this process, and a peer
// in a child process that opens one TLS connection (as the compare bench's Kamailio relay does)
// and writes requests at a fixed rate, one TLS record each. For every request the layer answers
// with two responses on the same connection (a provisional and a final, as a proxy does), sent
// from the 'message' handler. Reported: this process's CPU per request (TLS read, framing, both
// writes and their SendResults; the peer's CPU is not counted), and at the peer the time from
// writing a request to reading its final response (p50 / p99), and the TLS records the peer read.
//
//   npm run build; flock /work/wt/notes/bench.lock nice -n 10 npx tsx bench/tls-stream.bench.ts
//     [--rate 4000 (requests/s)] [--seconds 6] [--root DIR (whose dist/ to load: another checkout's build)]
//     [--replies 2]
//
// The built code is loaded (dist/), so two checkouts compare with the same bench file.
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createFederationCa, createPeerCertificate } from '../src/pki/files.js';
import { scratchDir } from '../test/helpers/procs.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '4000' },
    seconds: { type: 'string', default: '6' },
    root: { type: 'string' },
    replies: { type: 'string', default: '2' },
    peer: { type: 'string' },
  },
});

const BODY = 'v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n';

function request(n: number): Buffer {
  return Buffer.from(`INVITE sip:+15551230000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-${n}\r\nMax-Forwards: 70\r\n`
    + `From: <sip:+15550001111@carrier-a.example>;tag=a${n}\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: bench-${n}@127.0.0.1\r\nCSeq: 1 INVITE\r\n`
    + `Contact: <sip:127.0.0.1:5061;transport=tls>\r\nX-N: ${n}\r\nContent-Type: application/sdp\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
}

function response(code: number, n: number): Buffer {
  return Buffer.from(`SIP/2.0 ${code} ${code === 200 ? 'OK' : 'Trying'}\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-${n}\r\n`
    + `From: <sip:+15550001111@carrier-a.example>;tag=a${n}\r\nTo: <sip:+15551230000@127.0.0.1>;tag=b${n}\r\nCall-ID: bench-${n}@127.0.0.1\r\nCSeq: 1 INVITE\r\n`
    + `Contact: <sip:127.0.0.1:5071;transport=tls>\r\nX-N: ${n}\r\nContent-Length: 0\r\n\r\n`);
}

interface PeerArgs { port: number; ca: string; cert: string; key: string; rate: number; seconds: number }

/** The peer: one TLS connection, requests paced every 5 ms, the final responses timed. */
async function peer(a: PeerArgs): Promise<void> {
  const s = tlsConnect({ host: '127.0.0.1', port: a.port, ca: readFileSync(a.ca), cert: readFileSync(a.cert), key: readFileSync(a.key), servername: 'localhost' });
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
  const total = a.rate * a.seconds;
  const sentAt = new Float64Array(total);
  const rtt: number[] = [];
  let records = 0;
  let finals = 0;
  let pending = '';
  s.on('data', (chunk: Buffer) => {
    records++;
    pending += chunk.toString('latin1');
    for (;;) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      if (!head.startsWith('SIP/2.0 200')) continue;
      const i = head.indexOf('X-N: ');
      const n = Number(head.slice(i + 5, head.indexOf('\r\n', i)));
      rtt.push(performance.now() - sentAt[n]!);
      finals++;
    }
  });
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * a.rate));
      // One write (one TLS record) per request, as a proxy relaying requests does.
      while (sent < due) { sentAt[sent] = performance.now(); s.write(request(sent)); sent++; }
      if (sent >= total) { clearInterval(tick); resolve(); }
    }, 5);
  });
  const deadline = performance.now() + 5000;
  while (finals < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  rtt.sort((x, y) => x - y);
  const q = (p: number) => rtt.length ? rtt[Math.min(rtt.length - 1, Math.floor(p * rtt.length))]! : NaN;
  process.send!({ sent, finals, records, p50: q(0.5), p99: q(0.99), wallMs: performance.now() - t0 });
  s.end();
}

async function main(): Promise<void> {
  const root = values.root ?? join(import.meta.dirname, '..');
  const { TransportLayer } = await import(join(root, 'dist/engine/transport/index.js')) as typeof import('../src/engine/transport/index.js');
  const dir = scratchDir('tls-stream-bench-');
  const ca = createFederationCa(dir);
  const server = createPeerCertificate(dir, 'sbe', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
  const client = createPeerCertificate(dir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] });
  const layer = new TransportLayer({
    listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }],
    tls: { key: readFileSync(server.keyPath), cert: readFileSync(server.certPath), clientCAs: [readFileSync(ca.certPath)], requireClientCert: true },
  });
  const [ep] = await layer.listen();
  const replies = Number(values.replies);
  let received = 0;
  let failed = 0;
  layer.on('message', (p) => {
    received++;
    const d = p.data;
    const i = d.indexOf('X-N: ');
    const n = Number(d.toString('latin1', i + 5, d.indexOf('\r\n', i)));
    const target = { protocol: 'tls' as const, address: p.source.address, port: p.source.port, connectionId: p.connectionId! };
    for (let k = 1; k <= replies; k++) {
      void layer.send(target, response(k === replies ? 200 : 100, n)).then((r) => { if (!r.ok) failed++; });
    }
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const child = fork(import.meta.filename, ['--peer', JSON.stringify({ port: ep!.port, ca: ca.certPath, cert: client.certPath, key: client.keyPath, rate, seconds })], { stdio: 'inherit' });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await new Promise<{ sent: number; finals: number; records: number; p50: number; p99: number; wallMs: number }>((resolve) => child.once('message', resolve as never));
  const cpu = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  await new Promise((r) => child.once('exit', r));
  await layer.close();
  const us = (cpu.user + cpu.system) / result.sent;
  console.log(`${root}: ${rate} requests/s × ${seconds} s, ${replies} replies each: received ${received}, finals ${result.finals}, send failures ${failed}; `
    + `CPU ${us.toFixed(1)} µs per request (${(100 * (cpu.user + cpu.system) / 1000 / wall).toFixed(0)} % of a core); `
    + `request → final p50/p99 ${result.p50.toFixed(2)}/${result.p99.toFixed(2)} ms; TLS reads at the peer ${result.records} (${(result.records / result.sent).toFixed(2)} per request)`);
}

if (values.peer) await peer(JSON.parse(values.peer) as PeerArgs);
else await main();
