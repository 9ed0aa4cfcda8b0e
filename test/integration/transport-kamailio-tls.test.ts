// Kamailio (Debian, tls module) as an independent TLS client presenting a certificate:
// sipp (UDP) → kamailio → TLS with client certificate → our TransportLayer (mutual TLS required).
// Our side answers like a minimal UAS, so the sipp calls only complete if framing, identity and
// replies over the same TLS connection all work.
import { startKamailioTlsRelay } from '../helpers/kamailio.js';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { TransportLayer } from '../../src/engine/transport/index.js';
import type { InboundPacket } from '../../src/engine/transport/types.js';
import { makePki, issueCert, type TestPki, type TestCert } from '../helpers/tls.js';
import { freePorts, runSipp, scratchDir, stopAll, waitFor, type Proc } from '../helpers/procs.js';

let pki: TestPki;
let kamCert: TestCert;
let t: TransportLayer;
let kam: Proc;
let kamUdp: number;
const received: InboundPacket[] = [];
let dir: string;

function reply200(req: string): Buffer | null {
  const lines = req.split('\r\n');
  const method = lines[0]!.split(' ')[0];
  if (method === 'ACK') return null;
  const keep = lines.filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq):/i.test(l))
    .map((l) => (/^(to|t):/i.test(l) && !/;tag=/.test(l) ? `${l};tag=pg1` : l));
  return Buffer.from(`SIP/2.0 200 OK\r\n${keep.join('\r\n')}\r\nContact: <sip:uas@127.0.0.1;transport=tls>\r\nContent-Length: 0\r\n\r\n`);
}

beforeAll(async () => {
  dir = scratchDir('kam-tls-');
  pki = makePki(join(dir, 'pki'));
  kamCert = issueCert(pki.ca, 'kamailio', { subject: '/O=Kamailio Peer/CN=kamailio.sbc.test', san: ['DNS:kamailio.sbc.test', 'URI:sip:kamailio.sbc.test'] });

  t = new TransportLayer({
    listeners: [{ protocol: 'tls', address: '127.0.0.1', port: 0 }],
    tls: { key: pki.server.key, cert: pki.server.cert, clientCAs: [pki.ca.cert], requireClientCert: true },
  });
  t.on('message', (p) => {
    received.push(p);
    const r = reply200(p.data.toString());
    if (r) void t.send({ ...p.source, connectionId: p.connectionId! }, r);
  });
  await t.listen();
  const ourTls = t.contacts()[0]!.port;

  const relay = await startKamailioTlsRelay({ dir, server: pki.server, client: kamCert, ca: pki.ca, relayTo: `sip:127.0.0.1:${ourTls};transport=tls` });
  kam = relay.proc;
  kamUdp = relay.udpPort;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await t?.close();
});

describe('Kamailio as a TLS client with a certificate', () => {
  it('relays sipp calls over mutual TLS; every message carries kamailio\'s verified identity', async () => {
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${kamUdp}`, '-i', '127.0.0.1', '-p', String((await freePorts(1))[0]), '-t', 'u1', '-m', '3', '-r', '10', '-d', '10'], { timeoutS: 20, dir });
    expect(res.successful, `${res.output.slice(-1500)}\n${kam.output().slice(-2000)}`).toBe(3);
    expect(res.failed).toBe(0);
    await waitFor(() => received.filter((p) => p.data.toString().startsWith('BYE')).length === 3, 5000);
    const methods = received.map((p) => p.data.toString().split(' ')[0]);
    expect(methods.filter((m) => m === 'INVITE')).toHaveLength(3);
    expect(methods.filter((m) => m === 'ACK')).toHaveLength(3);
    const fp = new X509Certificate(kamCert.cert).fingerprint256;
    for (const p of received) {
      expect(p.source.protocol).toBe('tls');
      expect(p.tls).toEqual({
        subject: 'O=Kamailio Peer, CN=kamailio.sbc.test',
        subjectAltNames: ['DNS:kamailio.sbc.test', 'URI:sip:kamailio.sbc.test'],
        fingerprint256: fp,
      });
      // Kamailio wrote a TLS Via: it knows it is talking TLS to us.
      expect(p.data.toString()).toMatch(/Via: SIP\/2.0\/TLS 127\.0\.0\.1:\d+/);
    }
    // Kamailio reuses its connection for the whole run.
    expect(new Set(received.map((p) => p.connectionId)).size).toBe(1);
  });
});
