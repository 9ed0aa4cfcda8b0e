// Identity verifications per second with a cached certificate (ES256 PASSporT, RSA-2048
// RFC 4474), against `openssl speed` verify/s for the same algorithms on the same machine.
//   npx tsx bench/identity.bench.ts [seconds-per-round=2]
// Signatures are checked with a key prepared once per certificate (src/sbc/identity/sigverify.ts:
// the native addon when built, else node:crypto); bare node:crypto one-shot verify is shown too.
// The replay cache is bypassed (it is the store's cost, measured with the store); everything
// else is the real path: header parsing, claims, canonicalisation, memoised chain check, signature.
//
// Divisor: `openssl speed` divides by the CPU *user* time it used (its `-elapsed` flag switches
// to wall clock), so on a shared machine its rate does not drop when other processes take the
// cores. Node is measured the same way: operations per second of this process's CPU time from
// process.cpuUsage(), user + system of all its threads (GC helpers included), which counts
// slightly more than openssl's user-only divisor and so favours openssl, never node. Wall-clock
// rates are printed alongside for information. Each algorithm runs in rounds: the node paths take
// turns in short slices, then `openssl speed` for that algorithm; the ratio is taken per round
// (so a load change between rounds hits both sides of it) and its median reported.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, createSign, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { IdentityVerifier } from '../src/sbc/identity/verify.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../src/sbc/identity/schema.js';
import { signPassport, identityHeaderValue } from '../src/sbc/identity/passport.js';
import { loadPrivateKey } from '../src/pki/x509.js';
import { prepareKey, verifierImplementation } from '../src/sbc/identity/sigverify.js';
import { makeTestPki, requestOf } from '../test/helpers/identity.js';

const SECONDS = Math.max(1, Math.round(Number(process.argv[2] ?? 2)));
const ROUNDS = 7;
const BATCH = 100;
const read = (p: string) => readFileSync(p, 'utf8');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU seconds used by this process so far (user + system, all threads). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface Rate { cpu: number; wall: number }

/** A path under test: awaited per call (as the call flow does) or a plain synchronous call. */
type Path = { async: () => Promise<unknown> } | { sync: () => unknown };

/** Within a round the node paths take turns in slices of this much CPU time, so that they
 *  see the same machine load as each other. */
const SLICES = 8;

/** Run `p` until it has used `seconds` of CPU time: calls, CPU seconds and wall seconds. */
async function measure(p: Path, seconds: number): Promise<{ n: number; cpu: number; wall: number }> {
  let n = 0;
  const w0 = performance.now();
  const c0 = cpuSeconds();
  let c = c0;
  do {
    if ('async' in p) { for (let i = 0; i < BATCH; i++) await p.async(); } else { for (let i = 0; i < BATCH; i++) p.sync(); }
    n += BATCH;
    c = cpuSeconds();
  } while (c - c0 < seconds);
  return { n, cpu: c - c0, wall: (performance.now() - w0) / 1000 };
}

type Alg = 'ecdsap256' | 'rsa2048';

/** One `openssl speed` run for one algorithm (machine-readable output): verify/s, divided by
 *  CPU user time. */
