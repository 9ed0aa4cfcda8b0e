// Identity trust anchors (STIR/SHAKEN STI-CA roots) apply at once on reload (issue #16.4),
// through `peergate start` with real SIPp and two Kamailio secsipid signers: one holds an SP
// certificate of STI-CA 1, the other one of STI-CA 2. While only CA-1 is trusted, a CA-2-signed
// call is refused 437 (the peer's identity mode is `required`); once the policy adds CA-2 and is
// reloaded (POST /admin/reload) the same kind of call verifies; once CA-1 is removed (SIGHUP),
// CA-1-signed calls are refused. A policy naming an anchor file that holds no certificate is
// refused with file:line and key, and the running anchors stay. An anchor bundle whose content
// alone changes is read again with no signal: the file is watched, as TLS material is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePorts, runSipp, scratchDir, startProcess, startUas, waitFor, writeFile, stopInOrder, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { sippSignedCall } from '../helpers/sipp-xml.js';
import { kamailioSignerConfig, makeTestPki, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

/** SIPp uac: one INVITE; `call` expects 200 (then ACK, BYE), a number expects that final status. */
const scenario = (final: 'call' | number): string => sippSignedCall({ name: 'identity reload', final });

let pki: TestPki;
let ca1: string;
let ca2: string;
let srv: CertServer;
let pg: RunningPeergate;
const kams: Record<'ca1' | 'ca2', { proc: Proc; port: number }> = {} as never;
let policyObj: Record<string, any>;

function policy(anchors: string[], p: { peerSip: number; coreSip: number; ops: number; coreUas: number }): Record<string, any> {
  return {
    listen: [listener('peer-udp', p.peerSip), listener('core-udp', p.coreSip)],
    core: { targets: [`sip:${CORE_IP}:${p.coreUas}`] },
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'info' },
    identity: { trust_anchors: anchors, fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca], timeout_ms: 2000 } },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, identity: { mode: 'required', standards: ['rfc8224'], max_age_s: 60 } }],
    routes: [{ from: 'peers', to: 'core' }],
  };
}
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number };

function writePolicy(x: Record<string, any>): void {
  writeFileSync(pg.policyPath, stringify({ ...x, ops: { ...x.ops, admin_token: pg.adminToken } }));
}

/**
 * Write a policy trusting CA-1 and `anchor`, reload it (POST /admin/reload) and expect 422; the
 * errors, and a pattern for the `policy.yaml:line:col: identity.trust_anchors[1]:` they start with.
 */
async function refusedWithSecondAnchor(anchor: string): Promise<{ errors: string[]; at: string }> {
  const bad = policy([ca1, anchor], ports);
  writePolicy(bad);
  const res = await pg.admin('/admin/reload', { method: 'POST' });
  expect(res.status).toBe(422);
  const body = await res.json() as { ok: boolean; errors: string[] };
  const line = stringify({ ...bad, ops: { ...bad.ops, admin_token: pg.adminToken } }).split('\n').findIndex((l) => l.includes(anchor)) + 1;
  return { errors: body.errors, at: `policy\\.yaml:${line}:\\d+: identity\\.trust_anchors\\[1\\]:` };
}

