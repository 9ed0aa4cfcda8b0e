// CRLs rechecked while peergate runs (issue #16.4, tls.recheck_s), with real openssl CRLs, a
// real TLS client and SIPp behind: (a) a CRL replaced on disk with no signal and no file event
// (a Kubernetes Secret's symlink swap, which inotify on the old directory never sees) is applied
// by the periodic recheck: the newly revoked client's new handshake is refused while its
// established TLS dialog goes on; (b) a CRL whose nextUpdate passes while it is loaded is
// flagged by the recheck (log line, peergate_tls_crl_stale 0 → 1) and, with stale_crl: refuse,
// new handshakes of that CA's clients are refused while an established connection is served;
// with stale_crl: serve they are accepted, except the certificates the stale CRL lists.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePorts, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { makePki, issueCert, makeCrl, TlsSipUa, type TestPki, type TestCert } from '../helpers/tls.js';

const CORE_IP = '127.0.0.3';
let pg: RunningPeergate;
let pki: TestPki;
let client2: TestCert;
let p: { tls: number; core: number; ops: number; uas: number };
/** The Secret-like volume: `current` is a symlink to the directory holding this version's crl.pem. */
let secret: string;
let crlPath: string;
let version = 0;
let policyObj: Record<string, any>;

/** Publish a CRL as kubelet publishes a Secret: a new directory, then an atomic symlink swap. */
function publishCrl(pem: string): void {
  version++;
  const dir = join(secret, `..v${version}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'crl.pem'), pem);
  symlinkSync(`..v${version}`, join(secret, 'current.tmp'));
  renameSync(join(secret, 'current.tmp'), join(secret, 'current'));
}

/** openssl's X.509 time (YYYYMMDDHHMMSSZ). */
const asn1Time = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');

const branch = () => `z9hG4bK-${Math.random().toString(36).slice(2)}`;

const openUa = (client: TestCert) => TlsSipUa.open(p.tls, client, pki.ca, { answerRequests: false });
const request = (ua: TlsSipUa, lines: string[]) => ua.request([...lines, 'Content-Length: 0', '', ''].join('\r\n'));
const options = (ua: TlsSipUa) => request(ua, [`OPTIONS sip:127.0.0.1:${p.tls} SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70',
  `From: <sip:a@client.sbc.test>;tag=o${Math.random().toString(36).slice(2, 8)}`, 'To: <sip:b@127.0.0.1>', `Call-ID: opt-${Math.random()}`, 'CSeq: 1 OPTIONS']);

/** A new TLS connection of `client` is refused: the handshake fails, or the server closes it unanswered. */
async function refused(client: TestCert): Promise<void> {
  const failedBefore = await pg.metric('peergate_tls_handshakes_total', { result: 'failed' });
  const ua = await openUa(client).catch(() => undefined);
  if (ua) {
    await expect(options(ua)).rejects.toThrow('connection closed');
  }
  await waitFor(async () => (await pg.metric('peergate_tls_handshakes_total', { result: 'failed' })) > failedBefore, 5000, 50, 'handshake counted as failed');
}

beforeAll(async () => {
  const [tls, core, ops, uas] = await freePorts(4);
  p = { tls: tls!, core: core!, ops: ops!, uas: uas! };
  pki = makePki();
  client2 = issueCert(pki.ca, 'client2', { san: ['DNS:client.sbc.test', 'IP:127.0.0.1'] });
  secret = join(pki.dir, 'secret');
  mkdirSync(secret);
  publishCrl(makeCrl(pki.ca));
  crlPath = join(secret, 'current', 'crl.pem');
  startUas(CORE_IP, p.uas);
  policyObj = {
    listen: [listener('peer-tls', p.tls), listener('core-udp', p.core)],
    tls: { certificate: pki.server.certFile, key: pki.server.keyFile, client_cas: [pki.ca.certFile], crls: [crlPath], require_client_cert: true, recheck_s: 1 },
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'info' },
    peers: [{ id: 'carrier-tls', match: { certificate: { subject_alt_names: ['client.sbc.test'] } }, transport: 'tls' }],
    routes: [{ from: 'peers', to: 'core' }],
  };
  pg = await startPeergate(policyObj);
}, 90_000);

afterAll(() => stopInOrder(pg));