function opensslSpeed(alg: Alg): number {
  const text = execFileSync('openssl', ['speed', '-mr', '-seconds', String(SECONDS), alg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  // +F2:<k>:<bits>:<sign/s>:<verify/s> (RSA), +F4:<k>:<bits>:<sign/s>:<verify/s> (ECDSA).
  const m = alg === 'rsa2048' ? /^\+F2:\d+:2048:[\d.]+:([\d.]+)$/m.exec(text) : /^\+F4:\d+:256:[\d.]+:([\d.]+)$/m.exec(text);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${text}`);
  return Number(m[1]);
}

interface Measured { node: Rate[]; openssl: number; ratio: number[] }

/** Per round: each path for SECONDS of CPU time in SLICES turns (path 1, 2, …, 1, 2, …), then
 *  `openssl speed` for the same algorithm right after. Rates are medians over the rounds;
 *  `ratio` is, per path, the median over rounds of (path rate / openssl rate of that round):
 *  pairing each round with its own openssl run keeps machine load out of the ratio. */
async function rates(alg: Alg, paths: Path[]): Promise<Measured> {
  const out: Rate[][] = paths.map(() => []);
  const ossl: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const acc = paths.map(() => ({ n: 0, cpu: 0, wall: 0 }));
    for (let s = 0; s < SLICES; s++) {
      for (let f = 0; f < paths.length; f++) {
        const m = await measure(paths[f]!, SECONDS / SLICES);
        const a = acc[f]!;
        a.n += m.n; a.cpu += m.cpu; a.wall += m.wall;
      }
    }
    acc.forEach((a, f) => out[f]!.push({ cpu: a.n / a.cpu, wall: a.n / a.wall }));
    ossl.push(opensslSpeed(alg));
  }
  return {
    node: out.map((rs) => ({ cpu: median(rs.map((x) => x.cpu)), wall: median(rs.map((x) => x.wall)) })),
    openssl: median(ossl),
    ratio: out.map((rs) => median(rs.map((x, i) => x.cpu / ossl[i]!))),
  };
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
    seenOnce: () => true,
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

  // The bare node:crypto primitive on the same keys (KeyObjects and buffers made once, plain
  // synchronous calls): the ceiling for any JS verifier here.
  const ecPriv = createPrivateKey(read(pki.sp.key));
  const ecPub = createPublicKey(ecPriv);
  const data = Buffer.from(jws.slice(0, jws.lastIndexOf('.')));
  const ecSig = cryptoSign('sha256', data, { key: ecPriv, dsaEncoding: 'ieee-p1363' });
  const rsaPriv = createPrivateKey(read(pki.rsa.key));
  const rsaPub = createPublicKey(rsaPriv);
  const digestBuf = Buffer.from(digest);
  const rsaSig = cryptoSign('sha256', digestBuf, rsaPriv);
  // The prepared-key primitive peergate uses (native addon when built): the ceiling for peergate.
  const ecPrepared = prepareKey(ecPub, 'ES256');
  const rsaPrepared = prepareKey(rsaPub, 'RS256');
  const jwsInput = jws.slice(0, jws.lastIndexOf('.'));
  const ecM = await rates('ecdsap256', [
    { async: () => verifier.verify(es, pol8224) },
    { sync: () => cryptoVerify('sha256', data, { key: ecPub, dsaEncoding: 'ieee-p1363' }, ecSig) },
    { sync: () => ecPrepared.verify(jwsInput, ecSig) },
  ]);
  const rsaM = await rates('rsa2048', [
    { async: () => verifier.verify(rsa, pol4474) },
    { sync: () => cryptoVerify('sha256', digestBuf, rsaPub, rsaSig) },
    { sync: () => rsaPrepared.verify(digestBuf, rsaSig) },
  ]);
  const [es256, rawEs, prepEs] = ecM.node as [Rate, Rate, Rate];
  const [rsa2048, rawRsa, prepRsa] = rsaM.node as [Rate, Rate, Rate];
  const version = execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const n = (x: number, w = 7) => x.toFixed(0).padStart(w);
  console.log(`identity verification, cached certificate, ${ROUNDS} rounds per algorithm of ${SECONDS} CPU-s per path (in ${SLICES} turns) each followed by openssl speed -seconds ${SECONDS} (node ${process.version}, OpenSSL ${process.versions.openssl} in node; ${version})`);
  console.log('rates are per CPU second (node: process.cpuUsage() user+system; openssl speed: CPU user time, its default), medians over rounds; ratios are medians of per-round ratios');
  console.log(`  ES256 PASSporT (SHAKEN):    peergate ${n(es256.cpu)}/s   openssl speed ecdsap256 verify ${n(ecM.openssl)}/s   ratio ${pct(ecM.ratio[0]!)}`);
  console.log(`  RSA-2048 RFC 4474 (sha256): peergate ${n(rsa2048.cpu)}/s   openssl speed rsa2048 verify   ${n(rsaM.openssl)}/s   ratio ${pct(rsaM.ratio[0]!)}`);
  console.log(`  bare node:crypto one-shot verify: ES256 ${n(rawEs.cpu)}/s (${pct(ecM.ratio[1]!)} of openssl)   RSA-2048 ${n(rawRsa.cpu)}/s (${pct(rsaM.ratio[1]!)} of openssl)`);
  console.log(`  prepared key (${verifierImplementation}): ES256 ${n(prepEs.cpu)}/s (${pct(ecM.ratio[2]!)} of openssl)   RSA-2048 ${n(prepRsa.cpu)}/s (${pct(rsaM.ratio[2]!)} of openssl)`);
  console.log(`  per verification: peergate ES256 ${(1e6 / es256.cpu).toFixed(1)} µs vs prepared ${(1e6 / prepEs.cpu).toFixed(1)} µs vs openssl ${(1e6 / ecM.openssl).toFixed(1)} µs, RSA-2048 ${(1e6 / rsa2048.cpu).toFixed(1)} µs vs prepared ${(1e6 / prepRsa.cpu).toFixed(1)} µs vs openssl ${(1e6 / rsaM.openssl).toFixed(1)} µs (CPU)`);
  console.log(`  wall clock (information only): peergate ES256 ${n(es256.wall, 0)}/s, prepared ${n(prepEs.wall, 0)}/s; peergate RSA-2048 ${n(rsa2048.wall, 0)}/s, prepared ${n(prepRsa.wall, 0)}/s`);
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
