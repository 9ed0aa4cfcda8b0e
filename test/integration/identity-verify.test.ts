// The verifier against a real HTTPS certificate server on loopback, with PASSporTs signed by
// an independent implementation (jose) and RFC 4474 signatures made with node:crypto directly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CompactSign } from 'jose';
import { IdentityVerifier } from '../../src/sbc/identity/verify.js';
import { GlobalIdentitySchema, PeerIdentitySchema, type PeerIdentity } from '../../src/sbc/identity/schema.js';
import { makeTestPki, requestOf, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

let pki: TestPki;
let srv: CertServer;
const read = (p: string) => readFileSync(p, 'utf8');

beforeAll(async () => {
  pki = makeTestPki();
  srv = await startCertServer(pki, {
    '/sp.pem': { body: read(pki.sp.cert), headers: { 'cache-control': 'max-age=600' } },
    '/rogue.pem': { body: read(pki.rogueSp.cert) },
    '/other.pem': { body: read(pki.otherTnSp.cert) },
    '/spc.pem': { body: read(pki.spcSp.cert) },
    '/nostore.pem': { body: read(pki.sp.cert), headers: { 'cache-control': 'no-store' } },
    '/rsa.pem': { body: read(pki.rsa.cert) },
    '/rsa-other.pem': { body: read(pki.rsaOther.cert) },
    '/slow.pem': { body: read(pki.sp.cert), delayMs: 3000 },
    '/big.pem': { body: read(pki.sp.cert) + 'x'.repeat(100_000) },
    '/err.pem': { body: 'nope', status: 500 },
  });
});
afterAll(async () => { await srv?.close(); });

function verifier(fetch: Record<string, unknown> = {}, now?: () => number): IdentityVerifier {
  const global = GlobalIdentitySchema.parse({
    trust_anchors: [pki.stiRoot],
    rfc4474_trust_anchors: [pki.rsa.cert, pki.rsaOther.cert],
    fetch: { allow_hosts: ['127.0.0.1'], timeout_ms: 500, tls_ca: [pki.https.ca], negative_cache_s: 0, ...fetch },
  });
  return new IdentityVerifier({ global, ...(now ? { now } : {}) });
}

const policy = (o: Partial<PeerIdentity> = {}): PeerIdentity => PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc8224', 'rfc4474'], ...o });

interface PassportOpts { orig?: string; dest?: string; iat?: number; x5u?: string; attest?: string; keyFile?: string; origid?: string }

async function passport(o: PassportOpts = {}): Promise<string> {
  const x5u = o.x5u ?? srv.url('/sp.pem');
  const claims = {
    attest: o.attest ?? 'A', dest: { tn: [o.dest ?? '14155550123'] }, iat: o.iat ?? Math.floor(Date.now() / 1000),
    orig: { tn: o.orig ?? '12025550142' }, origid: o.origid ?? randomUUID(),
  };
  const key = createPrivateKey(read(o.keyFile ?? pki.sp.key));
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'ES256', ppt: 'shaken', typ: 'passport', x5u })
    .sign(key);
  return `${jws};info=<${x5u}>;alg=ES256;ppt=shaken`;
}

function invite(identity: string[], from = '"Alice" <sip:+1-202-555-0142@carrier.example;user=phone>;tag=abc', extra: Array<[string, string]> = []) {
  return requestOf('sip:+14155550123@sbe.example;user=phone', [
    ['From', from], ['To', '<sip:+14155550123@sbe.example;user=phone>'], ['Call-ID', randomUUID()], ['CSeq', '1 INVITE'],
    ...identity.map((v): [string, string] => ['Identity', v]), ...extra,
  ]);
}

