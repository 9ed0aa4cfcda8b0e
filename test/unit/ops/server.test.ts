import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOpsServer, resolveAdminToken, type OpsServer, type Readiness, type BanEntry } from '../../../src/ops/server.js';
import { callsTotal, refusalsTotal, activeCalls, policyReloadsTotal } from '../../../src/ops/metrics.js';
import { freePort, scratchDir } from '../../helpers/procs.js';

const TOKEN = 'test-admin-token-0123456789';
let server: OpsServer;
let base: string;
let readiness: Readiness = { ready: false, checks: { engine: 'not connected', redis: true } };
// A real, small ban list behind the admin API (the server is what is under test).
const bans = new Map<string, BanEntry>();

beforeAll(async () => {
  server = await startOpsServer({
    address: '127.0.0.1',
    port: await freePort(),
    adminToken: TOKEN,
    ready: async () => readiness,
    admin: {
      peers: () => [{ id: 'carrier-a', active_calls: 2 }],
      calls: async () => [{ call: 'abc', peer: 'carrier-a' }],
      bans: {
        list: () => [...bans.values()],
        add: (address, ttlMs, reason) => { bans.set(address, { address, expiresAt: Date.now() + ttlMs, reason }); },
        remove: (address) => bans.delete(address),
      },
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => { await server?.close(); });

const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };

describe('ops server', () => {
  it('/metrics exposes process metrics and the peergate counters as they move', async () => {
    callsTotal.inc({ peer: 'carrier-a', direction: 'inbound', result: 'answered' }, 3);
    refusalsTotal.inc({ peer: 'unknown', reason: 'unknown-source' });
    activeCalls.set({ peer: 'carrier-a' }, 2);
    policyReloadsTotal.inc({ result: 'error' });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const body = await res.text();
    expect(body).toMatch(/^peergate_calls_total\{peer="carrier-a",direction="inbound",result="answered"\} 3$/m);
    expect(body).toMatch(/^peergate_refusals_total\{peer="unknown",reason="unknown-source"\} 1$/m);
    expect(body).toMatch(/^peergate_active_calls\{peer="carrier-a"\} 2$/m);
    expect(body).toMatch(/^peergate_policy_reloads_total\{result="error"\} 1$/m);
    expect(body).toMatch(/^process_cpu_user_seconds_total /m);
    expect(body).toContain('# TYPE peergate_tls_handshakes_total counter');
    expect(body).toContain('# TYPE peergate_requests_total counter');
    expect(body).toContain('# TYPE peergate_responses_total counter');
    callsTotal.inc({ peer: 'carrier-a', direction: 'inbound', result: 'answered' });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^peergate_calls_total\{peer="carrier-a",direction="inbound",result="answered"\} 4$/m);
  });

  it('/health is 200 while the process is up', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });

  it('/ready is 503 with the failing checks, then 200', async () => {
    readiness = { ready: false, checks: { engine: 'not connected', redis: true } };
    let res = await fetch(`${base}/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, checks: { engine: 'not connected', redis: true } });
    readiness = { ready: true, checks: { engine: true, redis: true } };
    res = await fetch(`${base}/ready`);
    expect(res.status).toBe(200);
    expect((await res.json()).ready).toBe(true);
  });

  it('admin API: 401 without a token or with a wrong one, 200 with the right one', async () => {
    for (const path of ['/admin/peers', '/admin/calls', '/admin/bans']) {
      const none = await fetch(`${base}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    }
    expect((await fetch(`${base}/admin/bans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"address":"192.0.2.1"}' })).status).toBe(401);
    expect(bans.size).toBe(0);
    const peers = await fetch(`${base}/admin/peers`, { headers: auth });
    expect(peers.status).toBe(200);
    expect(await peers.json()).toEqual({ peers: [{ id: 'carrier-a', active_calls: 2 }] });
    const calls = await fetch(`${base}/admin/calls`, { headers: auth });
    expect(await calls.json()).toEqual({ calls: [{ call: 'abc', peer: 'carrier-a' }] });
  });

  it('bans: 400 on bad bodies with a clear message, 201 add, list, 204 remove, 404 unknown', async () => {
    const post = (body: string) => fetch(`${base}/admin/bans`, { method: 'POST', headers: json, body });
    const bad = [
      ['{"address":"not-an-ip"}', /address must be an IP address or CIDR/],
      ['{"address":"192.0.2.1","ttl_s":"long"}', /ttl_s/],
      ['{"address":"192.0.2.1","ttl_s":99999999}', /ttl_s must be at most/],
      ['{"address":"192.0.2.1","colour":"red"}', /colour/],
      ['{"address":', /JSON|Unexpected|body/i],
      ['{}', /address/],
    ] as const;
    for (const [body, msg] of bad) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
      expect((await res.json()).message, body).toMatch(msg);
    }
    expect(bans.size).toBe(0);

    const ok = await post('{"address":"192.0.2.0/24","ttl_s":60,"reason":"scanner"}');
    expect(ok.status).toBe(201);
    const list = await (await fetch(`${base}/admin/bans`, { headers: auth })).json();
    expect(list.bans).toHaveLength(1);
    expect(list.bans[0]).toMatchObject({ address: '192.0.2.0/24', reason: 'scanner' });
    expect(list.bans[0].expiresAt).toBeGreaterThan(Date.now() + 50_000);

    expect((await fetch(`${base}/admin/bans/${encodeURIComponent('192.0.2.0/24')}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect(bans.size).toBe(0);
    expect((await fetch(`${base}/admin/bans/192.0.2.9`, { method: 'DELETE', headers: auth })).status).toBe(404);
    expect((await fetch(`${base}/admin/bans/bogus`, { method: 'DELETE', headers: auth })).status).toBe(400);
    await post('{"address":"2001:db8::1"}');
    expect((await fetch(`${base}/admin/bans`, { method: 'DELETE', headers: json, body: '{"address":"2001:db8::1"}' })).status).toBe(204);
    expect((await fetch(`${base}/admin/bans`, { method: 'DELETE', headers: json, body: '{"addr":"x"}' })).status).toBe(400);
  });

  it('bans of TLS identities (issue #17.4): by fingerprint in, as `identity` out; bad fingerprints are 400', async () => {
    const fp = 'AB:'.repeat(31) + 'CD';
    const post = (body: unknown) => fetch(`${base}/admin/bans`, { method: 'POST', headers: json, body: JSON.stringify(body) });
    for (const [body, msg] of [
      [{ identity: 'AB:CD' }, /SHA-256 fingerprint/],
      [{ identity: 'zz'.repeat(32) }, /SHA-256 fingerprint/],
      [{ identity: fp, address: '192.0.2.1' }, /either address or identity/],
    ] as const) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json()).message).toMatch(msg);
    }
    expect(bans.size).toBe(0);
    // Lower case without colons is the same fingerprint; the store key is tls:<fingerprint>.
    const ok = await post({ identity: fp.replace(/:/g, '').toLowerCase(), ttl_s: 60, reason: 'abuse' });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ identity: fp, ttl_s: 60 });
    expect([...bans.keys()]).toEqual([`tls:${fp}`]);
    const list = await (await fetch(`${base}/admin/bans`, { headers: auth })).json();
    expect(list.bans).toEqual([expect.objectContaining({ identity: fp, reason: 'abuse' })]);
    expect(list.bans[0].address).toBeUndefined();
    expect((await fetch(`${base}/admin/bans/identity/nope`, { method: 'DELETE', headers: auth })).status).toBe(400);
    expect((await fetch(`${base}/admin/bans/identity/${fp}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${base}/admin/bans/identity/${fp}`, { method: 'DELETE', headers: auth })).status).toBe(404);
    await post({ identity: fp });
    expect((await fetch(`${base}/admin/bans`, { method: 'DELETE', headers: json, body: JSON.stringify({ identity: fp }) })).status).toBe(204);
    expect(bans.size).toBe(0);
  });

  it('without a configured token every admin request is 401; absent providers are 501', async () => {
    const s = await startOpsServer({ port: await freePort(), ready: async () => ({ ready: true, checks: {} }) });
    try {
      const url = `http://127.0.0.1:${s.port}`;
      expect((await fetch(`${url}/admin/peers`)).status).toBe(401);
      expect((await fetch(`${url}/admin/peers`, { headers: { authorization: 'Bearer ' } })).status).toBe(401);
      expect((await fetch(`${url}/ready`)).status).toBe(200);
    } finally { await s.close(); }
    const t = await startOpsServer({ port: await freePort(), adminToken: TOKEN, ready: async () => { throw new Error('redis down'); } });
    try {
      const url = `http://127.0.0.1:${t.port}`;
      expect((await fetch(`${url}/admin/peers`, { headers: auth })).status).toBe(501);
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toContain('redis down');
    } finally { await t.close(); }
    const hung = await startOpsServer({ port: await freePort(), readyTimeoutMs: 150, ready: () => new Promise<Readiness>(() => {}) });
    try {
      const t0 = Date.now();
      const ready = await fetch(`http://127.0.0.1:${hung.port}/ready`);
      expect(ready.status).toBe(503);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(JSON.stringify(await ready.json())).toContain('no answer within 150 ms');
    } finally { await hung.close(); }
  });

  it('resolveAdminToken reads admin_token_file and rejects short tokens', () => {
    const dir = scratchDir();
    writeFileSync(join(dir, 'tok'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'short'), 'abc\n');
    expect(resolveAdminToken({ admin_token_file: join(dir, 'tok') })).toBe(TOKEN);
    expect(resolveAdminToken({ admin_token: 'inline-token-0123456789' })).toBe('inline-token-0123456789');
    expect(resolveAdminToken({})).toBeUndefined();
    expect(() => resolveAdminToken({ admin_token_file: join(dir, 'short') })).toThrow(/at least 16/);
  });
});