describe('CRL recheck (tls.recheck_s)', () => {
  it('its start log says how long the start took from launch and how long each part of it took', () => {
    const line = pg.proc.output().split('\n').find((l) => l.includes('"msg":"peergate started"'));
    expect(line).toBeDefined();
    const started = JSON.parse(line!) as { started_in_ms: number; start_ms: Record<string, number>; workers: number };
    // The parts in the order they start; `workers` is the B2BUA pool (one per core by default).
    const parts = Object.keys(started.start_ms);
    expect(parts.slice(0, 2)).toEqual(['store', 'limits']);
    expect(parts).toEqual(expect.arrayContaining(['engine', 'ops', 'memory', started.workers > 1 ? 'workers' : 'b2bua']));
    for (const ms of Object.values(started.start_ms)) expect(ms).toBeGreaterThanOrEqual(0);
    const sum = Object.values(started.start_ms).reduce((a, b) => a + b, 0);
    expect(started.started_in_ms).toBeGreaterThanOrEqual(sum);
  });

  it('a CRL swapped on disk without signal or file event is applied within the recheck; the revoked client\'s established dialog goes on', async () => {
    // A call over TLS from the client about to be revoked: INVITE … 200 … ACK on one connection.
    const ua = await openUa(pki.client);
    const callId = `crl-${Math.random()}`;
    const from = 'From: <sip:+15550001@client.sbc.test>;tag=crla';
    const ok = await request(ua, [`INVITE sip:+15551230000@127.0.0.1:${p.tls};transport=tls SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`,
      'Max-Forwards: 70', from, 'To: <sip:+15551230000@127.0.0.1>', `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sips:caller@${ua.local};transport=tls>`]);
    expect(ok).toMatch(/^SIP\/2\.0 200/);
    const to = /^To:.*$/im.exec(ok)![0];
    const contact = /^Contact:\s*<([^>]+)>/im.exec(ok)![1]!;
    ua.sock.write([`ACK ${contact} SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70', from, to, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0', '', ''].join('\r\n'));
    await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-tls' })) === 1, 5000, 50, 'TLS call up');

    const reloadsBefore = await pg.metric('peergate_tls_reloads_total', { result: 'ok' });
    const swappedAt = Date.now();
    publishCrl(makeCrl(pki.ca, [pki.client]));
    // recheck_s: 1 — applied within a period or two (bounded wait with headroom for a busy machine).
    await waitFor(async () => (await pg.metric('peergate_tls_reloads_total', { result: 'ok' })) > reloadsBefore, 6000, 50, 'CRL applied by the recheck');
    expect(Date.now() - swappedAt).toBeLessThan(6000);
    // The recheck applied it, not the file watcher (which watches the old version's directory).
    await waitFor(() => pg.proc.output().includes('"trigger":"recheck"'), 3000, 50, 'recheck log line');
    expect(pg.proc.output()).not.toContain('"msg":"policy reloaded"');

    await refused(pki.client);
    const other = await openUa(client2);
    expect(await options(other)).toMatch(/^SIP\/2\.0 200/);
    other.sock.end();

    // The revoked client's established connection and its dialog are untouched.
    const bye = await request(ua, [`BYE ${contact} SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70', from, to, `Call-ID: ${callId}`, 'CSeq: 2 BYE']);
    expect(bye).toMatch(/^SIP\/2\.0 200/);
    await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-tls' })) === 0, 5000, 50, 'TLS call ended');
    ua.sock.end();
  }, 60_000);

  it('a CRL whose nextUpdate passes while loaded is flagged by the recheck (log, metric 0 → 1) and refuses new handshakes; established ones go on', async () => {
    const nextUpdate = Math.ceil((Date.now() + 8000) / 1000) * 1000;
    execFileSync('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-crl_nextupdate', asn1Time(nextUpdate), '-out', 'soon.pem'], { cwd: pki.ca.dir, stdio: 'ignore' });
    const reloadsBefore = await pg.metric('peergate_tls_reloads_total', { result: 'ok' });
    publishCrl(readFileSync(join(pki.ca.dir, 'soon.pem'), 'utf8'));
    await waitFor(async () => (await pg.metric('peergate_tls_reloads_total', { result: 'ok' })) > reloadsBefore, 6000, 50, 'short-lived CRL applied');
    await waitFor(async () => (await pg.metric('peergate_tls_crl_next_update_seconds', { file: crlPath })) === nextUpdate / 1000, 6000, 50, 'nextUpdate exposed');
    expect(await pg.metric('peergate_tls_crl_stale', { file: crlPath })).toBe(0);
    const staleLogsBefore = pg.proc.output().split('CRL is past its nextUpdate').length;

    // Fresh for now: client2 is served, and keeps this connection.
    const established = await openUa(client2);
    expect(await options(established)).toMatch(/^SIP\/2\.0 200/);
    expect(Date.now()).toBeLessThan(nextUpdate);

    // The recheck (not a load) flips the metric once nextUpdate has passed.
    await waitFor(async () => (await pg.metric('peergate_tls_crl_stale', { file: crlPath })) === 1, nextUpdate - Date.now() + 6000, 100, 'stale CRL metric');
    expect(Date.now()).toBeGreaterThanOrEqual(nextUpdate);
    await waitFor(() => pg.proc.output().split('CRL is past its nextUpdate').length > staleLogsBefore, 3000, 50, 'stale CRL log line');

    // stale_crl: refuse (the default): OpenSSL refuses new handshakes of this CA's clients.
    await refused(client2);
    // The connection made before is served.
    expect(await options(established)).toMatch(/^SIP\/2\.0 200/);
    established.sock.end();

    // stale_crl: serve: the same stale CRL now lets client2 in and still refuses the client it lists.
    const serve = { ...policyObj, tls: { ...policyObj.tls, stale_crl: 'serve' }, ops: { ...policyObj.ops, admin_token: pg.adminToken } };
    writeFileSync(pg.policyPath, stringify(serve));
    expect((await pg.admin('/admin/reload', { method: 'POST' })).status).toBe(200);
    const served = await openUa(client2);
    expect(await options(served)).toMatch(/^SIP\/2\.0 200/);
    served.sock.end();
    await refused(pki.client);
    expect(await pg.metric('peergate_tls_crl_stale', { file: crlPath })).toBe(1);

    // A fresh CRL found by the recheck clears the flag.
    publishCrl(makeCrl(pki.ca));
    await waitFor(async () => (await pg.metric('peergate_tls_crl_stale', { file: crlPath })) === 0, 6000, 50, 'stale flag cleared');
    const again = await openUa(client2);
    expect(await options(again)).toMatch(/^SIP\/2\.0 200/);
    again.sock.end();
  }, 60_000);
});
