// The transport layer's capture tap: every message received (after the shield, after TLS) and
// every message sent successfully, with both endpoints, on real loopback sockets.
import { describe, it, expect, afterEach } from 'vitest';
import { createSocket } from 'node:dgram';
import { connect } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { TransportLayer } from '../../../src/engine/transport/index.js';
import { captureNow } from '../../../src/engine/capture/clock.js';
import type { Endpoint } from '../../../src/engine/transport/types.js';
import { createFederationCa, createPeerCertificate } from '../../../src/pki/files.js';
import { scratchDir, waitFor } from '../../helpers/procs.js';

const MSG = 'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: tap-1\r\nContent-Length: 0\r\n\r\n';
type Tapped = { direction: 'in' | 'out'; data: string; local: Endpoint; remote: Endpoint; atMs?: number };

const tapInto = (seen: Tapped[]) => ({ on: true, record: (direction: 'in' | 'out', data: Buffer, local: Endpoint, remote: Endpoint, atMs: number) => { seen.push({ direction, data: data.toString(), local, remote, atMs }); } });

let t: TransportLayer | undefined;
afterEach(async () => { await t?.close(); t = undefined; });

describe('transport capture tap', () => {
  it('sees UDP in and out, and nothing once removed', async () => {
    t = new TransportLayer({ listeners: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }] });
    const [local] = await t.listen();
    const seen: Tapped[] = [];
    t.setCapture(tapInto(seen));
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const cport = client.address().port;
    client.send(MSG, local!.port, '127.0.0.1');
    await waitFor(() => seen.length === 1, 3000);
    expect(await t.send({ protocol: 'udp', address: '127.0.0.1', port: cport }, Buffer.from(MSG))).toMatchObject({ ok: true });
    expect(seen).toMatchObject([
      { direction: 'in', data: MSG, local: { protocol: 'udp', address: '127.0.0.1', port: local!.port }, remote: { protocol: 'udp', address: '127.0.0.1', port: cport } },
      { direction: 'out', data: MSG, local: { protocol: 'udp', address: '127.0.0.1', port: local!.port }, remote: { protocol: 'udp', address: '127.0.0.1', port: cport } },
    ]);
    // A send that fails is not captured.
    await t.send({ protocol: 'udp', address: 'not-an-ip', port: 5060 }, Buffer.from(MSG));
    // A tap that is off (no collector configured) is not asked, in or out.
    let asked = 0;
    t.setCapture({ on: false, record: () => { asked++; } });
    client.send(MSG, local!.port, '127.0.0.1');
    expect(await t.send({ protocol: 'udp', address: '127.0.0.1', port: cport }, Buffer.from(MSG))).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 150));
    expect(asked).toBe(0);
    t.setCapture(undefined);
    client.send(MSG, local!.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 150));
    expect(seen).toHaveLength(2);
    client.close();
  });

  it('sees TLS messages as plaintext, one per framed message', async () => {
    const dir = scratchDir('tap-pki-');
    const ca = createFederationCa(dir);
    const srv = createPeerCertificate(dir, 'srv', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
    t = new TransportLayer({
      listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }],
      tls: { key: readFileSync(srv.keyPath), cert: readFileSync(srv.certPath) },
    });
    const [local] = await t.listen();
    const seen: Tapped[] = [];
    t.setCapture(tapInto(seen));
    const sock = connect({ host: '127.0.0.1', port: local!.port, ca: readFileSync(ca.certPath), checkServerIdentity: () => undefined });
    await new Promise<void>((r) => sock.once('secureConnect', () => r()));
    // Two messages in one write: the tap sees each, decrypted.
    sock.write(MSG + MSG.replace('tap-1', 'tap-2'));
    await waitFor(() => seen.length === 2, 3000);
    expect(seen.map((s) => [s.direction, s.data, s.remote.protocol, s.remote.port])).toEqual([
      ['in', MSG, 'tls', sock.localPort], ['in', MSG.replace('tap-1', 'tap-2'), 'tls', sock.localPort],
    ]);
    sock.destroy();
  });

  it('stamps a stream send when it is handed over, not when its write is reported done', async () => {
    // A collector orders a call by these stamps: a caller's ACK can be read before our 200's
    // write is reported done, and must still come after the 200 (HEP capture, Homer).
    t = new TransportLayer({ listeners: [{ protocol: 'tcp', address: '127.0.0.1', port: 0 }] });
    const [local] = await t.listen();
    const seen: Tapped[] = [];
    t.setCapture(tapInto(seen));
    const connectionIds: string[] = [];
    t.on('message', (p) => { if (p.connectionId) connectionIds.push(p.connectionId); });
    const sock = tcpConnect({ host: '127.0.0.1', port: local!.port });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const before = captureNow();
    sock.write(MSG);
    await waitFor(() => seen.length === 1, 3000);
    expect(seen[0]!.atMs!).toBeGreaterThan(before);
    const handing = captureNow();
    let done = false;
    t.sendThen({ protocol: 'tcp', address: '127.0.0.1', port: sock.localPort!, connectionId: connectionIds[0]! }, Buffer.from(MSG), () => { done = true; });
    const handed = captureNow();
    // Reported later…
    expect(seen).toHaveLength(1);
    await waitFor(() => done && seen.length === 2, 3000);
    const doneAt = captureNow();
    // …stamped at the hand-over, µs apart from the stamps either side of it.
    const out = seen[1]!;
    expect(out.direction).toBe('out');
    expect(out.atMs!).toBeGreaterThan(handing);
    expect(out.atMs!).toBeLessThan(handed);
    expect(out.atMs!).toBeLessThan(doneAt);
    sock.destroy();
  });
});
