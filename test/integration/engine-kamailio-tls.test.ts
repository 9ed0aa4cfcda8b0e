// An independent TLS peer: sipp (UDP) → Kamailio → TLS with Kamailio's client certificate →
// the engine (client certificates required) → drachtio-srf app createUAS. The calls complete
// and the app sees Kamailio's certificate identity on every request.
import { startKamailioTlsRelay } from '../helpers/kamailio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { makePki, issueCert, type TestPki, type TestCert } from '../helpers/tls.js';
import { freePort, runSipp, scratchDir, stopAll, waitFor, type Proc } from '../helpers/procs.js';
import { SECRET, startConnectedApp, type AppProc } from '../helpers/engine.js';
import { startEngine, type Engine } from '../../src/engine/engine.js';

let pki: TestPki;
let kamCert: TestCert;
let engine: Engine;
let app: AppProc;
let kam: Proc;
let kamUdp: number;
let dir: string;

beforeAll(async () => {
  dir = scratchDir('engine-kam-');
  pki = makePki(join(dir, 'pki'));
  kamCert = issueCert(pki.ca, 'kamailio', { subject: '/O=Kamailio Peer/CN=kamailio.sbc.test', san: ['DNS:kamailio.sbc.test'] });
  const tlsPort = await freePort();
  engine = await startEngine({
    contacts: [`sips:127.0.0.1:${tlsPort};transport=tls`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: SECRET },
    tls: { key: pki.server.key, cert: pki.server.cert, clientCAs: [pki.ca.cert], requireClientCert: true },
  });
  app = await startConnectedApp('uas.mjs', engine, {}, ['invite']);
  const relay = await startKamailioTlsRelay({ dir, server: pki.server, client: kamCert, ca: pki.ca, relayTo: `sip:127.0.0.1:${tlsPort};transport=tls` });
  kam = relay.proc;
  kamUdp = relay.udpPort;
}, 60_000);

afterAll(async () => {
  await stopAll();
  await engine?.close();
});

describe('Kamailio as a mutual-TLS client of the engine', () => {
  it('sipp calls through Kamailio complete; the app sees protocol tls and Kamailio\'s identity', async () => {
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${kamUdp}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-m', '3', '-r', '10', '-d', '10'], { timeoutS: 20, dir });
    expect(res.successful, `${res.output.slice(-1500)}\n${kam.output().slice(-2000)}`).toBe(3);
    expect(res.failed).toBe(0);
    await waitFor(() => app.events().filter((e) => e.event === 'destroy').length === 3, 5000, 25, 'three BYEs at the app');
    const invites = app.events().filter((e) => e.event === 'invite');
    expect(invites).toHaveLength(3);
    const fp = new X509Certificate(kamCert.cert).fingerprint256;
    for (const i of invites) {
      expect(i.protocol).toBe('tls');
      expect(i.tls).toBe(`subject="O=Kamailio Peer, CN=kamailio.sbc.test";san="DNS:kamailio.sbc.test";fp256=${fp}`);
    }
  });
});
