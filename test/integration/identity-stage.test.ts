// The identity stage as the B2BUA calls it (src/sbc/stages.ts IdentityStage): a peer in
// `required` mode is refused without a valid PASSporT; a valid one gets verstat toward the
// core; calls toward a signing peer carry a PASSporT that an independent verifier accepts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { compactVerify } from 'jose';
import { createIdentityStage, type IdentityOutcomeWithResult } from '../../src/sbc/identity/stage.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../../src/sbc/identity/schema.js';
import type { Peer, Policy } from '../../src/policy/schema.js';
import { GlobalLimitsSchema } from '../../src/sbc/limits/schema.js';
import type { RequestView, Side } from '../../src/sbc/stages.js';
import { makeTestPki, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

let pki: TestPki;
let srv: CertServer;
beforeAll(async () => {
  pki = makeTestPki();
  srv = await startCertServer(pki, { '/sp.pem': { body: readFileSync(pki.sp.cert) } });
});
afterAll(async () => { await srv?.close(); });

function view(headers: Array<[string, string]>, uri = 'sip:+14155550123@sbe.example;user=phone'): RequestView {
  const all = (n: string) => headers.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v);
  return {
    method: 'INVITE', uri, callId: 'c1', protocol: 'udp', sourceAddress: '127.0.0.1', sourcePort: 5070, body: '',
    get: (n) => all(n)[0], getAll: all,
  };
}

function setup(identity: Record<string, unknown>) {
  // The stage reads only policy.identity, policy.limits.priority and the peer's id and identity.
  const policy = { identity: GlobalIdentitySchema.parse({ trust_anchors: [pki.stiRoot], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca] } }), limits: GlobalLimitsSchema.parse({}) } as unknown as Policy;
  const peer = { id: 'carrier-a', identity: PeerIdentitySchema.parse(identity) } as unknown as Peer;
  const side: Side = { kind: 'peer', peer };
  return { policy, side };
}

describe('identity stage', () => {
  it('signs toward a SHAKEN peer, and verifies what it signed when that peer calls back', async () => {
    const stage = createIdentityStage();
    const { policy, side } = setup({ mode: 'required', sign: { shaken: { attest: 'A', key: pki.sp.key, certificate_url: srv.url('/sp.pem') } } });
    const from = '<sip:+12025550142@sbe.example;user=phone>;tag=9';
    const to = '<sip:+14155550123@carrier-a.example>';
    const signed = await stage.sign(policy, side, view([['From', from]]), { from, to });
    expect(signed['Identity']).toMatch(/;ppt=shaken$/);
    // Independent check: jose with the certificate's key.
    const cert = new X509Certificate(readFileSync(pki.sp.cert));
    await expect(compactVerify(signed['Identity']!.split(';')[0]!, createPublicKey(cert.publicKey.export({ type: 'spki', format: 'pem' })))).resolves.toBeTruthy();

    const ok = await stage.verify(policy, side, view([['From', from], ['To', to], ['Identity', signed['Identity']!]]));
    expect(ok.ok).toBe(true);
    const outcome = (ok as { ok: true; outcome: IdentityOutcomeWithResult }).outcome;
    expect(outcome.result).toMatchObject({ verdict: 'pass', attest: 'A' });
    expect(outcome.addHeaders['P-Asserted-Identity']).toBe('<tel:+12025550142;verstat=TN-Validation-Passed>');
    expect(outcome.addHeaders['Identity']).toBe(signed['Identity']);
  });

  it('refuses an unsigned call from a required peer with 428, passes it in verify mode', async () => {
    const stage = createIdentityStage();
    const req = view([['From', '<sip:+12025550142@x>;tag=1'], ['To', '<sip:+14155550123@y>']]);
    const r = setup({ mode: 'required' });
    expect(await stage.verify(r.policy, r.side, req)).toEqual({ ok: false, refusal: { status: 428, reason: 'Use Identity Header', label: 'identity_428' } });
    const v = setup({ mode: 'verify', inbound_header: 'strip' });
    const res = await stage.verify(v.policy, v.side, req);
    expect(res.ok).toBe(true);
    expect((res as { ok: true; outcome: IdentityOutcomeWithResult }).outcome.removeHeaders).toContain('Identity');
  });

  it('does nothing for calls from the core or to peers without signing', async () => {
    const stage = createIdentityStage();
    const { policy, side } = setup({ mode: 'required' });
    expect(await stage.verify(policy, { kind: 'core' }, view([]))).toEqual({ ok: true, outcome: { addHeaders: {} } });
    expect(await stage.sign(policy, side, view([]), { from: '<sip:+1@x>', to: '<sip:+2@y>' })).toEqual({});
  });

  it('reports, not throws, when it cannot sign (caller is not a number)', async () => {
    const errors: string[] = [];
    const stage = createIdentityStage({ onSignError: (peer, e) => errors.push(`${peer}: ${e.message}`) });
    const { policy, side } = setup({ mode: 'off', sign: { shaken: { attest: 'C', key: pki.sp.key, certificate_url: srv.url('/sp.pem') } } });
    expect(await stage.sign(policy, side, view([]), { from: '<sip:alice@x>', to: '<sip:+14155550123@y>' })).toEqual({});
    expect(errors[0]).toMatch(/carrier-a: caller is not a telephone number/);
  });
});
