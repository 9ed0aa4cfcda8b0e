// Issue #16.1, deterministically: the orderings that left calls up for ever, reproduced with
// the real engine, the real B2BUA (drachtio-srf unchanged) and SIPp on UDP.
//
// * The 2xx echo, the caller's ACK and its BYE reach the app in ONE read of the wire socket.
//   drachtio-srf then creates the uas dialog and destroys it (BYE) before the B2BUA's promise
//   continuation could attach its 'destroy' listener. A TCP relay between the B2BUA and the
//   engine's wire port holds engine → app bytes and delivers them in batches, which makes
//   that ordering happen on every call.
// * The caller's BYE never reaches us (lost under overload): only the maximum duration (or a
//   session refresh) ends the call; reconciliation is off here so it cannot mask either case.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { startEngine, type Engine } from '../../src/engine/engine.js';
import { B2bua, type B2buaObserver } from '../../src/sbc/b2bua.js';
import { PolicySchema, type Policy } from '../../src/policy/schema.js';
import { freePorts, runSipp, startUas, waitFor, scratchDir, writeFile, stopInOrder, type Proc } from '../helpers/procs.js';
import { sippAck, SIPP_INVITE_HEAD, SIPP_OK_TO_LAST } from '../helpers/sipp-xml.js';
import { listener } from '../helpers/peergate.js';
import { RawCall, RawUa, cseqOf, hdr, offer, tagOf, type RawMsg } from '../helpers/raw-ua.js';

/** TCP relay to `port`; engine → app bytes are held and written in one chunk every `batchMs`. */
function coalescingRelay(port: number, batchMs: number): Promise<{ port: number; close(): void; batches: () => number }> {
  const sockets = new Set<Socket>();
  let batches = 0;
  const server: Server = createServer((app) => {
    const engine = createConnection({ host: '127.0.0.1', port });
    sockets.add(app); sockets.add(engine);
    let held: Buffer[] = [];
    const timer = setInterval(() => {
      if (held.length === 0) return;
      if (held.length > 1) batches++;
      app.write(Buffer.concat(held));
      held = [];
    }, batchMs);
    engine.on('data', (d: Buffer) => { held.push(d); });
    app.on('data', (d: Buffer) => engine.write(d));
    const end = () => { clearInterval(timer); app.destroy(); engine.destroy(); };
    app.on('close', end); engine.on('close', end);
    app.on('error', end); engine.on('error', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as { port: number }).port,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
    batches: () => batches,
  })));
}

const results: string[] = [];
const observer: B2buaObserver = {
  request() {}, refusal() {}, response() {}, callStarted() {}, callEnded() {}, callSetup() {},
  callFinished(_peer, _dir, result) { results.push(result); },
};

let engine: Engine;
let uas: Proc;
let relay: Awaited<ReturnType<typeof coalescingRelay>>;
let b2bua: B2bua;
let peerPort: number;
let policy: Policy;

beforeAll(async () => {
  const [p, corePort, wirePort, uasPort] = await freePorts(4) as [number, number, number, number];
  peerPort = p;
  engine = await startEngine({
    contacts: [`sip:127.0.0.1:${peerPort};transport=udp`, `sip:127.0.0.1:${corePort};transport=udp`],
    wire: { address: '127.0.0.1', port: wirePort, secret: 'orderings' },
  });
  uas = startUas('127.0.0.3', uasPort);
  policy = PolicySchema.parse({
    listen: [listener('peer-udp', peerPort), listener('core-udp', corePort)],
    core: { targets: [`sip:127.0.0.3:${uasPort}`] },
    media: { anchoring: false },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] } }],
    routes: [{ from: 'peers', to: 'core' }],
    // Neither reconciliation nor refreshes may end the calls: only the ordering fix is tested first.
    sessions: { reconcile_interval_s: 3600, session_timer: { refresh: 'off' } },
  });
  relay = await coalescingRelay(engine.wirePort, 100);
  b2bua = new B2bua({ policy: () => policy, log: pino({ level: 'silent' }), observer });
  await b2bua.connect({ host: '127.0.0.1', port: relay.port, secret: 'orderings' });
});

afterAll(() => {
  b2bua?.disconnect();
  return stopInOrder(relay, uas, engine);
});

