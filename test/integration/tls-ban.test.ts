// TLS peers bannable by certificate identity (issue #17 item 4), end to end: a pool of two
// `peergate start` nodes on one real Redis, mutual TLS (openssl-made certificates), two peers
// that share one source address and differ by certificate. Strikes that peer A earns over its
// TLS connection (403s for REGISTER from the B2BUA, an unparseable message from the engine)
// ban A's certificate, not the address: A's connection is closed, A's new handshakes are
// refused on both nodes, peer B from the same address keeps working; the admin API lists and
// lifts identity bans on the whole pool. With limits.strikes.by_tls_identity: false (reloaded)
// the same strikes ban the address again.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type TLSSocket } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { freePorts, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { issueCert, makeCa, type TestCa, type TestCert } from '../helpers/tls.js';

const PEER_IP = '127.0.0.2';
const THRESHOLD = 6;

let redis: TestRedis;
let ca: TestCa;
let server: TestCert, certA: TestCert, certB: TestCert;
let fpA: string;
const nodes: RunningPeergate[] = [];
const tlsPorts: number[] = [];

async function startNode(i: number): Promise<RunningPeergate> {
  const [tls, core, ops, coreTarget] = await freePorts(4);
  tlsPorts[i] = tls!;
  return startPeergate({
    listen: [listener('peer-tls', tls!), listener('core-udp', core!)],
    tls: { certificate: server.certFile, key: server.keyFile, client_cas: [ca.certFile], require_client_cert: true },
    core: { targets: [`sip:127.0.0.3:${coreTarget}`] },
    store: { redis: { url: redis.url, on_failure: 'fail_open', timeout_ms: 500 } },
    limits: { strikes: { threshold: THRESHOLD, window_s: 60, ban_s: 120 } },
    media: { anchoring: false },
    ops: { port: ops },
    log: { level: 'warn' },
    peers: [
      { id: 'carrier-a', transport: 'tls', match: { addresses: [`${PEER_IP}/32`], certificate: { subject_alt_names: ['a.peer.test'] } } },
      { id: 'carrier-b', transport: 'tls', match: { addresses: [`${PEER_IP}/32`], certificate: { subject_alt_names: ['b.peer.test'] } } },
    ],
    routes: [{ from: 'peers', to: 'core' }],
  }, { env: { PEERGATE_NODE_ID: `tlsban-${i}` } });
}

interface Client { sock: TLSSocket; received: () => string; closed: Promise<void>; isClosed: () => boolean }

/** A SIP-over-TLS client from PEER_IP to node `i`, presenting `cert`. */
async function tlsClient(i: number, cert: TestCert): Promise<Client> {
  let text = '';
  let closed = false;
  const raw = tcpConnect({ host: '127.0.0.1', port: tlsPorts[i]!, localAddress: PEER_IP });
  const sock = connect({ socket: raw, ca: ca.cert, cert: cert.cert, key: cert.key, checkServerIdentity: () => undefined });
  sock.on('data', (d: Buffer) => { text += d.toString(); });
  sock.on('error', () => { /* seen as close */ });
  const closedP = new Promise<void>((resolve) => sock.once('close', () => { closed = true; resolve(); }));
  await Promise.race([new Promise<void>((resolve) => sock.once('secureConnect', () => resolve())), closedP]);
  return { sock, received: () => text, closed: closedP, isClosed: () => closed };
}

let seq = 0;
function request(c: Client, method: string, extra = ''): string {
  const id = `tlsban-${method.toLowerCase()}-${++seq}`;
  const port = c.sock.localPort ?? 5061;
  return `${method} sip:127.0.0.1:${tlsPorts[0]};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS ${PEER_IP}:${port};branch=z9hG4bK-${id}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:ops@peer.test>;tag=f-${id}\r\nTo: <sip:sbe@127.0.0.1>\r\nCall-ID: ${id}\r\nCSeq: 1 ${method}\r\n` +
    `Contact: <sip:ops@${PEER_IP}:${port};transport=tls>\r\n${extra}Content-Length: 0\r\n\r\n`;
}

