// Replay detection keys on the signature bytes, not on how the peer spelled them: base64 has
// several spellings of the same bytes (unused bits of the last character, optional padding,
// folding), and a replay must not pass by re-spelling a captured signature.
import { describe, expect, it } from 'vitest';
import { createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRfc4474Certificate } from '../../../src/pki/files.js';
import { CertFetcher, parseCertificates, toFetched, type FetchedCert } from '../../../src/sbc/identity/fetch.js';
import { IdentityVerifier, memorySeenOnce } from '../../../src/sbc/identity/verify.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../../../src/sbc/identity/schema.js';
import { requestOf } from '../../helpers/identity.js';
import { scratchDir } from '../../helpers/procs.js';

const URL = 'https://certs.example/rsa.pem';

/** A fetcher whose cache already holds `cert` (no network in a unit test). */
class Preloaded extends CertFetcher {
  constructor(private readonly cert: FetchedCert) { super({ allow_hosts: ['certs.example'] }); }
  override cached(url: string): FetchedCert | undefined { return url === URL ? this.cert : undefined; }
}

describe('RFC 4474 replay detection', () => {
  const dir = scratchDir('identity-replay-');
  const rsa = createRfc4474Certificate(dir, 'rsa', { domain: '127.0.0.1' });
  const cert = toFetched(URL, parseCertificates(readFileSync(rsa.certPath)));
  const body = 'v=0\r\n';

  function request(identity: (sig: string) => string) {
    const date = new Date().toUTCString();
    const callId = randomUUID();
    const digest = `sip:alice@127.0.0.1|sip:bob@sbe.example|${callId}|1 INVITE|${date}||${body}`;
    const sig = createSign('sha256').update(digest).sign(readFileSync(rsa.keyPath, 'utf8')).toString('base64');
    return requestOf('sip:bob@sbe.example', [
      ['From', '<sip:alice@127.0.0.1>;tag=1'], ['To', '<sip:bob@sbe.example>'], ['Call-ID', callId], ['CSeq', '1 INVITE'],
      ['Date', date], ['Identity', identity(sig)], ['Identity-Info', `<${URL}>;alg=rsa-sha256`],
    ], body);
  }

  it('refuses the same signature bytes sent again in another base64 spelling', async () => {
    const v = new IdentityVerifier({
      global: GlobalIdentitySchema.parse({ trust_anchors: [rsa.certPath], fetch: { allow_hosts: ['certs.example'] } }),
      fetcher: new Preloaded(cert), seenOnce: memorySeenOnce(),
    });
    const policy = PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc4474'] });
    let captured = '';
    const first = request((sig) => { captured = sig; return `"${sig}"`; });
    expect(await v.verify(first, policy)).toMatchObject({ verdict: 'pass' });

    // 256 bytes → 344 characters ending in "==": the last data character carries 4 unused bits.
    expect(captured).toMatch(/==$/);
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = ALPHABET.indexOf(captured[captured.length - 3]!);
    const respelled = `${captured.slice(0, -3)}${ALPHABET[last ^ 1]}==`;
    expect(Buffer.from(respelled, 'base64')).toEqual(Buffer.from(captured, 'base64'));
    const variants = [respelled, captured.replace(/=+$/, ''), `${captured.slice(0, 100)}\r\n ${captured.slice(100)}`];
    for (const spelling of variants) {
      const replay = requestOf('sip:bob@sbe.example', ['From', 'To', 'Call-ID', 'CSeq', 'Date', 'Identity-Info'].map((n): [string, string] => [n, first.headers(n)[0]!]).concat([['Identity', `"${spelling}"`]]), body);
      expect(await v.verify(replay, policy), spelling.slice(-8)).toMatchObject({ verdict: 'fail', status: 403, reason: 'Replayed Identity' });
    }
  });

  it('answers 438 for a signature that is not base64, with the certificate cached or before fetching it', async () => {
    const v = new IdentityVerifier({
      global: GlobalIdentitySchema.parse({ trust_anchors: [rsa.certPath], fetch: { allow_hosts: ['certs.example'] } }),
      fetcher: new Preloaded(cert), seenOnce: memorySeenOnce(),
    });
    const policy = PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc4474'] });
    for (const bad of ['"not base64!"', '""', '"Ł"', `"${'A'.repeat(2000)}"`]) {
      expect(await v.verify(request(() => bad), policy), bad.slice(0, 12)).toMatchObject({ verdict: 'fail', status: 438 });
    }
    // A certificate URL not in the cache: refused before any fetch (which would fail with 436).
    const elsewhere = request(() => '"not base64!"');
    const req = requestOf(elsewhere.uri, ['From', 'To', 'Call-ID', 'CSeq', 'Date', 'Identity'].map((n): [string, string] => [n, elsewhere.headers(n)[0]!])
      .concat([['Identity-Info', '<https://elsewhere.example/rsa.pem>;alg=rsa-sha256']]), body);
    expect(await v.verify(req, policy)).toMatchObject({ verdict: 'fail', status: 438, detail: 'Identity is not a base64 signature' });
    // A folded signature (not canonical text) still verifies.
    const folded = request((sig) => `"${sig.slice(0, 64)}\r\n ${sig.slice(64)}"`);
    expect(await v.verify(folded, policy)).toMatchObject({ verdict: 'pass' });
  });
});