describe('RFC 8224/8588 PASSporT verification', () => {
  it('passes a valid SHAKEN PASSporT and reports attest, orig and verstat', async () => {
    const v = verifier();
    const r = await v.verify(invite([await passport()]), policy(), 'carrier-a');
    expect(r.detail).toBeUndefined();
    expect(r).toMatchObject({ verdict: 'pass', reject: false, verstat: 'TN-Validation-Passed', standard: 'rfc8224', attest: 'A', origTn: '12025550142', destTns: ['14155550123'] });
  });

  it('refuses a replayed PASSporT within its freshness window', async () => {
    const v = verifier();
    const id = await passport();
    expect((await v.verify(invite([id]), policy())).verdict).toBe('pass');
    const again = await v.verify(invite([id]), policy());
    expect(again).toMatchObject({ verdict: 'fail', reject: true, status: 403, reason: 'Replayed Identity' });
  });

  it('refuses a replay whose ECDSA signature was malleated to (r, n − s) or re-spelled', async () => {
    const v = verifier();
    const id = await passport();
    expect((await v.verify(invite([id]), policy())).verdict).toBe('pass');
    // (r, n − s) is another valid signature of the same PASSporT: a fresh verifier accepts it,
    // and the one that saw the original refuses it as a replay (keyed on r, not on the bytes).
    const [jws, params] = [id.slice(0, id.indexOf(';')), id.slice(id.indexOf(';'))];
    const sig = Buffer.from(jws.slice(jws.lastIndexOf('.') + 1), 'base64url');
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const negS = Buffer.from((n - BigInt(`0x${sig.subarray(32).toString('hex')}`)).toString(16).padStart(64, '0'), 'hex');
    const malleated = `${jws.slice(0, jws.lastIndexOf('.') + 1)}${Buffer.concat([sig.subarray(0, 32), negS]).toString('base64url')}${params}`;
    expect(malleated).not.toBe(id);
    expect((await verifier().verify(invite([malleated]), policy())).verdict).toBe('pass');
    expect(await v.verify(invite([malleated]), policy())).toMatchObject({ verdict: 'fail', status: 403, reason: 'Replayed Identity' });
    // The last base64url character of 64 bytes carries 4 unused bits: flip one, same bytes.
    const text = jws.slice(jws.lastIndexOf('.') + 1);
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelledText = `${text.slice(0, -1)}${A[A.indexOf(text.at(-1)!) ^ 1]}`;
    expect(Buffer.from(respelledText, 'base64url')).toEqual(sig);
    const respelled = `${jws.slice(0, jws.lastIndexOf('.') + 1)}${respelledText}${params}`;
    expect(respelled).not.toBe(id);
    expect(await v.verify(invite([respelled]), policy())).toMatchObject({ verdict: 'fail', status: 403, reason: 'Replayed Identity' });
  });

  it('answers 428 when required and absent; annotates only in verify mode', async () => {
    const v = verifier();
    expect(await v.verify(invite([]), policy())).toMatchObject({ verdict: 'none', reject: true, status: 428, verstat: 'No-TN-Validation' });
    expect(await v.verify(invite([]), policy({ mode: 'verify' }))).toMatchObject({ verdict: 'none', reject: false, verstat: 'No-TN-Validation' });
    expect(await v.verify(invite([await passport()]), policy({ mode: 'off' }))).toMatchObject({ verdict: 'none', reject: false });
  });

  it('fails with 438 when From was changed after signing', async () => {
    const r = await verifier().verify(invite([await passport()], '<sip:+12025559999@carrier.example>;tag=x'), policy({ mode: 'verify' }));
    expect(r).toMatchObject({ verdict: 'fail', reject: false, status: 438, verstat: 'TN-Validation-Failed' });
  });

  it('matches orig against P-Asserted-Identity too', async () => {
    const r = await verifier().verify(invite([await passport()], '<sip:anonymous@anonymous.invalid>;tag=x', [['P-Asserted-Identity', '<tel:+12025550142>']]), policy());
    expect(r.verdict).toBe('pass');
  });

  it('fails with 438 when dest does not match To or Request-URI', async () => {
    const r = await verifier().verify(invite([await passport({ dest: '14155559999' })]), policy());
    expect(r).toMatchObject({ status: 438 });
  });

  it('answers 403 Stale Date when iat is too old', async () => {
    const r = await verifier().verify(invite([await passport({ iat: Math.floor(Date.now() / 1000) - 120 })]), policy());
    expect(r).toMatchObject({ verdict: 'fail', status: 403, reason: 'Stale Date' });
  });

  it('answers 437 when the certificate does not chain to the trust anchors', async () => {
    const r = await verifier().verify(invite([await passport({ x5u: srv.url('/rogue.pem'), keyFile: pki.rogueSp.key })]), policy());
    expect(r).toMatchObject({ status: 437 });
    expect(r.detail).toMatch(/trust anchor/);
  });

  it('answers 437 when TNAuthList does not cover the originating number', async () => {
    const r = await verifier().verify(invite([await passport({ x5u: srv.url('/other.pem'), keyFile: pki.otherTnSp.key })]), policy());
    expect(r).toMatchObject({ status: 437 });
    expect(r.detail).toMatch(/TNAuthList/);
  });

  it('accepts an SPC certificate, or only listed SPCs when the policy names them', async () => {
    const v = verifier();
    const ok = await v.verify(invite([await passport({ x5u: srv.url('/spc.pem'), keyFile: pki.spcSp.key })]), policy());
    expect(ok.verdict).toBe('pass');
    const no = await v.verify(invite([await passport({ x5u: srv.url('/spc.pem'), keyFile: pki.spcSp.key })]), policy({ spcs: ['1234'] }));
    expect(no).toMatchObject({ status: 437 });
  });

  it('answers 438 when the signature does not verify (claims altered)', async () => {
    const id = await passport();
    const [h, , s] = id.split(';')[0]!.split('.');
    const forged = Buffer.from(JSON.stringify({ attest: 'A', dest: { tn: ['14155550123'] }, iat: Math.floor(Date.now() / 1000), orig: { tn: '12025550142' }, origid: 'x' })).toString('base64url');
    const r = await verifier().verify(invite([`${h}.${forged}.${s};info=<${srv.url('/sp.pem')}>;alg=ES256;ppt=shaken`]), policy());
    expect(r).toMatchObject({ status: 438 });
    expect(r.detail).toMatch(/signature/);
  });

  it('turns a replay-store outage into a failure result instead of throwing', async () => {
    const global = GlobalIdentitySchema.parse({ trust_anchors: [pki.stiRoot], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca] } });
    const v = new IdentityVerifier({ global, seenOnce: () => Promise.reject(new Error('redis down')) });
    const r = await v.verify(invite([await passport()]), policy());
    expect(r).toMatchObject({ verdict: 'fail', reject: true, status: 500 });
    expect(r.detail).toMatch(/redis down/);
  });

  it('passes when any of several Identity headers is valid', async () => {
    const bad = await passport({ x5u: srv.url('/rogue.pem'), keyFile: pki.rogueSp.key });
    const r = await verifier().verify(invite([bad, await passport()]), policy());
    expect(r.verdict).toBe('pass');
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.status).toBe(437);
  });

  it('tries at most four Identity headers per request', async () => {
    const bad = await passport({ x5u: srv.url('/rogue.pem'), keyFile: pki.rogueSp.key });
    const r = await verifier().verify(invite([bad, bad, bad, bad, await passport()]), policy());
    expect(r).toMatchObject({ verdict: 'fail', status: 437 });
    expect(r.failures).toHaveLength(4);
  });

  it('fetches a certificate once and serves later calls from the cache (Cache-Control max-age)', async () => {
    const v = verifier();
    const before = srv.hits.get('/sp.pem') ?? 0;
    for (let i = 0; i < 3; i++) expect((await v.verify(invite([await passport()]), policy())).verdict).toBe('pass');
    expect((srv.hits.get('/sp.pem') ?? 0) - before).toBe(1);
    const ns = srv.hits.get('/nostore.pem') ?? 0;
    for (let i = 0; i < 2; i++) expect((await v.verify(invite([await passport({ x5u: srv.url('/nostore.pem') })]), policy())).verdict).toBe('pass');
    expect((srv.hits.get('/nostore.pem') ?? 0) - ns).toBe(2);
  });

  it('a slow certificate server delays only its own calls, and answers 436 at the timeout', async () => {
    const v = verifier({ timeout_ms: 1500 });
    expect((await v.verify(invite([await passport()]), policy())).verdict).toBe('pass'); // warm the cache
    const t0 = Date.now();
    const slow = v.verify(invite([await passport({ x5u: srv.url('/slow.pem') })]), policy());
    const fast = await v.verify(invite([await passport()]), policy());
    const fastMs = Date.now() - t0;
    expect(fast.verdict).toBe('pass');
    expect(fastMs).toBeLessThan(750);
    const r = await slow;
    expect(r).toMatchObject({ status: 436, reason: 'Bad Identity Info' });
    expect(r.detail).toMatch(/timed out/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - t0).toBeLessThan(2900);
  });

  it('answers 436 for oversized, failing, non-allowlisted and plain-http certificate URLs', async () => {
    const v = verifier();
    const big = await v.verify(invite([await passport({ x5u: srv.url('/big.pem') })]), policy());
    expect(big).toMatchObject({ status: 436 });
    expect(big.detail).toMatch(/exceeds/);
    expect(await v.verify(invite([await passport({ x5u: srv.url('/err.pem') })]), policy())).toMatchObject({ status: 436 });
    const foreign = await v.verify(invite([await passport({ x5u: `https://localhost:${srv.port}/sp.pem` })]), policy());
    expect(foreign.detail).toMatch(/allow_hosts/);
    const http = await v.verify(invite([await passport({ x5u: `http://127.0.0.1:${srv.port}/sp.pem` })]), policy());
    expect(http).toMatchObject({ status: 436 });
    expect(http.detail).toMatch(/scheme/);
  });

  it('limits concurrent fetches per host: the server never sees more than max_concurrent', async () => {
    const v = verifier({ max_concurrent: 1, timeout_ms: 400 });
    for (const p of ['/slow-a.pem', '/slow-b.pem', '/slow-c.pem']) srv.routes.set(p, { body: read(pki.sp.cert), delayMs: 3000 });
    const ids = await Promise.all(['/slow-a.pem', '/slow-b.pem', '/slow-c.pem'].map((p) => passport({ x5u: srv.url(p) })));
    srv.resetMaxInFlight();
    const t0 = Date.now();
    const results = await Promise.all(ids.map((id) => v.verify(invite([id]), policy())));
    for (const r of results) expect(r.status).toBe(436);
    expect(results.some((r) => /fetch slot/.test(r.detail ?? ''))).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.maxInFlight()).toBeLessThanOrEqual(1);
  });
});

