// Mutual TLS on the engine with node tls clients: no certificate and an untrusted one fail the
// handshake; a trusted one completes OPTIONS and a call, and the app sees the identity header
// (never a copy forged by the network).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { freePort, scratchDir, stopAll } from '../helpers/procs.js';
import { SECRET, startConnectedApp, type AppProc } from '../helpers/engine.js';
import { StreamReader, header } from '../helpers/engine-sip.js';
import { startEngine, type Engine } from '../../src/engine/engine.js';

const dir = scratchDir('engine-tls-');
const f = (n: string) => join(dir, n);
const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
let engine: Engine;
let app: AppProc;
let port: number;

beforeAll(async () => {
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Engine Test CA']);
  for (const n of ['server', 'client']) {
    sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/O=Peer, Inc./CN=${n}.sbc.test`]);
    writeFileSync(f(`${n}.ext`), `subjectAltName=DNS:localhost,DNS:${n}.sbc.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
    sh(['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.pem`, '-days', '2', '-extfile', `${n}.ext`]);
  }
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2', '-subj', '/CN=rogue']);
  port = await freePort();
  engine = await startEngine({
    contacts: [`sips:127.0.0.1:${port};transport=tls`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: SECRET },
    tls: { key: readFileSync(f('server.key')), cert: readFileSync(f('server.pem')), clientCAs: [readFileSync(f('ca.pem'))], requireClientCert: true },
  });
  app = await startConnectedApp('uas.mjs', engine, {}, ['options', 'invite']);
});

afterAll(async () => {
  await stopAll();
  await engine?.close();
});

function open(cert?: string): Promise<{ sock: TLSSocket; reader: StreamReader } | { error: string }> {
  return new Promise((resolve) => {
    const sock = tlsConnect({
      host: '127.0.0.1', port, ca: readFileSync(f('ca.pem')), checkServerIdentity: () => undefined,
      ...(cert ? { key: readFileSync(f(`${cert}.key`)), cert: readFileSync(f(`${cert}.pem`)) } : {}),
    });
    const reader = new StreamReader(sock);
    let settled = false;
    sock.once('secureConnect', () => {
      // With TLS 1.3 the server's verdict on our certificate arrives after the handshake:
      // wait briefly for an alert before declaring success.
      setTimeout(() => { if (!settled) { settled = true; resolve(sock.destroyed ? { error: 'closed' } : { sock, reader }); } }, 150);
    });
    sock.once('error', (e) => { if (!settled) { settled = true; resolve({ error: e.message }); } });
    sock.once('close', () => { if (!settled) { settled = true; resolve({ error: 'closed' }); } });
  });
}

function options(localPort: number, extra = ''): string {
  return `OPTIONS sip:test@127.0.0.1:${port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:${localPort};branch=z9hG4bK-tls-${Math.random().toString(36).slice(2)};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sips:tester@127.0.0.1>;tag=t1\r\nTo: <sips:test@127.0.0.1:${port}>\r\nCall-ID: tls-${Math.random()}\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length: 0\r\n\r\n`;
}

describe('engine over mutual TLS', () => {
  it('a client without a certificate fails the handshake', async () => {
    const r = await open();
    expect('error' in r).toBe(true);
  });

  it('a client with a certificate from an untrusted CA fails', async () => {
    const r = await open('rogue');
    expect('error' in r).toBe(true);
  });

  it('a trusted client gets OPTIONS answered; the app sees the identity, not a forged copy', async () => {
    const r = await open('client');
    if ('error' in r) throw new Error(r.error);
    r.reader.write(options(r.sock.localPort!, 'X-Peergate-TLS-Identity: subject="CN=evil";san="";fp256=00\r\n'));
    const resp = await r.reader.take((t) => t.startsWith('SIP/2.0 200'), 5000, '200 to OPTIONS');
    expect(header(resp, 'X-Test-App')).toBe('uas');
    const ev = await app.waitEvent((e) => e.event === 'options');
    expect(ev.protocol).toBe('tls');
    const fp = new X509Certificate(readFileSync(f('client.pem'))).fingerprint256;
    const id = String(ev.tls);
    expect(id).not.toContain('evil');
    // node escapes the comma (RFC 4514: `O=Peer\, Inc.`); inside the quoted string the backslash is escaped again.
    expect(id).toContain('subject="O=Peer\\\\, Inc., CN=client.sbc.test"');
    expect(id).toContain('san="DNS:localhost,DNS:client.sbc.test,IP:127.0.0.1"');
    expect(id).toContain(`fp256=${fp}`);
    r.sock.destroy();
  });

  it('a trusted client completes INVITE/200/ACK/BYE; the app sees protocol tls and a sips Contact comes back', async () => {
    const r = await open('client');
    if ('error' in r) throw new Error(r.error);
    const lp = r.sock.localPort!;
    const callId = `tls-call-${Date.now()}`;
    const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
    const base = (method: string, seq: number, toTag = '', branch = `z9hG4bK-${method}-${seq}`) =>
      `Via: SIP/2.0/TLS 127.0.0.1:${lp};branch=${branch};rport\r\nMax-Forwards: 70\r\nFrom: <sips:caller@127.0.0.1>;tag=c1\r\n` +
      `To: <sips:svc@127.0.0.1:${port}>${toTag}\r\nCall-ID: ${callId}\r\nCSeq: ${seq} ${method}\r\n`;
    r.reader.write(`INVITE sips:svc@127.0.0.1:${port} SIP/2.0\r\n${base('INVITE', 1)}Contact: <sips:caller@127.0.0.1:${lp};transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`);
    await r.reader.take((t) => t.startsWith('SIP/2.0 100'), 5000, '100 Trying');
    const ok = await r.reader.take((t) => t.startsWith('SIP/2.0 200'), 5000, '200 OK');
    expect(header(ok, 'Contact')).toBe(`<sips:127.0.0.1:${port};transport=tls>`);
    const toTag = /;tag=([^;\s]+)/.exec(header(ok, 'To')!)![1]!;
    r.reader.write(`ACK sips:127.0.0.1:${port};transport=tls SIP/2.0\r\n${base('ACK', 1, `;tag=${toTag}`, 'z9hG4bK-ack1')}Content-Length: 0\r\n\r\n`);
    const inv = await app.waitEvent((e) => e.event === 'invite' && e.callId === callId);
    expect(inv.protocol).toBe('tls');
    expect(String(inv.tls)).toContain('CN=client.sbc.test');
    await app.waitEvent((e) => e.event === 'uas-dialog' && String(e.id).startsWith(callId));
    r.reader.write(`BYE sips:127.0.0.1:${port};transport=tls SIP/2.0\r\n${base('BYE', 2, `;tag=${toTag}`)}Content-Length: 0\r\n\r\n`);
    await r.reader.take((t) => t.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/.test(t), 5000, '200 to BYE');
    await app.waitEvent((e) => e.event === 'destroy' && String(e.id).startsWith(callId));
    r.sock.destroy();
  });
});
