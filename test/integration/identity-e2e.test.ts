// End to end through `peergate start`: a peer (SIPp behind Kamailio on 127.0.0.2, Kamailio
// signing with secsipid) calls the core (SIPp UAS on 127.0.0.3) through a peer whose identity
// mode is `required`. Signed calls reach the core with verstat on P-Asserted-Identity;
// unsigned ones are refused with 428.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, scratchDir, startProcess, startUas, waitFor, writeFile, stopInOrder, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { sippSignedCall } from '../helpers/sipp-xml.js';
import { kamailioSignerConfig, makeTestPki, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

const scenario = (final: 'call' | 428): string => sippSignedCall({ name: 'identity e2e', final, sdp: true });

let pki: TestPki;
let srv: CertServer;
let pg: RunningPeergate;
let kam: Proc;
let coreDir: string;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number; kam: number };

beforeAll(async () => {
  pki = makeTestPki();
  srv = await startCertServer(pki, { '/stir.pem': { body: readFileSync(pki.sp.cert) } });
  const [peerSip, coreSip, ops, coreUas, kamPort] = await freePorts(5) as [number, number, number, number, number];
  ports = { peerSip, coreSip, ops, coreUas, kam: kamPort };
  coreDir = scratchDir('id-core-uas-');
  startUas(CORE_IP, coreUas, { dir: coreDir, extra: ['-trace_msg'] });

  const dir = scratchDir('id-kam-');
  const run = join(dir, 'run');
  mkdirSync(run);
  const cfg = writeFile(dir, 'kamailio.cfg', kamailioSignerConfig({
    listen: `${PEER_IP}:${kamPort}`, forwardTo: `127.0.0.1:${peerSip}`, pki, certUrl: srv.url('/stir.pem'), mode: 'shaken',
  }));
  kam = startProcess('kamailio', ['-f', cfg, '-DD', '-E', '-Y', run, '-P', join(run, 'kamailio.pid'), '-m', '64', '-M', '8', '-w', run]);

  const mediaBase = 30000 + (ops % 100) * 100;
  pg = await startPeergate({
    listen: [listener('peer-udp', peerSip), listener('core-udp', coreSip)],
    core: { targets: [`sip:${CORE_IP}:${coreUas}`] },
    media: { rtpengine: 'spawn', embedded: { port_min: mediaBase, port_max: mediaBase + 99 } },
    ops: { port: ops },
    log: { level: 'warn' },
    identity: { trust_anchors: [pki.stiRoot], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca], timeout_ms: 2000 } },
    peers: [{
      id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] },
      identity: { mode: 'required', standards: ['rfc8224'], max_age_s: 60 },
    }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 90_000);

afterAll(() => stopInOrder(pg, kam, srv));

function coreLog(): string {
  return readdirSync(coreDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(coreDir, f), 'utf8')).join('\n');
}

describe('identity through peergate start', () => {
  it('passes a call signed by Kamailio (secsipid) to the core with verstat on P-Asserted-Identity', async () => {
    const dir = scratchDir('id-uac-');
    const scen = writeFile(dir, 'call.xml', scenario('call'));
    const r = await runSipp([`${PEER_IP}:${ports.kam}`, '-sf', scen, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-m', '1'], { dir, timeoutS: 30 });
    expect(r.successful, `${r.output.slice(-1500)}\n${pg.proc.output().slice(-1500)}\n${kam.output().slice(-1000)}`).toBe(1);
    await waitFor(() => coreLog().includes('INVITE'), 5000, 50, 'INVITE at the core');
    expect(coreLog()).toMatch(/^P-Asserted-Identity:\s*<tel:\+12025550142;verstat=TN-Validation-Passed>\s*$/im);
    // Nothing of the peer's address travels in the asserted identity.
    expect(coreLog()).not.toMatch(/P-Asserted-Identity:.*127\.0\.0\.2/i);
    expect(await pg.metric('peergate_identity_verifications_total', { peer: 'carrier-a', result: 'pass' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses an unsigned call from the same peer with 428 Use Identity Header', async () => {
    const dir = scratchDir('id-uac-');
    const scen = writeFile(dir, 'refused.xml', scenario(428));
    const r = await runSipp([`127.0.0.1:${ports.peerSip}`, '-sf', scen, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-m', '1'], { dir, timeoutS: 20 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    expect(await pg.metric('peergate_identity_verifications_total', { peer: 'carrier-a', result: 'none' })).toBeGreaterThanOrEqual(1);
  });
});
