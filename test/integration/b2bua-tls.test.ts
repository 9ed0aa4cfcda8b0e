// Mutual TLS at the peering edge (RFC 6404 §4.5/§4.6) through `peergate start`: a peer is
// recognised by its verified certificate AND its source address; either alone is refused.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type TLSSocket } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { freePorts, startUas, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { createFederationCa, createPeerCertificate, type Written } from '../../src/pki/files.js';

let pg: RunningPeergate;
let p: { tls: number; udp: number; core: number; ops: number; uas: number };
let ca: Written, sbe: Written, peerCert: Written, rogueCa: Written, rogue: Written;

beforeAll(async () => {
  const [tls, udp, core, ops, uas] = await freePorts(5);
  p = { tls: tls!, udp: udp!, core: core!, ops: ops!, uas: uas! };
  const dir = scratchDir('tls-pki-');
  ca = createFederationCa(dir);
  sbe = createPeerCertificate(dir, 'sbe', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
  peerCert = createPeerCertificate(dir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] });
  const rogueDir = scratchDir('rogue-pki-');
  rogueCa = createFederationCa(rogueDir, { cn: 'rogue CA' });
  rogue = createPeerCertificate(rogueDir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] });
  startUas(CORE_IP, p.uas);
  pg = await startPeergate({
    listen: [listener('peer-tls', p.tls), listener('peer-udp', p.udp), listener('core-udp', p.core)],
    tls: { certificate: sbe.certPath, key: sbe.keyPath, client_cas: [ca.certPath], require_client_cert: true },
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { rtpengine: 'spawn', embedded: { port_min: 42000 + (p.ops % 100) * 20, port_max: 42000 + (p.ops % 100) * 20 + 19 } },
    ops: { port: p.ops },
    log: { level: 'warn' },
    peers: [{
      id: 'carrier-a', transport: 'tls',
      match: { addresses: [`${PEER_IP}/32`], certificate: { subject_alt_names: ['sbc.carrier-a.example'] } },
    }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg));

/** A SIP-over-TLS client from `localAddress`; collects whatever comes back. */
async function tlsClient(localAddress: string, cert: Written | null, caPath = ca.certPath): Promise<{ sock: TLSSocket; received: string[]; error: Promise<Error | null> }> {
  const received: string[] = [];
  // The TCP connection comes from `localAddress`, as a peer's SBE would.
  const raw = tcpConnect({ host: '127.0.0.1', port: p.tls, localAddress });
  const sock = connect({
    socket: raw, ca: readFileSync(caPath), checkServerIdentity: () => undefined,
    ...(cert ? { cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) } : {}),
  });
  const error = new Promise<Error | null>((resolve) => {
    sock.once('error', (e) => resolve(e));
    sock.once('close', () => resolve(null));
  });
  sock.on('data', (d: Buffer) => received.push(d.toString()));
  await new Promise<void>((resolve) => { sock.once('secureConnect', () => resolve()); sock.once('error', () => resolve()); });
  return { sock, received, error };
}

const invite = (from: string, port: number, callId: string) => {
  const sdp = `v=0\r\no=- 1 1 IN IP4 ${from}\r\ns=-\r\nc=IN IP4 ${from}\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n`;
  return `INVITE sip:+15551230000@127.0.0.1:${p.tls};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS ${from}:${port};branch=z9hG4bK-${callId}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:+15550001@carrier-a.example>;tag=a-${callId}\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: ${callId}\r\n` +
    `CSeq: 1 INVITE\r\nContact: <sip:x@${from}:${port};transport=tls>\r\nX-Peergate-TLS-Identity: subject="CN=forged";san="DNS:sbc.carrier-a.example";fp256=00\r\n` +
    `Content-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`;
};

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mutual TLS peers through peergate start', () => {
  it('carries a call from a peer whose certificate and address both match', async () => {
    const c = await tlsClient(PEER_IP, peerCert);
    c.sock.write(invite(PEER_IP, c.sock.localPort!, 'tls-ok-1'));
    for (let i = 0; i < 50 && !c.received.join('').includes('SIP/2.0 200'); i++) await wait(100);
    const all = c.received.join('');
    expect(all).toContain('SIP/2.0 200');
    const toTag = /^To:.*tag=([^;\s>]+)/m.exec(all.slice(all.indexOf('SIP/2.0 200')))?.[1];
    const contact = /^Contact:\s*<([^>]+)>/m.exec(all.slice(all.indexOf('SIP/2.0 200')))?.[1];
    expect(contact).toMatch(/^sips?:/);
    const base = `Via: SIP/2.0/TLS ${PEER_IP}:${c.sock.localPort};branch=z9hG4bK-ack1\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001@carrier-a.example>;tag=a-tls-ok-1\r\nTo: <sip:+15551230000@127.0.0.1>;tag=${toTag}\r\nCall-ID: tls-ok-1\r\n`;
    c.sock.write(`ACK ${contact} SIP/2.0\r\n${base}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
    await wait(200);
    c.sock.write(`BYE ${contact} SIP/2.0\r\n${base.replace('ack1', 'bye1')}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`);
    for (let i = 0; i < 30 && !/CSeq: 2 BYE/.test(c.received.join('').split('SIP/2.0 200').pop() ?? ''); i++) await wait(100);
    expect(c.received.join('')).toMatch(/SIP\/2\.0 200[^]*CSeq: 2 BYE/);
    c.sock.destroy();
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses a valid certificate presented from another address (no answer)', async () => {
    const before = await pg.metric('peergate_refusals_total', { reason: 'certificate_from_wrong_address' });
    const c = await tlsClient('127.0.0.4', peerCert);
    c.sock.write(invite('127.0.0.4', c.sock.localPort!, 'tls-wrong-addr'));
    await wait(1500);
    expect(c.received.join('')).not.toMatch(/SIP\/2\.0 [2-6]\d\d/);
    expect(await pg.metric('peergate_refusals_total', { reason: 'certificate_from_wrong_address' })).toBe(before + 1);
    c.sock.destroy();
  });

  it('fails the handshake without a certificate, or with one from an untrusted CA', async () => {
    const none = await tlsClient(PEER_IP, null);
    expect(await none.error).not.toBeNull();
    const bad = await tlsClient(PEER_IP, rogue, rogueCa.certPath);
    bad.sock.write('OPTIONS sip:x SIP/2.0\r\n\r\n');
    // The server rejects the untrusted certificate; with TLS 1.3 the alert arrives after the client's first write.
    expect(await bad.error).not.toBeNull();
    // The client may see the alert before the server has counted the failure: wait (bounded).
    await waitFor(async () => (await pg.metric('peergate_tls_handshakes_total', { result: 'failed' })) >= 2, 5000, 50, 'two failed handshakes counted');
  });

  it('refuses the TLS-only peer on UDP with 403', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, PEER_IP, () => r()));
    const got: string[] = [];
    s.on('message', (m) => got.push(m.toString()));
    const lp = s.address().port;
    s.send(`OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${PEER_IP}:${lp};branch=z9hG4bK-u1\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: udp-tls-only\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, p.udp, '127.0.0.1');
    await wait(1000);
    s.close();
    expect(got.some((m) => m.startsWith('SIP/2.0 403'))).toBe(true);
  });
});
