// Emergency calls and `identity: required` (issue #17.8): with limits.priority.identity_exempt
// an unsigned emergency call from a required peer is verified but not refused, and counted; an
// ordinary unsigned call is still refused with 428, and without the exemption so is the
// emergency call. Real identity stage (verifier, PKI), no mocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from 'prom-client';
import { createIdentityStage } from '../../src/sbc/identity/stage.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../../src/sbc/identity/schema.js';
import { GlobalLimitsSchema } from '../../src/sbc/limits/schema.js';
import type { Peer, Policy } from '../../src/policy/schema.js';
import type { RequestView, Side } from '../../src/sbc/stages.js';
import { makeTestPki, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

let pki: TestPki;
let srv: CertServer;
beforeAll(async () => { pki = makeTestPki(); srv = await startCertServer(pki, {}); });
afterAll(async () => { await srv?.close(); });

function view(uri: string): RequestView {
  const h: Record<string, string> = { from: '<sip:+12025550142@x>;tag=1', to: '<sip:911@y>' };
  return { method: 'INVITE', uri, callId: 'c1', protocol: 'udp', sourceAddress: '127.0.0.1', sourcePort: 5070, body: '',
    get: (n) => h[n.toLowerCase()], getAll: (n) => (h[n.toLowerCase()] ? [h[n.toLowerCase()]!] : []) };
}

function setup(exempt: boolean) {
  const policy = {
    identity: GlobalIdentitySchema.parse({ trust_anchors: [pki.stiRoot], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca] } }),
    limits: GlobalLimitsSchema.parse({ priority: { emergency_numbers: ['911'], identity_exempt: exempt } }),
  } as unknown as Policy;
  const peer = { id: 'carrier-e', identity: PeerIdentitySchema.parse({ mode: 'required' }), limits: { resource_priority: [] } } as unknown as Peer;
  const side: Side = { kind: 'peer', peer };
  return { policy, side };
}

async function exemptions(): Promise<number> {
  const m = register.getSingleMetric('peergate_priority_calls_total');
  return m ? (await m.get()).values.filter((v) => v.labels.peer === 'carrier-e' && v.labels.result === 'identity_exempt').reduce((a, v) => a + v.value, 0) : 0;
}

describe('identity exemption for emergency calls', () => {
  it('passes an unsigned emergency call only when the policy exempts it, and counts it', async () => {
    const stage = createIdentityStage();
    const on = setup(true);
    const before = await exemptions();
    expect((await stage.verify(on.policy, on.side, view('sip:911@sbe.example'))).ok).toBe(true);
    expect(await exemptions()).toBe(before + 1);
    expect(await stage.verify(on.policy, on.side, view('sip:+14155550123@sbe.example'))).toMatchObject({ ok: false, refusal: { status: 428 } });
    const off = setup(false);
    expect(await stage.verify(off.policy, off.side, view('sip:911@sbe.example'))).toMatchObject({ ok: false, refusal: { status: 428 } });
    expect(await exemptions()).toBe(before + 1);
  });
});