describe('RFC 8225 §7 compact form', () => {
  it('rebuilds header and claims from the request and verifies the detached signature', async () => {
    const x5u = srv.url('/sp.pem');
    const date = new Date();
    const iat = Math.floor(date.getTime() / 1000);
    // Canonical JSON written out by hand (keys sorted, no spaces), signed with jose.
    const claims = `{"dest":{"tn":["14155550123"]},"iat":${iat},"orig":{"tn":"12025550142"}}`;
    const jws = await new CompactSign(new TextEncoder().encode(claims))
      .setProtectedHeader({ alg: 'ES256', typ: 'passport', x5u })
      .sign(createPrivateKey(read(pki.sp.key)));
    const [h, , sig] = jws.split('.');
    expect(Buffer.from(h!, 'base64url').toString()).toBe(`{"alg":"ES256","typ":"passport","x5u":"${x5u}"}`);
    const r = await verifier().verify(invite([`..${sig};info=<${x5u}>;alg=ES256`], undefined, [['Date', date.toUTCString()]]), policy());
    expect(r.detail).toBeUndefined();
    expect(r).toMatchObject({ verdict: 'pass', origTn: '12025550142' });
    const shifted = await verifier().verify(invite([`..${sig};info=<${x5u}>;alg=ES256`], undefined, [['Date', new Date(date.getTime() + 2000).toUTCString()]]), policy());
    expect(shifted).toMatchObject({ status: 438 });
  });
});

