// TransportLayer TLS and mutual TLS against node tls clients and another TransportLayer.
import { describe, it, expect, afterEach, beforeAll } from 'vitest';
import { connect as tlsConnect, type TLSSocket, type ConnectionOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createConnection } from 'node:net';
import { TransportLayer, type TransportOptions, type TlsHandshakeEvent } from '../../src/engine/transport/index.js';
import type { InboundPacket } from '../../src/engine/transport/types.js';
import { makePki, makeCa, issueCert, makeCrl, type TestPki, type TestCert } from '../helpers/tls.js';
import { waitFor, freePort } from '../helpers/procs.js';

let pki: TestPki;
let revoked: TestCert;
let crl: string;
beforeAll(() => {
  pki = makePki();
  revoked = issueCert(pki.ca, 'revoked');
  crl = makeCrl(pki.ca, [revoked]);
});

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => { while (cleanups.length) await cleanups.pop()!(); });

function options(n: number, body = ''): string {
  return `OPTIONS sip:peer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-${n}\r\n` +
    `From: <sip:t@127.0.0.1>;tag=${n}\r\nTo: <sip:peer@127.0.0.1>\r\nCall-ID: call-${n}\r\nCSeq: ${n} OPTIONS\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

async function tlsLayer(over: Partial<TransportOptions['tls']> = {}, limits: TransportOptions['limits'] = {}) {
  const t = new TransportLayer({
    listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }],
    tls: { key: pki.server.key, cert: pki.server.cert, clientCAs: [pki.ca.cert], requireClientCert: true, ...over },
    limits,
  });
  const received: InboundPacket[] = [];
  const handshakes: TlsHandshakeEvent[] = [];
  t.on('message', (p) => received.push(p));
  t.on('tls-handshake', (e) => handshakes.push(e));
  await t.listen();
  cleanups.push(() => t.close());
  return { t, received, handshakes, port: t.contacts()[0]!.port };
}

interface Client { sock: TLSSocket; data: () => string; error: () => Error | null; closed: () => boolean; secure: Promise<boolean> }

function client(port: number, o: ConnectionOptions): Client {
  let buf = '';
  let err: Error | null = null;
  let isClosed = false;
  const sock = tlsConnect({ host: '127.0.0.1', port, ca: [pki.ca.cert], ...o });
  const secure = new Promise<boolean>((resolve) => {
    sock.once('secureConnect', () => resolve(true));
    sock.once('close', () => resolve(false));
  });
  sock.on('data', (d) => { buf += d.toString(); });
  sock.on('error', (e) => { err = e; });
  sock.on('close', () => { isClosed = true; });
  cleanups.push(() => { sock.destroy(); });
  return { sock, secure, data: () => buf, error: () => err, closed: () => isClosed };
}

describe('TLS transport', () => {
  it('trusted client certificate: message carries the verified identity; reply goes back on the connection', async () => {
    const { t, received, handshakes, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    // The client sees our certificate.
    expect(c.sock.getPeerX509Certificate()!.fingerprint256).toBe(new X509Certificate(pki.server.cert).fingerprint256);
    c.sock.write(options(1, 'hello'));
    await waitFor(() => received.length === 1, 5000);
    const p = received[0]!;
    expect(p.data.toString()).toBe(options(1, 'hello'));
    expect(p.source).toMatchObject({ protocol: 'tls', address: '127.0.0.1', port: c.sock.localPort });
    expect(p.local).toEqual({ protocol: 'tls', address: '127.0.0.1', port });
    const x = new X509Certificate(pki.client.cert);
    expect(p.tls).toEqual({
      subject: 'O=Peergate Test, CN=client.sbc.test',
      subjectAltNames: ['DNS:client.sbc.test', 'IP:127.0.0.1', 'URI:sip:peer.sbc.test'],
      fingerprint256: x.fingerprint256,
    });
    expect(handshakes).toEqual([expect.objectContaining({ result: 'ok', direction: 'inbound', identity: p.tls })]);
    const r = await t.send({ protocol: 'tls', address: '127.0.0.1', port: 9, connectionId: p.connectionId }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'));
    expect(r).toMatchObject({ ok: true, connectionId: p.connectionId });
    await waitFor(() => c.data().includes('200 OK'), 3000);
  });

  it('no client certificate: handshake fails with an event, nothing delivered', async () => {
    const { received, handshakes, port } = await tlsLayer();
    const c = client(port, {});
    c.sock.on('secureConnect', () => c.sock.write(options(2)));
    await waitFor(() => c.closed(), 5000, 10, 'client closed');
    await waitFor(() => handshakes.length === 1, 3000);
    expect(handshakes[0]).toMatchObject({ result: 'failed', direction: 'inbound', source: { protocol: 'tls', address: '127.0.0.1' } });
    expect(handshakes[0]!.reason).toMatch(/CERTIFICATE/);
    expect(c.error()?.message ?? '').toMatch(/certificate required/);
    expect(received).toEqual([]);
  });

  it('certificate from an untrusted CA fails; so does a self-signed one', async () => {
    const { received, handshakes, port, t } = await tlsLayer();
    for (const cert of [pki.untrusted, pki.rogue]) {
      const c = client(port, { key: cert.key, cert: cert.cert });
      c.sock.on('secureConnect', () => c.sock.write(options(3)));
      await waitFor(() => c.closed(), 5000, 10, 'client closed');
    }
    await waitFor(() => handshakes.length === 2, 3000);
    for (const h of handshakes) expect(h).toMatchObject({ result: 'failed', source: { address: '127.0.0.1' } });
    expect(handshakes.map((h) => h.reason).join(' ')).toMatch(/UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
    expect(received).toEqual([]);
    expect(t.stats.tls.handshakesFailed).toBe(2);
    // Failed handshakes give back their per-source slot.
    await waitFor(() => t.connectionCount === 0, 2000);
  });

  it('a certificate revoked by the CRL fails; an unrevoked one from the same CA passes', async () => {
    const { received, handshakes, port } = await tlsLayer({ crls: [crl] });
    const bad = client(port, { key: revoked.key, cert: revoked.cert });
    bad.sock.on('secureConnect', () => bad.sock.write(options(4)));
    await waitFor(() => bad.closed(), 5000);
    await waitFor(() => handshakes.length === 1, 3000);
    expect(handshakes[0]).toMatchObject({ result: 'failed', reason: 'CERT_REVOKED' });
    const good = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await good.secure).toBe(true);
    good.sock.write(options(5));
    await waitFor(() => received.length === 1, 3000);
    expect(received[0]!.data.toString()).toContain('call-5');
  });

  it('refuses TLS 1.1', async () => {
    const { handshakes, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    expect(await c.secure).toBe(false);
    await waitFor(() => handshakes.length === 1, 3000);
    expect(handshakes[0]).toMatchObject({ result: 'failed', reason: 'ERR_SSL_UNSUPPORTED_PROTOCOL' });
  });

  it('negotiates TLS 1.2 with configured ciphers', async () => {
    const { received, port } = await tlsLayer({ ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    const c = client(port, { key: pki.client.key, cert: pki.client.cert, maxVersion: 'TLSv1.2' });
    expect(await c.secure).toBe(true);
    expect(c.sock.getProtocol()).toBe('TLSv1.2');
    expect(c.sock.getCipher().standardName).toBe('TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
    c.sock.write(options(6));
    await waitFor(() => received.length === 1, 3000);
  });

  it('optional client certificates: untrusted ones connect without an identity', async () => {
    const { received, port } = await tlsLayer({ requireClientCert: false });
    const a = client(port, { key: pki.untrusted.key, cert: pki.untrusted.cert });
    const b = client(port, { key: pki.client.key, cert: pki.client.cert });
    const n = client(port, {});
    expect(await a.secure && await b.secure && await n.secure).toBe(true);
    a.sock.write(options(7)); b.sock.write(options(8)); n.sock.write(options(9));
    await waitFor(() => received.length === 3, 3000);
    const byCall = (id: string) => received.find((p) => p.data.toString().includes(id))!;
    expect(byCall('call-7').tls).toBeUndefined();
    expect(byCall('call-8').tls?.subject).toBe('O=Peergate Test, CN=client.sbc.test');
    expect(byCall('call-9').tls).toBeUndefined();
  });

  it('reloadTls keeps established connections and new handshakes see the new certificate and CA', async () => {
    const { t, received, port } = await tlsLayer();
    const old = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await old.secure).toBe(true);
    old.sock.write(options(10));
    await waitFor(() => received.length === 1, 3000);
    const oldConn = received[0]!.connectionId!;

    const ca2 = makeCa(pki.dir, 'ca2', 'Second CA');
    const server2 = issueCert(ca2, 'server2');
    const client2 = issueCert(ca2, 'client2');
    t.reloadTls({ key: server2.key, cert: server2.cert, clientCAs: [ca2.cert], requireClientCert: true });

    // Established connection still works both ways.
    old.sock.write(options(11));
    await waitFor(() => received.length === 2, 3000);
    expect(received[1]!.connectionId).toBe(oldConn);
    const r = await t.send({ protocol: 'tls', address: '127.0.0.1', port: 1, connectionId: oldConn }, Buffer.from(options(12)));
    expect(r.ok).toBe(true);
    await waitFor(() => old.data().includes('call-12'), 3000);

    // New handshakes: new server certificate, new client CA (the old client CA is no longer trusted).
    const fresh = client(port, { key: client2.key, cert: client2.cert, ca: [ca2.cert] });
    expect(await fresh.secure).toBe(true);
    expect(fresh.sock.getPeerX509Certificate()!.fingerprint256).toBe(new X509Certificate(server2.cert).fingerprint256);
    fresh.sock.write(options(13));
    await waitFor(() => received.length === 3, 3000);
    expect(received[2]!.tls?.subject).toContain('client2.sbc.test');
    const stale = client(port, { key: pki.client.key, cert: pki.client.cert, ca: [ca2.cert] });
    stale.sock.on('secureConnect', () => stale.sock.write(options(14)));
    await waitFor(() => stale.closed(), 5000);
    await new Promise((res) => setTimeout(res, 50));
    expect(received.length).toBe(3);
    // Bad material is refused and the current material stays.
    expect(() => t.reloadTls({ key: 'not a key', cert: server2.cert })).toThrow(/invalid TLS material/);
    const again = client(port, { key: client2.key, cert: client2.cert, ca: [ca2.cert] });
    expect(await again.secure).toBe(true);
    // The client-certificate policy reloads too: now optional, a client without one gets in.
    t.reloadTls({ key: server2.key, cert: server2.cert, clientCAs: [ca2.cert], requireClientCert: false });
    const anon = client(port, { ca: [ca2.cert] });
    expect(await anon.secure).toBe(true);
    anon.sock.write(options(15));
    await waitFor(() => received.some((p) => p.data.toString().includes('call-15')), 3000);
    expect(received.find((p) => p.data.toString().includes('call-15'))!.tls).toBeUndefined();
  });

  it('outbound TLS presents our certificate; the peer sees our identity; responses come back', async () => {
    const b = await tlsLayer();
    const a = new TransportLayer({
      listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }],
      tls: { key: pki.client.key, cert: pki.client.cert, clientCAs: [pki.ca.cert], requireClientCert: true },
    });
    const aReceived: InboundPacket[] = [];
    a.on('message', (p) => aReceived.push(p));
    await a.listen();
    cleanups.push(() => a.close());
    b.t.on('message', (p) => void b.t.send({ ...p.source, connectionId: p.connectionId! }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n')));
    const r = await a.send({ protocol: 'tls', address: '127.0.0.1', port: b.port }, Buffer.from(options(20)));
    expect(r).toMatchObject({ ok: true, local: { protocol: 'tls', address: '127.0.0.1', port: a.contacts()[0]!.port } });
    await waitFor(() => b.received.length === 1 && aReceived.length === 1, 5000);
    expect(b.received[0]!.tls?.subject).toBe('O=Peergate Test, CN=client.sbc.test');
    expect(aReceived[0]!.connectionId).toBe(r.ok ? r.connectionId : 'x');
    // The server's certificate is verified too: its identity rides on the response.
    expect(aReceived[0]!.tls?.subject).toBe('O=Peergate Test, CN=server.sbc.test');
    // A second send reuses the connection.
    const r2 = await a.send({ protocol: 'tls', address: '127.0.0.1', port: b.port }, Buffer.from(options(21)));
    expect(r2.ok && r.ok && r2.connectionId === r.connectionId).toBe(true);
  });

  it('outbound TLS: refused port, untrusted server certificate', async () => {
    const a = new TransportLayer({ listeners: [], tls: { key: pki.client.key, cert: pki.client.cert, ca: [pki.otherCa.cert] }, limits: { connectTimeoutMs: 3000 } });
    await a.listen();
    cleanups.push(() => a.close());
    const refused = await a.send({ protocol: 'tls', address: '127.0.0.1', port: await freePort() }, Buffer.from(options(30)));
    expect(refused).toMatchObject({ ok: false, reason: 'refused' });
    const b = await tlsLayer({ requireClientCert: false });
    const bad = await a.send({ protocol: 'tls', address: '127.0.0.1', port: b.port }, Buffer.from(options(31)));
    expect(bad).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect(bad.ok ? '' : bad.detail).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/);
    expect(b.received).toEqual([]);
  });

  it('stream framing applies on TLS: a message without Content-Length closes the connection', async () => {
    const { t, received, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    c.sock.write('\r\n\r\n');
    await waitFor(() => c.data() === '\r\n', 3000, 10, 'pong');
    c.sock.write('OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1\r\n\r\n');
    await waitFor(() => c.closed(), 3000);
    expect(received).toEqual([]);
    expect(t.stats.stream.framingErrors['no-content-length']).toBe(1);
  });

  it('messages sent to a connection in one turn go out together (one TLS record), whole, in order, each with its result', async () => {
    const { t, received, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    let reads = 0;
    c.sock.on('data', () => { reads++; });
    c.sock.write(options(1));
    await waitFor(() => received.length === 1, 5000);
    const target = { protocol: 'tls' as const, address: '127.0.0.1', port: 9, connectionId: received[0]!.connectionId };
    const sent = Array.from({ length: 20 }, (_, i) => `SIP/2.0 200 OK\r\nCall-ID: call-${i}\r\nContent-Length: 4\r\n\r\nb${String(i).padStart(3, '0')}`);
    const results = await Promise.all(sent.map((m) => t.send(target, Buffer.from(m))));
    expect(results.every((r) => r.ok && r.connectionId === target.connectionId)).toBe(true);
    await waitFor(() => c.data().length === sent.join('').length, 3000);
    expect(c.data()).toBe(sent.join(''));
    // Without gathering, node's TLS writes the first message at once and the others in a second record.
    expect(reads).toBe(1);
    // A later turn's message is not held back by the previous turn's gathering.
    expect(await t.send(target, Buffer.from(sent[0]!))).toMatchObject({ ok: true });
    await waitFor(() => c.data().length === sent.join('').length + sent[0]!.length, 3000);
    expect(reads).toBe(2);
  });

  it('a connection closed in the turn its messages were gathered reports them not sent', async () => {
    const { t, received, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    c.sock.write(options(2));
    await waitFor(() => received.length === 1, 5000);
    const id = received[0]!.connectionId!;
    const pending = [1, 2, 3].map((i) => t.send({ protocol: 'tls', address: '127.0.0.1', port: 9, connectionId: id }, Buffer.from(options(i))));
    t.closeConnection(id, 'test');
    const results = await Promise.all(pending);
    expect(results.map((r) => r.ok)).toEqual([false, false, false]);
    await waitFor(() => c.closed(), 3000);
    expect(c.data()).toBe('');
  });

  it('frames several requests in one TLS record and one split across records, in order', async () => {
    const { received, port } = await tlsLayer();
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    const msgs = [options(10, 'a'), options(11, 'bb\r\n\r\ncc'), options(12), options(13, 'split body')];
    const last = msgs[3]!;
    const cut = last.indexOf('\r\n\r\n') - 5;
    c.sock.write(msgs.slice(0, 3).join('') + last.slice(0, cut));
    await waitFor(() => received.length === 3, 5000);
    await new Promise((r) => setTimeout(r, 20));
    c.sock.write(last.slice(cut, cut + 10));
    await new Promise((r) => setTimeout(r, 20));
    expect(received.length).toBe(3);
    c.sock.write(last.slice(cut + 10));
    await waitFor(() => received.length === 4, 5000);
    expect(received.map((p) => p.data.toString())).toEqual(msgs);
  });

  it('a client that never completes the handshake is cut off after handshakeTimeoutMs and its slot freed', async () => {
    const { t, handshakes, port } = await tlsLayer({}, { handshakeTimeoutMs: 200, maxConnectionsPerSource: 1 });
    const raw = createConnection({ host: '127.0.0.1', port });
    let rawClosed = false;
    raw.on('close', () => { rawClosed = true; });
    raw.on('error', () => {});
    cleanups.push(() => { raw.destroy(); });
    await waitFor(() => rawClosed, 5000, 10, 'silent client cut off');
    expect(handshakes).toEqual([expect.objectContaining({ result: 'failed', reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' })]);
    // The per-source slot (limit 1) is free again: a real client gets in.
    const c = client(port, { key: pki.client.key, cert: pki.client.cert });
    expect(await c.secure).toBe(true);
    expect(t.stats.stream.perSourceRejected).toBe(0);
  });

  it('close() ends connections still in their handshake at once', async () => {
    const { t, port } = await tlsLayer({}, { handshakeTimeoutMs: 30_000 });
    const raw = createConnection({ host: '127.0.0.1', port });
    let rawClosed = false;
    raw.on('close', () => { rawClosed = true; });
    raw.on('error', () => {});
    cleanups.push(() => { raw.destroy(); });
    await new Promise((r) => raw.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await t.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await waitFor(() => rawClosed, 2000);
  });

  it('outbound TLS verifies the server certificate against serverName (RFC 5922) or else the IP', async () => {
    const named = issueCert(pki.ca, 'named', { san: ['DNS:sip.carrier.test'] });
    const b = await tlsLayer({ key: named.key, cert: named.cert, requireClientCert: false });
    const mk = async () => {
      const a = new TransportLayer({ listeners: [], tls: { key: pki.client.key, cert: pki.client.cert, ca: [pki.ca.cert] } });
      await a.listen();
      cleanups.push(() => a.close());
      return a;
    };
    const byIp = await (await mk()).send({ protocol: 'tls', address: '127.0.0.1', port: b.port }, Buffer.from(options(40)));
    expect(byIp).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect(byIp.ok ? '' : byIp.detail).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    const wrong = await (await mk()).send({ protocol: 'tls', address: '127.0.0.1', port: b.port, serverName: 'other.carrier.test' }, Buffer.from(options(41)));
    expect(wrong).toMatchObject({ ok: false, reason: 'tls-failed' });
    const right = await (await mk()).send({ protocol: 'tls', address: '127.0.0.1', port: b.port, serverName: 'sip.carrier.test' }, Buffer.from(options(42)));
    expect(right.ok).toBe(true);
    await waitFor(() => b.received.length === 1, 3000);
    expect(b.received[0]!.data.toString()).toContain('call-42');
  });
});
