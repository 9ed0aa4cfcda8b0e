// Reload of everything through `peergate start` (issue #16.4), with real openssl, SIPp and
// TLS clients: a new certificate and a new CRL are served after SIGHUP or a file change while
// an established TLS dialog goes on; a revoked client is refused; limits and the log level
// apply at once; a listener change is reported "restart needed"; a broken file is refused
// with file:line and key and the running policy stays.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePorts, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { makePki, issueCert, makeCrl, TlsSipUa, type TestPki, type TestCert } from '../helpers/tls.js';

const UDP_PEER_IP = '127.0.0.2';
const CORE_IP = '127.0.0.3';
let pg: RunningPeergate;
let pki: TestPki;
let server2: TestCert;
let client2: TestCert;
let p: { tls: number; udp: number; core: number; ops: number; uas: number };
let files: { cert: string; key: string; crl: string };
let policyObj: Record<string, any>;

function policy(over: (x: Record<string, any>) => void = () => {}) {
  const x: Record<string, any> = {
    listen: [listener('peer-tls', p.tls), listener('peer-udp', p.udp), listener('core-udp', p.core)],
    tls: { certificate: files.cert, key: files.key, client_cas: [pki.ca.certFile], crls: [files.crl], require_client_cert: true },
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'info' },
    peers: [
      { id: 'carrier-tls', match: { certificate: { subject_alt_names: ['client.sbc.test'] } }, transport: 'tls' },
      { id: 'carrier-udp', match: { addresses: [`${UDP_PEER_IP}/32`] } },
    ],
    routes: [{ from: 'peers', to: 'core' }],
  };
  over(x);
  return x;
}

function writePolicy(x: Record<string, any>): void {
  writeFileSync(pg.policyPath, stringify({ ...x, ops: { ...x.ops, admin_token: pg.adminToken } }));
}

/** Subject of the certificate the TLS listener serves, as `openssl s_client` sees it. */
function servedSubject(client: TestCert = pki.client): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${p.tls}`, '-cert', client.certFile, '-key', client.keyFile,
      '-CAfile', pki.ca.certFile, '-servername', 'localhost'], { timeout: 10_000 }, (_err, stdout, stderr) => {
      resolve(/subject=([^\n]*)/.exec(stdout + stderr)?.[1] ?? `no subject in: ${stdout}${stderr}`);
    });
    child.stdin?.end();
  });
}

const openUa = (client: TestCert) => TlsSipUa.open(p.tls, client, pki.ca);

/** The Contact URI of a response (name-addr or bare addr-spec). */
function contactOf(msg: string): string {
  const m = /^(?:Contact|m):\s*(?:[^<\r\n]*<([^>]+)>|([^;\r\n]+))/im.exec(msg);
  if (!m) throw new Error(`no Contact in ${JSON.stringify(msg)}`);
  return (m[1] ?? m[2]!).trim();
}

const branch = () => `z9hG4bK-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  const [tls, udp, core, ops, uas] = await freePorts(5);
  p = { tls: tls!, udp: udp!, core: core!, ops: ops!, uas: uas! };
  pki = makePki();
  server2 = issueCert(pki.ca, 'server2');
  client2 = issueCert(pki.ca, 'client2', { san: ['DNS:client.sbc.test', 'IP:127.0.0.1'] });
  files = { cert: join(pki.dir, 'live-cert.pem'), key: join(pki.dir, 'live-key.pem'), crl: join(pki.dir, 'live-crl.pem') };
  copyFileSync(pki.server.certFile, files.cert);
  copyFileSync(pki.server.keyFile, files.key);
  writeFileSync(files.crl, makeCrl(pki.ca));
  startUas(CORE_IP, p.uas);
  policyObj = policy();
  pg = await startPeergate(policyObj);
}, 90_000);

afterAll(() => stopInOrder(pg));

