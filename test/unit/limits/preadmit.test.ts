// Pre-admission (src/app/preadmit.ts, src/sip/admission-header.ts, limits/index.ts PreAdmitted):
// the primary decides a new INVITE's limits on the memory store for the worker the engine picked,
// the worker claims the decision at its limits stage or frees the slot on every other way out.
// Real MemoryStore and Limits, the shipped example policy; the two processes are two objects on
// one store here (the worker's store client only forwards to that store).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { register } from 'prom-client';
import { parsePolicy } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/schema.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { Limits, peerScope, GLOBAL_SCOPE, type PreAdmitted } from '../../../src/sbc/limits/index.js';
import { ADMISSION_HEADER, formatAdmission, parseAdmission, type PreAdmission } from '../../../src/sip/admission-header.js';
import { Preadmitter } from '../../../src/app/preadmit.js';
import { workerNodeId, workerTag } from '../../../src/app/workers/hello.js';
import { appView, withHeader } from '../../../src/engine/message/app-view.js';
import { parseMessage, type SipRequest } from '../../../src/engine/message/index.js';
import type { AppConnection } from '../../../src/engine/wire/server.js';
import type { InboundPacket } from '../../../src/engine/transport/types.js';
import type { RequestView, Side } from '../../../src/sbc/stages.js';

const file = join(import.meta.dirname, '../../../policies/example.yaml');
const loaded = parsePolicy(readFileSync(file, 'utf8'), file);
if (!loaded.ok) throw new Error('example policy does not load');
const example: Policy = loaded.policy;
/** example-peer (127.0.0.1 on the peer listeners) with 2 sessions and no call rate. */
function policyWith(limits: Record<string, unknown>, global: Record<string, unknown> = {}): Policy {
  const peer = example.peers[0]!;
  return { ...example, limits: { ...example.limits, ...global }, peers: [{ ...peer, limits: { ...limits } }] } as Policy;
}

const invite = (uri = 'sip:+4420@127.0.0.1', extra = '') =>
  `INVITE ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <${uri}>\r\n` +
  `Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n${extra}Content-Length: 0\r\n\r\n`;

function parsed(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok || r.message.kind !== 'request') throw new Error('not a request');
  return r.message;
}

function packet(source = '127.0.0.1', localPort = 5060): InboundPacket {
  return {
    source: { protocol: 'udp', address: source, port: 5070 }, local: { protocol: 'udp', address: '127.0.0.1', port: localPort },
    data: Buffer.alloc(0),
  } as unknown as InboundPacket;
}

const app = (tags: string[]) => ({ tags }) as unknown as AppConnection;