/** One call signed by the Kamailio of `signer`; resolves when SIPp saw the expected outcome (or not). */
async function call(signer: 'ca1' | 'ca2', final: 'call' | number): Promise<void> {
  const dir = scratchDir('idr-uac-');
  const scen = writeFile(dir, 'call.xml', scenario(final));
  const r = await runSipp([`${PEER_IP}:${kams[signer].port}`, '-sf', scen, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-m', '1'], { dir, timeoutS: 20 });
  expect(r.successful, `signed by ${signer}, expected ${final}:\n${r.output.slice(-1500)}\n${pg.proc.output().slice(-1500)}`).toBe(1);
}

const verifications = (result: 'pass' | 'fail') => pg.metric('peergate_identity_verifications_total', { peer: 'carrier-a', result });

beforeAll(async () => {
  pki = makeTestPki();
  ca1 = pki.stiRoot;
  ca2 = join(pki.dir, 'rogue', 'sti-ca-root.pem');
  srv = await startCertServer(pki, { '/ca1.pem': { body: readFileSync(pki.sp.cert) }, '/ca2.pem': { body: readFileSync(pki.rogueSp.cert) } });
  const [peerSip, coreSip, ops, coreUas, k1, k2] = await freePorts(6) as [number, number, number, number, number, number];
  ports = { peerSip, coreSip, ops, coreUas };
  startUas(CORE_IP, coreUas, { dir: scratchDir('idr-core-') });
  for (const [name, port, sp] of [['ca1', k1, pki.sp], ['ca2', k2, pki.rogueSp]] as const) {
    const dir = scratchDir(`idr-kam-${name}-`);
    const run = join(dir, 'run');
    mkdirSync(run);
    const cfg = writeFile(dir, 'kamailio.cfg', kamailioSignerConfig({
      listen: `${PEER_IP}:${port}`, forwardTo: `127.0.0.1:${peerSip}`, pki: { ...pki, sp }, certUrl: srv.url(`/${name}.pem`), mode: 'shaken',
    }));
    kams[name] = { port, proc: startProcess('kamailio', ['-f', cfg, '-DD', '-E', '-Y', run, '-P', join(run, 'kamailio.pid'), '-m', '64', '-M', '8', '-w', run]) };
  }
  policyObj = policy([ca1], ports);
  pg = await startPeergate(policyObj);
}, 90_000);

afterAll(() => stopInOrder(pg, ...Object.values(kams).map((k) => k.proc), srv));

describe('identity trust anchors on reload', () => {
  it('only CA-1 trusted: a CA-1-signed call verifies, a CA-2-signed one is refused 437', async () => {
    const pass = await verifications('pass');
    await call('ca1', 'call');
    expect(await verifications('pass')).toBe(pass + 1);
    const fail = await verifications('fail');
    await call('ca2', 437);
    expect(await verifications('fail')).toBe(fail + 1);
  }, 60_000);

  it('the policy adds CA-2 (POST /admin/reload): a CA-2-signed call verifies at once', async () => {
    policyObj = policy([ca1, ca2], ports);
    writePolicy(policyObj);
    const res = await pg.admin('/admin/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    const pass = await verifications('pass');
    await call('ca2', 'call');
    await call('ca1', 'call');
    expect(await verifications('pass')).toBe(pass + 2);
  }, 60_000);

  it('an anchor file with no certificate is refused with file:line and key; the running anchors stay', async () => {
    const bogus = writeFile(scratchDir('idr-bogus-'), 'anchor.pem', 'not a certificate\n');
    const { errors, at } = await refusedWithSecondAnchor(bogus);
    expect(errors).toEqual([expect.stringMatching(new RegExp(`${at} .*no PEM certificate`))]);
    await call('ca2', 'call');
  }, 60_000);

  it('an anchor file that does not exist is refused by the loader (file:line, key, absolute path); the running anchors stay', async () => {
    const gone = join(scratchDir('idr-gone-'), 'no-such-anchor.pem');
    const { errors, at } = await refusedWithSecondAnchor(gone);
    expect(errors).toEqual([expect.stringMatching(new RegExp(`${at} file not found: ${gone.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))]);
    await call('ca2', 'call');
  }, 60_000);

  it('the policy removes CA-1 (SIGHUP): CA-1-signed calls are refused 437, CA-2-signed ones verify', async () => {
    policyObj = policy([ca2], ports);
    writePolicy(policyObj);
    const reloads = await pg.metric('peergate_policy_reloads_total', { result: 'ok' });
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_policy_reloads_total', { result: 'ok' })) > reloads, 5000, 50, 'policy reloaded');
    const fail = await verifications('fail');
    await call('ca1', 437);
    expect(await verifications('fail')).toBe(fail + 1);
    await call('ca2', 'call');
  }, 60_000);

  it('an anchor bundle whose content changes (same policy) is read again, with no signal (the file is watched)', async () => {
    const bundle = writeFile(scratchDir('idr-bundle-'), 'anchors.pem', readFileSync(ca2));
    policyObj = policy([bundle], ports);
    writePolicy(policyObj);
    expect((await pg.admin('/admin/reload', { method: 'POST' })).status).toBe(200);
    await call('ca1', 437);
    // Only the file's content changes; the policy file stays as it is.
    const reloads = await pg.metric('peergate_policy_reloads_total', { result: 'ok' });
    writeFileSync(bundle, readFileSync(ca2, 'utf8') + readFileSync(ca1, 'utf8'));
    await waitFor(async () => (await pg.metric('peergate_policy_reloads_total', { result: 'ok' })) > reloads, 5000, 50, 'policy reloaded by the file watch');
    await call('ca1', 'call');
  }, 60_000);
});