describe('reload of TLS material', () => {
  it('a new certificate is served after SIGHUP while an established TLS dialog goes on', async () => {
    expect(await servedSubject()).toMatch(/CN ?= ?server\.sbc\.test/);
    // A call over TLS: INVITE … 200 … ACK on one connection.
    const ua = await openUa(pki.client);
    const callId = `tls-${Math.random()}`;
    const from = `From: <sip:+15550001@client.sbc.test>;tag=tlsa`;
    const ok = await ua.request([
      `INVITE sip:+15551230000@127.0.0.1:${p.tls};transport=tls SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70',
      from, 'To: <sip:+15551230000@127.0.0.1>', `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sips:caller@${ua.local};transport=tls>`, 'Content-Length: 0', '', '',
    ].join('\r\n'));
    expect(ok).toMatch(/^SIP\/2\.0 200/);
    const to = /^To:.*$/im.exec(ok)![0];
    const contact = contactOf(ok);
    ua.sock.write([`ACK ${contact} SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70', from, to, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0', '', ''].join('\r\n'));
    await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-tls' })) === 1, 5000, 50, 'TLS call up');

    const reloadsBefore = await pg.metric('peergate_tls_reloads_total', { result: 'ok' });
    copyFileSync(server2.certFile, files.cert);
    copyFileSync(server2.keyFile, files.key);
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_tls_reloads_total', { result: 'ok' })) > reloadsBefore, 5000, 50, 'TLS reload');
    expect(await servedSubject()).toMatch(/CN ?= ?server2\.sbc\.test/);

    // The established connection and its dialog are untouched: BYE on it is answered.
    const bye = await ua.request([`BYE ${contact} SIP/2.0`, `Via: SIP/2.0/TLS ${ua.local};branch=${branch()}`, 'Max-Forwards: 70', from, to, `Call-ID: ${callId}`, 'CSeq: 2 BYE', 'Content-Length: 0', '', ''].join('\r\n'));
    expect(bye).toMatch(/^SIP\/2\.0 200/);
    await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-tls' })) === 0, 5000, 50, 'TLS call ended');
    ua.sock.end();
  }, 60_000);

  it('a new CRL is read when its file changes (no signal): the revoked client is refused, others are served', async () => {
    expect(await servedSubject(pki.client)).toMatch(/CN ?= ?server2\.sbc\.test/);
    const reloadsBefore = await pg.metric('peergate_tls_reloads_total', { result: 'ok' });
    const failedBefore = await pg.metric('peergate_tls_handshakes_total', { result: 'failed' });
    writeFileSync(files.crl, makeCrl(pki.ca, [pki.client]));
    await waitFor(async () => (await pg.metric('peergate_tls_reloads_total', { result: 'ok' })) > reloadsBefore, 5000, 50, 'CRL reload on file change');
    // The revoked client's connection is closed without an answer to its OPTIONS.
    const revoked = await openUa(pki.client).catch(() => undefined);
    if (revoked) {
      const answer = revoked.request(`OPTIONS sip:127.0.0.1:${p.tls} SIP/2.0\r\nVia: SIP/2.0/TLS ${revoked.local};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:a@client.sbc.test>;tag=o1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: opt-${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
      await expect(answer).rejects.toThrow();
      await revoked.closed;
    }
    await waitFor(async () => (await pg.metric('peergate_tls_handshakes_total', { result: 'failed' })) > failedBefore, 5000, 50, 'handshake counted as failed');
    const other = await openUa(client2);
    const r = await other.request(`OPTIONS sip:127.0.0.1:${p.tls} SIP/2.0\r\nVia: SIP/2.0/TLS ${other.local};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:a@client.sbc.test>;tag=o2\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: opt-${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    expect(r).toMatch(/^SIP\/2\.0 200/);
    other.sock.end();
  }, 60_000);

  it('a CRL past its nextUpdate is loaded, logged and exposed as a metric', async () => {
    const ca = pki.ca;
    execFileSync('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-crl_lastupdate', '20200101000000Z', '-crl_nextupdate', '20200102000000Z', '-out', 'stale.pem'], { cwd: ca.dir, stdio: 'ignore' });
    copyFileSync(join(ca.dir, 'stale.pem'), files.crl);
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_tls_crl_stale', { file: files.crl })) === 1, 5000, 50, 'stale CRL metric');
    expect(await pg.metric('peergate_tls_crl_next_update_seconds', { file: files.crl })).toBe(Date.UTC(2020, 0, 2) / 1000);
    // The log line is written asynchronously (pino): wait for it rather than race it.
    await waitFor(() => pg.proc.output().includes('CRL is past its nextUpdate'), 5000, 50, 'stale CRL log line');
    // stale_crl: refuse (default) — OpenSSL refuses every client of that CA.
    const options = (ua: TlsSipUa, tag: string) => ua.request(`OPTIONS sip:127.0.0.1:${p.tls} SIP/2.0\r\nVia: SIP/2.0/TLS ${ua.local};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:a@client.sbc.test>;tag=${tag}\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: opt-${Math.random()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    const refusedUa = await openUa(client2).catch(() => undefined);
    if (refusedUa) await expect(options(refusedUa, 's1')).rejects.toThrow();
    // stale_crl: serve — the unrevoked client is served, the one the stale CRL lists is not.
    policyObj = policy((x) => { x.tls.stale_crl = 'serve'; });
    writePolicy(policyObj);
    expect((await pg.admin('/admin/reload', { method: 'POST' })).status).toBe(200);
    const served = await openUa(client2);
    expect(await options(served, 's2')).toMatch(/^SIP\/2\.0 200/);
    served.sock.end();
    const revokedUa = await openUa(pki.client).catch(() => undefined);
    if (revokedUa) await expect(options(revokedUa, 's3')).rejects.toThrow();
    // A fresh CRL clears it.
    writeFileSync(files.crl, makeCrl(pki.ca));
    process.kill(pg.proc.pid, 'SIGHUP');
    await waitFor(async () => (await pg.metric('peergate_tls_crl_stale', { file: files.crl })) === 0, 5000, 50, 'stale CRL cleared');
  }, 30_000);

  it('a broken certificate is refused with file:line and key; the running material stays', async () => {
    writeFileSync(files.cert, 'not a certificate\n');
    const res = await pg.admin('/admin/reload', { method: 'POST' });
    expect(res.status).toBe(422);
    const body = await res.json() as { ok: boolean; errors: string[] };
    expect(body.ok).toBe(false);
    const line = stringify({ ...policyObj, ops: { ...policyObj.ops, admin_token: pg.adminToken } }).split('\n').findIndex((l) => l.includes('certificate: ')) + 1;
    expect(body.errors).toEqual([expect.stringMatching(new RegExp(`policy\\.yaml:${line}:\\d+: tls\\.certificate: .*not a PEM certificate`))]);
    expect(await servedSubject(client2)).toMatch(/CN ?= ?server2\.sbc\.test/);
    copyFileSync(server2.certFile, files.cert);
    const again = await pg.admin('/admin/reload', { method: 'POST' });
    expect(again.status).toBe(200);
  }, 30_000);
});

describe('reload of the rest', () => {
  const invite = async (n: number): Promise<number[]> => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, UDP_PEER_IP, () => r()));
    const lp = sock.address().port;
    const statuses: number[] = [];
    sock.on('message', (m) => {
      const t = m.toString();
      const st = Number(t.slice(8, 11));
      if (st >= 200 && /^CSeq:\s*\d+ INVITE/im.test(t)) {
        statuses.push(st);
        if (st === 200) {
          // End the call at once: ACK then BYE.
          const to = /^To:.*$/im.exec(t)![0];
          const cid = /^Call-ID:.*$/im.exec(t)![0];
          const contact = contactOf(t);
          for (const [method, cseq] of [['ACK', '1 ACK'], ['BYE', '2 BYE']] as const) {
            sock.send(`${method} ${contact} SIP/2.0\r\nVia: SIP/2.0/UDP ${UDP_PEER_IP}:${lp};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001@${UDP_PEER_IP}>;tag=${cid.length}x\r\n${to}\r\n${cid}\r\nCSeq: ${cseq}\r\nContent-Length: 0\r\n\r\n`, p.udp, '127.0.0.1');
          }
        }
      }
    });
    for (let i = 0; i < n; i++) {
      const cid = `lim-${i}-${Math.random()}`;
      sock.send(`INVITE sip:+15551230000@127.0.0.1:${p.udp} SIP/2.0\r\nVia: SIP/2.0/UDP ${UDP_PEER_IP}:${lp};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001@${UDP_PEER_IP}>;tag=${`Call-ID: ${cid}`.length}x\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: ${cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@${UDP_PEER_IP}:${lp}>\r\nContent-Length: 0\r\n\r\n`, p.udp, '127.0.0.1');
    }
    await waitFor(() => statuses.length === n, 8000, 50, `${n} final responses`);
    await new Promise((r) => setTimeout(r, 300));
    sock.close();
    return statuses;
  };

  it('limits and the log level apply at once', async () => {
    const before = pg.proc.output().split('"msg":"new call"').length;
    expect(await invite(3)).toEqual([200, 200, 200]);
    expect(pg.proc.output().split('"msg":"new call"').length - before).toBe(3);
    policyObj = policy((x) => { x.peers[1].limits = { cps: 1, burst: 1 }; x.log.level = 'warn'; });
    writePolicy(policyObj);
    const res = await pg.admin('/admin/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, restart_needed: [] });
    const mark = pg.proc.output().length;
    const statuses = await invite(3);
    expect(statuses.filter((s) => s === 503).length).toBe(2);
    expect(await pg.metric('peergate_refusals_total', { peer: 'carrier-udp', reason: 'limit_cps' })).toBe(2);
    // At warn, call lines (info) are gone.
    expect(pg.proc.output().slice(mark)).not.toContain('"msg":"new call"');
  }, 40_000);

  it('a listener or ops change is applied nowhere and reported restart-needed (log, admin answer, metric)', async () => {
    const next = policy((x) => {
      x.listen[2].port = p.core + 1;
      x.ops = { ...x.ops, port: p.ops + 1 };
      x.store = { redis: { url: 'redis://127.0.0.1:1' } };
      x.peers[1].limits = { cps: 1, burst: 1 };
      x.log.level = 'warn';
    });
    writePolicy(next);
    const res = await pg.admin('/admin/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, restart_needed: ['listen', 'ops.port', 'store'] });
    for (const key of ['listen', 'ops.port', 'store']) expect(await pg.metric('peergate_policy_restart_needed', { key })).toBe(1);
    expect(pg.proc.output()).toMatch(/"restart_needed":\["listen","ops.port","store"\].*take effect only after a restart/);
    // Nothing of it was applied: the ops server still answers on its port, calls still go through.
    expect((await fetch(`http://127.0.0.1:${p.ops}/health`)).status).toBe(200);
    // Back to the running listeners: nothing pending any more.
    writePolicy(policyObj);
    const back = await pg.admin('/admin/reload', { method: 'POST' });
    expect(await back.json()).toMatchObject({ ok: true, restart_needed: [] });
    expect(await pg.metric('peergate_policy_restart_needed', { key: 'listen' })).toBe(0);
  }, 30_000);
});