/** The worker's RequestView of the text the engine passed up. */
function viewOf(text: string, uri = 'sip:+4420@127.0.0.1'): RequestView {
  const req = parsed(text);
  const get = (n: string) => req.headers.find((h) => h.name === n.toLowerCase())?.value;
  return { method: 'INVITE', uri, callId: 'c1', protocol: 'udp', sourceAddress: '127.0.0.1', sourcePort: 5070, body: '', get, getAll: (n) => { const v = get(n); return v ? [v] : []; } };
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return 0;
  return (await m.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

/** A node: its memory store, the primary's pre-admitter, and worker 1's limits stage on the same store. */
function node(policy: Policy) {
  const store = new MemoryStore({ reportUp: false });
  const pre = new Preadmitter({ policy: () => policy, store, nodeId: 'n' });
  const worker = new Limits({ store, nodeId: workerNodeId('n', 1) });
  /** What worker 1 would get: the engine's header on the INVITE text, parsed back by the worker. */
  const route = (uri?: string, source?: string): { view: RequestView; pre: PreAdmitted | undefined; header: string | undefined } => {
    const text = invite(uri);
    const header = pre.admit(parsed(text), packet(source), app([workerTag(1)]));
    const view = viewOf(header === undefined ? text : withHeader(text, ADMISSION_HEADER, header), uri);
    return { view, pre: worker.preadmitted(policy, view), header };
  };
  return { store, pre, worker, route };
}

describe('X-Peergate-Admission header', () => {
  const cases: PreAdmission[] = [
    { admitted: true, sessionId: '0b6f8a4e-7d0c-4d43-9d33-4b7fd1f0a1a2', peer: 'carrier-a', priority: false },
    { admitted: true, sessionId: 's1', peer: undefined, priority: true },
    { admitted: false, reason: 'cps', retryAfterS: 1, peer: 'p.1_x', priority: false },
    { admitted: false, reason: 'global_sessions', retryAfterS: 30, peer: undefined, priority: true },
  ];
  for (const c of cases) {
    it(`round trip: ${formatAdmission(c)}`, () => expect(parseAdmission(formatAdmission(c))).toEqual(c));
  }

  it('anything else is null, never a throw', () => {
    for (const v of [undefined, '', ';', 's=', 's=a', 's=a;peer=p', 's=a;core;peer=p;prio=0', 's=a;prio=2;core', 's=a;refused=cps;core;prio=0',
      'refused=cps;core;prio=0', 'refused=store_unavailable;retry-after=1;core;prio=0', 'refused=cps;retry-after=-1;core;prio=0',
      's=a b;core;prio=0', 's="a";core;prio=0', 's=a;core;prio=0;x=1', 'x'.repeat(600), 's=a;core=1;prio=0']) {
      expect(parseAdmission(v)).toBeNull();
    }
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = 's=;refused=cps prio=01core peer=x-retry-after=5"\\,\r\n\u00ff';
    for (let i = 0; i < 2000; i++) {
      let v = '';
      for (let n = Math.floor(rnd() * 40); n > 0; n--) v += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => parseAdmission(v)).not.toThrow();
    }
  });
});

describe('MemoryStore.admitNow', () => {
  it('answers exactly as admit() for the same sequence of calls', async () => {
    const t = { now: 1_000_000 };
    const a = new MemoryStore({ now: () => t.now, reportUp: false });
    const b = new MemoryStore({ now: () => t.now, reportUp: false });
    const rate = { key: 'cps:p', ratePerS: 2, burst: 3 };
    const scopes = [{ scope: 'peer:p', limit: 4 }, { scope: 'global', limit: 5 }];
    for (let i = 0; i < 12; i++) {
      t.now += i % 3 === 0 ? 400 : 0;
      const r = i % 4 === 3 ? undefined : rate;
      expect(a.admitNow(r, scopes, `s${i}`, 'n', 30_000)).toEqual(await b.admit(r, scopes, `s${i}`, 'n', 30_000));
      if (i === 6) { await a.release('s1'); await b.release('s1'); }
    }
    expect(await a.count('peer:p')).toBe(await b.count('peer:p'));
  });
});

describe('the engine strips a network copy of X-Peergate-Admission', () => {
  it('removed from what the app sees, whatever its case, with the TLS identity fast path unaffected', () => {
    const text = invite(undefined, 'x-peergate-admission: s=forged;core;prio=1\r\nX-PEERGATE-ADMISSION : s=x;peer=a;prio=0\r\n');
    const v = appView(parsed(text), text, '127.0.0.1', 5070, undefined)!;
    expect(v.text).not.toMatch(/peergate-admission/i);
    expect(parsed(v.text).headers.some((h) => h.name === 'x-peergate-admission')).toBe(false);
    // withHeader adds ours after the others, before the empty line; the body is untouched.
    const ours = withHeader(v.text, ADMISSION_HEADER, 's=1;core;prio=0');
    expect(parsed(ours).headers.filter((h) => h.name === 'x-peergate-admission').map((h) => h.value)).toEqual(['s=1;core;prio=0']);
    expect(ours.endsWith('Content-Length: 0\r\nX-Peergate-Admission: s=1;core;prio=0\r\n\r\n')).toBe(true);
  });
});

describe('pre-admission: the primary decides, the worker claims or frees', () => {
  const from = (policy: Policy): Side => ({ kind: 'peer', peer: policy.peers[0]! });

  it('an admitted INVITE becomes the call\'s slot under the worker\'s node id; the (N+1)th is refused with Retry-After, counted once', async () => {
    const policy = policyWith({ sessions: 2 }, { retry_after_s: 7 });
    const { store, worker, route } = node(policy);
    const refused0 = await metric('peergate_limit_refusals_total', { peer: 'example-peer', reason: 'sessions' });
    const slots = [];
    for (let i = 0; i < 2; i++) {
      const r = route();
      expect(r.header).toMatch(/^s=[0-9a-f-]+;peer=example-peer;prio=0$/);
      const a = await worker.admitCall(policy, from(policy), r.view, r.pre);
      expect(a.ok).toBe(true);
      slots.push(a);
    }
    expect(await store.count(peerScope('example-peer'))).toBe(2);
    // The worker's keepAlive refreshes them: they are under its node id.
    expect(await store.keepAlive(workerNodeId('n', 1), 30_000)).toBe(2);
    const third = route();
    expect(third.header).toBe('refused=sessions;retry-after=7;peer=example-peer;prio=0');
    expect(await worker.admitCall(policy, from(policy), third.view, third.pre)).toEqual({
      ok: false, refusal: { status: 503, reason: 'Service Unavailable', label: 'limit_sessions', retryAfterS: 7 },
    });
    third.pre!.settle(); // the call flow's finally: nothing to free
    expect(await metric('peergate_limit_refusals_total', { peer: 'example-peer', reason: 'sessions' })).toBe(refused0 + 1);
    for (const s of slots) if (s.ok) await (s.release() as unknown as Promise<void>);
    expect(await store.count(peerScope('example-peer'))).toBe(0);
    expect(await store.count(GLOBAL_SCOPE)).toBe(0);
  });

  it('a call flow that ends before limits (settle) frees the pre-admitted slot; settle after a claim frees nothing', async () => {
    const policy = policyWith({ sessions: 1 });
    const { store, worker, route } = node(policy);
    const early = route();
    expect(await store.count(peerScope('example-peer'))).toBe(1);
    early.pre!.settle();
    early.pre!.settle(); // idempotent
    await new Promise((r) => setImmediate(r));
    expect(await store.count(peerScope('example-peer'))).toBe(0);
    const r = route();
    const a = await worker.admitCall(policy, from(policy), r.view, r.pre);
    expect(a.ok).toBe(true);
    r.pre!.settle();
    await new Promise((res) => setImmediate(res));
    expect(await store.count(peerScope('example-peer'))).toBe(1);
  });

  it('attributed otherwise by the worker (a policy reload in between): the pre-admitted slot is freed and the call admitted as without one', async () => {
    const policy = policyWith({ sessions: 1 });
    const { store, worker, route } = node(policy);
    const r = route();
    const mismatch0 = await metric('peergate_limit_preadmissions_total', { result: 'mismatch' });
    // The worker's policy names the peer differently: its own admission, in its own scope.
    const renamed = { ...policy, peers: [{ ...policy.peers[0]!, id: 'renamed' }] } as Policy;
    const a = await worker.admitCall(renamed, from(renamed), r.view, r.pre);
    expect(a.ok).toBe(true);
    expect(await store.count(peerScope('example-peer'))).toBe(0);
    expect(await store.count(peerScope('renamed'))).toBe(1);
    expect(await metric('peergate_limit_preadmissions_total', { result: 'mismatch' })).toBe(mismatch0 + 1);
    // A priority mismatch too (the worker sees an emergency call the engine did not).
    const r2 = route();
    expect(r2.header).toMatch(/prio=0$/);
    const emergency = viewOf(withHeader(invite('sip:112@127.0.0.1'), ADMISSION_HEADER, r2.header!), 'sip:112@127.0.0.1');
    const p2 = { ...policy, limits: { ...policy.limits, priority: { ...policy.limits.priority, emergency_numbers: ['112'], reserved_share: 1 } } } as Policy;
    expect((await worker.admitCall(p2, from(p2), emergency, r2.pre)).ok).toBe(true);
    expect(await store.count(peerScope('example-peer'))).toBe(1); // the re-admission's, not two
  });

  it('the same decisions as the worker alone: call rate and priority\'s reserved share, sequence for sequence', async () => {
    const policy = policyWith({ cps: 2, burst: 2, sessions: 3 }, { priority: { ...example.limits.priority, emergency_numbers: ['911'], reserved_share: 0.5 } });
    const a = node(policy);
    const alone = new Limits({ store: new MemoryStore({ reportUp: false }), nodeId: 'alone' });
    const uris = ['sip:1@127.0.0.1', 'sip:2@127.0.0.1', 'sip:3@127.0.0.1', 'sip:911@127.0.0.1', 'sip:911@127.0.0.1', 'sip:4@127.0.0.1'];
    const got: unknown[] = [];
    const want: unknown[] = [];
    for (const uri of uris) {
      const r = a.route(uri);
      const x = await a.worker.admitCall(policy, from(policy), r.view, r.pre);
      got.push(x.ok ? 'ok' : x.refusal.label);
      const y = await alone.admitCall(policy, from(policy), viewOf(invite(uri), uri));
      want.push(y.ok ? 'ok' : y.refusal.label);
    }
    expect(got).toEqual(want);
    expect(got).toContain('limit_cps');
  });

  it('an INVITE its worker never answered (its connection gone) gives its slot back; a refusal or garbage frees nothing', async () => {
    const policy = policyWith({ sessions: 1 });
    const { store, pre, route } = node(policy);
    const r = route();
    expect(await store.count(peerScope('example-peer'))).toBe(1);
    pre.abandoned('refused=sessions;retry-after=5;peer=example-peer;prio=0');
    pre.abandoned('garbage');
    expect(await store.count(peerScope('example-peer'))).toBe(1);
    pre.abandoned(r.header!);
    expect(await store.count(peerScope('example-peer'))).toBe(0);
  });

  it('no header for an app without a worker tag, an unknown source, or an external engine; a forged header from an external engine is not read', () => {
    const policy = policyWith({ sessions: 1 });
    const { store, pre, worker } = node(policy);
    const req = parsed(invite());
    expect(pre.admit(req, packet(), app([]))).toBeUndefined();
    expect(pre.admit(req, packet(), app(['other-app']))).toBeUndefined();
    expect(pre.admit(req, packet('192.0.2.9'), app([workerTag(1)]))).toBeUndefined();
    const external = { ...policy, engine: { ...policy.engine, embedded: false } } as Policy;
    expect(new Preadmitter({ policy: () => external, store, nodeId: 'n' }).admit(req, packet(), app([workerTag(1)]))).toBeUndefined();
    const forged = viewOf(withHeader(invite(), ADMISSION_HEADER, 's=forged;peer=example-peer;prio=0'));
    expect(worker.preadmitted(external, forged)).toBeUndefined();
    expect(worker.preadmitted(policy, viewOf(withHeader(invite(), ADMISSION_HEADER, 'garbage')))).toBeUndefined();
  });
});