describe('RFC 4474 Identity verification', () => {
  const body = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

  function signed4474(o: { alg?: 'rsa-sha1' | 'rsa-sha256'; date?: string; url?: string; keyFile?: string; from?: string } = {}) {
    const date = o.date ?? new Date().toUTCString();
    const from = o.from ?? 'sip:alice@127.0.0.1';
    const callId = randomUUID();
    // Built here independently of src/: RFC 4474 §9 digest-string.
    const digest = `${from}|sip:bob@sbe.example|${callId}|1 INVITE|${date}|sip:alice@127.0.0.1:5070|${body}`;
    const alg = o.alg ?? 'rsa-sha256';
    const sig = createSign(alg === 'rsa-sha1' ? 'sha1' : 'sha256').update(digest).sign(read(o.keyFile ?? pki.rsa.key)).toString('base64');
    const headers: Array<[string, string]> = [
      ['From', `<${from}>;tag=1`], ['To', '"Bob" <sip:bob@sbe.example>'], ['Call-ID', callId], ['CSeq', '1 INVITE'], ['Date', date],
      ['Contact', '<sip:alice@127.0.0.1:5070>'], ['Identity', `"${sig}"`], ['Identity-Info', `<${o.url ?? srv.url('/rsa.pem')}>;alg=${alg}`],
    ];
    return { headers, req: () => requestOf('sip:bob@sbe.example', headers, body) };
  }
  const p4474 = () => policy({ standards: ['rfc4474'] });

  it('passes rsa-sha256 and rsa-sha1 signatures', async () => {
    const v = verifier();
    expect(await v.verify(signed4474().req(), p4474())).toMatchObject({ verdict: 'pass', standard: 'rfc4474' });
    expect(await v.verify(signed4474({ alg: 'rsa-sha1' }).req(), p4474())).toMatchObject({ verdict: 'pass' });
  });

  it('answers 438 when the body or From changed after signing', async () => {
    const v = verifier();
    const s = signed4474();
    const changedBody = requestOf('sip:bob@sbe.example', s.headers, body.replace('4000', '4002'));
    expect(await v.verify(changedBody, p4474())).toMatchObject({ status: 438 });
    const h = s.headers.map(([k, val]): [string, string] => [k, k === 'From' ? '<sip:mallory@127.0.0.1>;tag=1' : val]);
    expect(await v.verify(requestOf('sip:bob@sbe.example', h, body), p4474())).toMatchObject({ status: 438 });
  });

  it('answers 403 Stale Date for an old Date', async () => {
    const r = await verifier().verify(signed4474({ date: new Date(Date.now() - 300_000).toUTCString() }).req(), p4474());
    expect(r).toMatchObject({ status: 403, reason: 'Stale Date' });
  });

  it('answers 437 when the certificate does not cover the From domain', async () => {
    const r = await verifier().verify(signed4474({ url: srv.url('/rsa-other.pem'), keyFile: pki.rsaOther.key }).req(), p4474());
    expect(r).toMatchObject({ status: 437, reason: 'Unsupported Certificate' });
    expect(r.detail).toMatch(/From domain/);
  });

  it('refuses a replayed RFC 4474 signature', async () => {
    const v = verifier();
    const s = signed4474();
    expect((await v.verify(s.req(), p4474())).verdict).toBe('pass');
    expect(await v.verify(s.req(), p4474())).toMatchObject({ status: 403, reason: 'Replayed Identity' });
  });

  it('answers 428 when only an RFC 4474 header arrives for an RFC 8224-only peer', async () => {
    const r = await verifier().verify(signed4474().req(), policy({ standards: ['rfc8224'] }));
    expect(r).toMatchObject({ verdict: 'none', status: 428, reject: true });
  });
});
