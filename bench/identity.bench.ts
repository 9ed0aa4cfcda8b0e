// Identity verifications per second with a cached certificate (ES256 PASSporT, RSA-2048
// RFC 4474), against `openssl speed` verify/s for the same algorithms on the same machine.
//   npx tsx bench/identity.bench.ts [seconds-per-round=2]
// The replay cache is bypassed (it is the store's cost, measured with the store); everything
// else is the real path: header parsing, claims, canonicalisation, memoised chain check, signature.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, createSign, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { IdentityVerifier } from '../src/sbc/identity/verify.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../src/sbc/identity/schema.js';
import { signPassport, identityHeaderValue } from '../src/sbc/identity/passport.js';
import { loadPrivateKey } from '../src/pki/x509.js';
import { makeTestPki, requestOf } from '../test/helpers/identity.js';

const SECONDS = Number(process.argv[2] ?? 2);
const ROUNDS = 3;
const read = (p: string) => readFileSync(p, 'utf8');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Operations per second of each function, rounds interleaved so machine load hits all alike. */
async function rates(fns: Array<() => Promise<unknown>>): Promise<number[]> {
  const out: number[][] = fns.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let f = 0; f < fns.length; f++) {
      const fn = fns[f]!;
      const end = performance.now() + SECONDS * 1000;
      let n = 0;
      const t0 = performance.now();
      while (performance.now() < end) {
        for (let i = 0; i < 100; i++) await fn();
        n += 100;
      }
      out[f]!.push(n / ((performance.now() - t0) / 1000));
    }
  }
  return out.map(median);
}

function opensslSpeed(): { ecdsa: number; rsa: number; version: string } {
  const text = execFileSync('openssl', ['speed', '-seconds', '3', 'ecdsap256', 'rsa2048'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rsa = /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(text);
  const ec = /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(text);
  if (!rsa || !ec) throw new Error(`cannot parse openssl speed output:\n${text}`);
  const version = execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
  return { rsa: Number(rsa[2]), ecdsa: Number(ec[2]), version };
}

async function main(): Promise<void> {
  const pki = makeTestPki();
  const server = createServer({ cert: read(pki.https.cert), key: read(pki.https.key) }, (req, res) => {
    const body = req.url === '/sp.pem' ? read(pki.sp.cert) : req.url === '/rsa.pem' ? read(pki.rsa.cert) : undefined;
    if (!body) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'cache-control': 'max-age=3600' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const verifier = new IdentityVerifier({
    global: GlobalIdentitySchema.parse({ trust_anchors: [pki.stiRoot], rfc4474_trust_anchors: [pki.rsa.cert], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca] } }),
    seenOnce: async () => true,
  });

  // ES256 SHAKEN PASSporT; iat refreshed by the policy window (max_age 3600 s keeps it fresh for the run).
  const x5u = `https://127.0.0.1:${port}/sp.pem`;
  const jws = signPassport({ origTn: '12025550142', destTns: ['14155550123'], iat: Math.floor(Date.now() / 1000), x5u, key: loadPrivateKey(read(pki.sp.key)), shaken: { attest: 'A', origid: 'bench' } });
  const es = requestOf('sip:+14155550123@sbe.example;user=phone', [
    ['From', '<sip:+12025550142@carrier.example;user=phone>;tag=1'], ['To', '<sip:+14155550123@sbe.example>'],
    ['Call-ID', 'bench@1'], ['CSeq', '1 INVITE'], ['Identity', identityHeaderValue(jws, x5u, 'shaken')],
  ]);
  const pol8224 = PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc8224'], max_age_s: 3600 });

  // RSA-2048 RFC 4474 (rsa-sha256).
  const date = new Date().toUTCString();
  const body = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const digest = `sip:alice@127.0.0.1|sip:bob@sbe.example|bench@2|1 INVITE|${date}|sip:alice@127.0.0.1:5070|${body}`;
  const sig = createSign('sha256').update(digest).sign(read(pki.rsa.key)).toString('base64');
  const rsa = requestOf('sip:bob@sbe.example', [
    ['From', '<sip:alice@127.0.0.1>;tag=1'], ['To', '<sip:bob@sbe.example>'], ['Call-ID', 'bench@2'], ['CSeq', '1 INVITE'], ['Date', date],
    ['Contact', '<sip:alice@127.0.0.1:5070>'], ['Identity', `"${sig}"`], ['Identity-Info', `<https://127.0.0.1:${port}/rsa.pem>;alg=rsa-sha256`],
  ], body);
  const pol4474 = PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc4474'], max_age_s: 3600 });

  for (const [req, pol] of [[es, pol8224], [rsa, pol4474]] as const) {
    const r = await verifier.verify(req, pol);
    if (r.verdict !== 'pass') throw new Error(`warm-up verification failed: ${r.detail}`);
  }
  server.close();

  // The bare node:crypto primitive on the same keys: the ceiling for any JS verifier here.
  const ecPriv = createPrivateKey(read(pki.sp.key));
  const ecPub = createPublicKey(ecPriv);
  const data = Buffer.from(jws.slice(0, jws.lastIndexOf('.')));
  const ecSig = cryptoSign('sha256', data, { key: ecPriv, dsaEncoding: 'ieee-p1363' });
  const rsaPriv = createPrivateKey(read(pki.rsa.key));
  const rsaPub = createPublicKey(rsaPriv);
  const rsaSig = cryptoSign('sha256', Buffer.from(digest), rsaPriv);
  const [es256, rawEs, rsa2048, rawRsa] = await rates([
    () => verifier.verify(es, pol8224),
    async () => cryptoVerify('sha256', data, { key: ecPub, dsaEncoding: 'ieee-p1363' }, ecSig),
    () => verifier.verify(rsa, pol4474),
    async () => cryptoVerify('sha256', Buffer.from(digest), rsaPub, rsaSig),
  ]) as [number, number, number, number];
  const ossl = opensslSpeed();
  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;
  console.log(`identity verification, cached certificate, median of ${ROUNDS} x ${SECONDS}s rounds (node ${process.version}, ${ossl.version})`);
  console.log(`  ES256 PASSporT (SHAKEN):    ${es256.toFixed(0).padStart(7)} verifications/s   openssl speed ecdsap256 verify ${ossl.ecdsa.toFixed(0).padStart(7)}/s   ratio ${pct(es256, ossl.ecdsa)}`);
  console.log(`  RSA-2048 RFC 4474 (sha256): ${rsa2048.toFixed(0).padStart(7)} verifications/s   openssl speed rsa2048 verify   ${ossl.rsa.toFixed(0).padStart(7)}/s   ratio ${pct(rsa2048, ossl.rsa)}`);
  console.log(`  bare node:crypto verify (OpenSSL ${process.versions.openssl} in node): ES256 ${rawEs.toFixed(0)}/s (peergate ${pct(es256, rawEs)} of it), RSA-2048 ${rawRsa.toFixed(0)}/s (peergate ${pct(rsa2048, rawRsa)} of it)`);
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