describe('orderings that used to leave a call up for ever', () => {
  it('2xx echo + ACK + BYE in one wire read: every call still ends (caller_bye) and frees both engine dialogs', async () => {
    results.length = 0;
    const N = 20;
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', String(N), '-r', '10', '-d', '0'], { timeoutS: 30 });
    expect(r.successful).toBe(N);
    expect(relay.batches()).toBeGreaterThan(0);
    await waitFor(() => results.length === N, 10_000, 50, `${N} calls finished`).catch(() => undefined);
    expect(results.filter((x) => x === 'caller_bye').length).toBe(N);
    expect(b2bua.liveCalls).toBe(0);
    expect(b2bua.activeCalls()).toEqual([]);
    expect(b2bua.sessions.size).toBe(0);
    await waitFor(() => engine.core.dialogs.size === 0, 10_000, 50, 'no engine dialog left').catch(() => undefined);
    expect(engine.core.dialogs.size).toBe(0);
  }, 60_000);

  it('a caller whose BYE is lost: the call stays up until the maximum duration ends it on both legs', async () => {
    results.length = 0;
    const dir = scratchDir('orderings-');
    // INVITE, 200, ACK, then the caller is gone: its BYE never reaches us; it answers our BYE.
    const xml = writeFile(dir, 'uac-no-bye.xml', `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller whose BYE is lost">
  <send retrans="500"><![CDATA[
${SIPP_INVITE_HEAD}
Content-Length: 0

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
${sippAck()}
  <recv request="BYE" timeout="15000"/>
${SIPP_OK_TO_LAST}
</scenario>
`);
    const before = policy;
    policy = PolicySchema.parse({ ...JSON.parse(JSON.stringify(before)), sessions: { ...before.sessions, max_duration_s: 3 } });
    try {
      const t0 = Date.now();
      const promise = runSipp(['-sf', xml, `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '3', '-r', '3'], { timeoutS: 30 });
      await new Promise((res) => setTimeout(res, 1500));
      expect(b2bua.sessions.size).toBe(3); // up, with nobody left to end them
      const r = await promise;
      expect(r.successful, r.output.slice(-1500)).toBe(3);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
      expect(results).toEqual(['max_duration', 'max_duration', 'max_duration']);
      await waitFor(() => engine.core.dialogs.size === 0, 10_000, 50, 'no engine dialog left').catch(() => undefined);
      expect(engine.core.dialogs.size).toBe(0);
    } finally {
      policy = before;
    }
  }, 60_000);

  it('2xx echo + ACK + re-INVITE in one wire read: the re-INVITE reaches the callee, not an answer drachtio-srf made up', async () => {
    // A raw callee that answers the re-INVITE with SDP of its own (port 41111), and a raw caller
    // that sends ACK and re-INVITE the moment it has the 2xx; the relay's batches put the 2xx's
    // echo, the ACK and the re-INVITE in one read of the B2BUA.
    const callee = await RawUa.open('127.0.0.3');
    const reinvites: RawMsg[] = [];
    callee.onMessage((m) => {
      if (m.method === 'INVITE' && tagOf(hdr(m, 'to'))) { reinvites.push(m); callee.respond(m, 200, 'OK', { contact: true, body: offer('127.0.0.3', 41111) }); return; }
      if (m.method === 'INVITE') { callee.respond(m, 200, 'OK', { toTag: 'callee1', contact: true, body: offer('127.0.0.3', 41110) }); return; }
      if (m.method === 'BYE') callee.respond(m, 200, 'OK');
    });
    const caller = await RawUa.open('127.0.0.2');
    const before = policy;
    policy = PolicySchema.parse({ ...JSON.parse(JSON.stringify(before)), core: { targets: [`sip:127.0.0.3:${callee.port}`] } });
    try {
      const N = 4;
      const calls = Array.from({ length: N }, () => new RawCall(caller, `sip:+15551230000@127.0.0.1:${peerPort}`, { port: peerPort, address: '127.0.0.1' }));
      await Promise.all(calls.map(async (c) => {
        c.invite(offer('127.0.0.2', 40000));
        c.learn(await c.response('INVITE', (st) => st === 200, 5000));
        c.ack();
        c.request('INVITE', offer('127.0.0.2', 40020));
        const r = await caller.wait((m) => m.status === 200 && hdr(m, 'call-id') === c.callId && cseqOf(m).seq === 2, 5000, '2xx to the re-INVITE');
        expect(r.body).toContain('m=audio 41111');
        c.ack('', 2);
        c.request('BYE');
        await c.response('BYE', (st) => st === 200, 5000);
      }));
      expect(reinvites).toHaveLength(N);
      expect(relay.batches()).toBeGreaterThan(0);
      await waitFor(() => engine.core.dialogs.size === 0, 10_000, 50, 'no engine dialog left');
    } finally {
      policy = before;
      caller.close();
      callee.close();
    }
  }, 60_000);
});