/** Send a request on `c` and wait (bounded) for a final response to its Call-ID. */
async function ask(c: Client, method: string): Promise<string | undefined> {
  const msg = request(c, method);
  const callId = /^Call-ID: (.*)$/m.exec(msg)![1]!;
  c.sock.write(msg);
  let status: string | undefined;
  await waitFor(() => {
    // One response per chunk: the status of the one for this Call-ID.
    const mine = c.received().split(/(?=SIP\/2\.0 \d\d\d )/).find((r) => r.includes(`Call-ID: ${callId}\r\n`) && /^SIP\/2\.0 [2-6]/.test(r));
    status = mine?.slice(8, 11);
    return status !== undefined || c.isClosed();
  }, 10_000, 20, `an answer to ${method} ${callId}`);
  return status;
}

/** Unparseable but framed (Content-Length): the engine's parser refuses it, a strike. */
const garbage = `INVITE sip:x SIP/2.0\r\nVia: \u0000\u0001 garbage\r\nCSeq: x\r\nContent-Length: 0\r\n\r\n`;

/** Whether a handshake with `cert` to node `i` is refused: closed without an answer to OPTIONS. */
async function refused(i: number, cert: TestCert): Promise<boolean> {
  const c = await tlsClient(i, cert);
  if (!c.isClosed()) c.sock.write(request(c, 'OPTIONS'));
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
  const answered = /SIP\/2\.0 \d\d\d/.test(c.received());
  c.sock.destroy();
  return c.isClosed() && !answered;
}

async function bans(node: RunningPeergate): Promise<Array<{ address?: string; identity?: string; reason?: string }>> {
  const r = await node.admin('/admin/bans');
  expect(r.status).toBe(200);
  return ((await r.json()) as { bans: Array<{ address?: string; identity?: string }> }).bans;
}

beforeAll(async () => {
  redis = await startRedis();
  const dir = scratchDir('tlsban-pki-');
  ca = makeCa(dir, 'ca', 'Peergate TLS-ban Test CA');
  server = issueCert(ca, 'server');
  certA = issueCert(ca, 'peer-a', { san: ['DNS:a.peer.test'] });
  certB = issueCert(ca, 'peer-b', { san: ['DNS:b.peer.test'] });
  fpA = new X509Certificate(certA.cert).fingerprint256;
  nodes.push(await startNode(0), await startNode(1));
}, 150_000);

afterAll(() => stopInOrder(...nodes, redis));

