// What signing a SHAKEN PASSporT costs through peergate's signer (src/sbc/identity/sign.ts: the
// canonical numbers, the claims, and the key checked against its file before every signature so
// that a rotated key is used at once) against the bare signature with a key held in memory
// (passport.ts signPassport), in alternating slices of one run; µs of wall time per signature,
// medians over the rounds, and their difference: what the signer adds to each signed call.
//   npx tsx bench/identity-sign.bench.ts [rounds=9]
import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { IdentitySigner } from '../src/sbc/identity/sign.js';
import { signPassport } from '../src/sbc/identity/passport.js';
import { makeTestPki } from '../test/helpers/identity.js';

const ROUNDS = Math.max(3, Number(process.argv[2] ?? 9));
const N = 2000;
const pki = makeTestPki();
const signer = new IdentitySigner();
const policy = { shaken: { attest: 'A' as const, key: pki.sp.key, certificate_url: 'https://cr.example/sp.pem' } };
const out = { from: '<sip:+12025550142@core.example>', to: '<sip:+14155550123@peer.example>' };
const key = createPrivateKey(readFileSync(pki.sp.key, 'utf8'));
const bare = () => signPassport({ origTn: '12025550142', destTns: ['14155550123'], iat: Math.floor(Date.now() / 1000), x5u: policy.shaken.certificate_url, key, shaken: { attest: 'A', origid: randomUUID() } });
const viaSigner = () => signer.sign(policy, out);

function slice(f: () => unknown): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) f();
  return Number(process.hrtime.bigint() - t) / N / 1000;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (let i = 0; i < 500; i++) { bare(); viaSigner(); }
const a: number[] = [];
const b: number[] = [];
for (let r = 0; r < ROUNDS; r++) { a.push(slice(bare)); b.push(slice(viaSigner)); }
const diffs = a.map((x, i) => b[i]! - x);
console.log(`ES256 PASSporT, ${ROUNDS} rounds of ${N}: bare signature ${median(a).toFixed(1)} µs, through the signer ${median(b).toFixed(1)} µs; ` +
  `the signer adds ${median(diffs).toFixed(1)} µs (median of per-round differences; range ${Math.min(...diffs).toFixed(1)}–${Math.max(...diffs).toFixed(1)})`);