describe('TLS peers banned by certificate identity', () => {
  it('strikes over a TLS connection ban the certificate, not the shared address; its connection is closed', async () => {
    const a = await tlsClient(0, certA);
    const b = await tlsClient(0, certB);
    expect(await ask(a, 'OPTIONS')).toBe('200');
    expect(await ask(b, 'OPTIONS')).toBe('200');
    // THRESHOLD - 1 refusals from the B2BUA (no REGISTER on a peering interface: 403), then one message the engine cannot parse.
    for (let i = 0; i < THRESHOLD - 1; i++) expect(await ask(a, 'REGISTER')).toBe('403');
    expect(a.isClosed()).toBe(false);
    a.sock.write(garbage);
    await Promise.race([a.closed, new Promise((r) => setTimeout(r, 10_000))]);
    expect(a.isClosed()).toBe(true);

    const n0 = nodes[0]!;
    expect(await n0.metric('peergate_strike_bans_total')).toBeGreaterThanOrEqual(1);
    expect(await n0.metric('peergate_engine_tls_identity_bans_total')).toBeGreaterThanOrEqual(1);
    expect(await n0.metric('peergate_engine_tls_identity_refused_total', { stage: 'connection' })).toBe(1);
    expect(n0.proc.output()).toContain('TLS identity banned');
    // The address was not banned: B, on the same address and its own connection, still talks.
    expect(await n0.metric('peergate_engine_shield_dropped_total', { reason: 'ban' })).toBe(0);
    expect(b.isClosed()).toBe(false);
    expect(await ask(b, 'OPTIONS')).toBe('200');
    b.sock.destroy();

    const list = await bans(n0);
    expect(list.filter((x) => x.identity === fpA)).toHaveLength(1);
    expect(list.find((x) => x.identity === fpA)?.reason).toMatch(/^strikes: 6 in 60 s, last malformed$/);
    expect(list.some((x) => x.address === PEER_IP)).toBe(false);
  }, 60_000);

  it('refuses new handshakes presenting the banned certificate on every node of the pool; other certificates pass', async () => {
    for (const i of [0, 1]) {
      const node = nodes[i]!;
      await waitFor(async () => (await node.metric('peergate_engine_tls_identity_bans_total')) >= 1, 10_000, 50, `node ${i} got the identity ban`);
      const before = await node.metric('peergate_tls_handshakes_total', { result: 'failed' });
      expect(await refused(i, certA)).toBe(true);
      await waitFor(async () => (await node.metric('peergate_engine_tls_identity_refused_total', { stage: 'handshake' })) >= 1, 10_000, 50, `node ${i} counted the refusal`);
      expect(await node.metric('peergate_tls_handshakes_total', { result: 'refused' })).toBeGreaterThanOrEqual(1);
      // A refused handshake is not a failed one: no strike against the shared address.
      expect(await node.metric('peergate_tls_handshakes_total', { result: 'failed' })).toBe(before);
      const b = await tlsClient(i, certB);
      expect(await ask(b, 'OPTIONS')).toBe('200');
      b.sock.destroy();
    }
  }, 60_000);

  it('the admin API lifts an identity ban pool-wide, and sets one', async () => {
    const [n0, n1] = [nodes[0]!, nodes[1]!];
    // Lifted on node 1: node 0 follows through Redis.
    expect((await n1.admin(`/admin/bans/identity/${fpA.replace(/:/g, '').toLowerCase()}`, { method: 'DELETE' })).status).toBe(204);
    expect((await n1.admin(`/admin/bans/identity/${fpA}`, { method: 'DELETE' })).status).toBe(404);
    expect((await bans(n0)).some((x) => x.identity === fpA)).toBe(false);
    let status: string | undefined;
    await waitFor(async () => {
      const a = await tlsClient(0, certA);
      status = a.isClosed() ? undefined : await ask(a, 'OPTIONS');
      a.sock.destroy();
      return status === '200';
    }, 10_000, 200, 'peer A admitted again on node 0');

    // Bad input gets a 400 in peergate's words.
    const bad = await n0.admin('/admin/bans', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity: 'not-a-fingerprint' }) });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('SHA-256 fingerprint');
    const both = await n0.admin('/admin/bans', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity: fpA, address: '192.0.2.1' }) });
    expect(both.status).toBe(400);

    // An admin identity ban on node 0 closes nothing there yet (no connection) and is refused on node 1.
    const set = await n0.admin('/admin/bans', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity: fpA, ttl_s: 60, reason: 'test' }) });
    expect(set.status).toBe(201);
    expect(await set.json()).toMatchObject({ identity: fpA, ttl_s: 60 });
    await waitFor(async () => (await bans(n1)).some((x) => x.identity === fpA && x.reason === 'test'), 10_000, 50, 'the admin ban listed on node 1');
    await waitFor(() => refused(1, certA), 15_000, 100, 'peer A refused on node 1');
    const del = await n0.admin('/admin/bans', { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity: fpA }) });
    expect(del.status).toBe(204);
  }, 60_000);

  it('with limits.strikes.by_tls_identity: false the same strikes ban the source address', async () => {
    const n0 = nodes[0]!;
    const policy = parse(readFileSync(n0.policyPath, 'utf8')) as Record<string, any>;
    policy.limits.strikes.by_tls_identity = false;
    writeFileSync(n0.policyPath, stringify(policy));
    const r = await n0.admin('/admin/reload', { method: 'POST' });
    expect(r.status).toBe(200);
    let a = await tlsClient(0, certA);
    expect(await ask(a, 'OPTIONS')).toBe('200');
    for (let i = 0; i < THRESHOLD - 1 && !a.isClosed(); i++) await ask(a, 'REGISTER');
    a.sock.write(garbage);
    await waitFor(async () => (await bans(n0)).some((x) => x.address === PEER_IP), 10_000, 50, 'the address banned');
    expect((await bans(n0)).some((x) => x.identity === fpA)).toBe(false);
    a.sock.destroy();
    // Now both peers on the address are cut off (what identity bans avoid).
    a = await tlsClient(0, certB);
    expect(a.isClosed()).toBe(true);
    a.sock.destroy();
    expect((await n0.admin(`/admin/bans/${PEER_IP}`, { method: 'DELETE' })).status).toBe(204);
  }, 60_000);
});
