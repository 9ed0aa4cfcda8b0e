// The identity verification service (RFC 8224 §6.2, RFC 4474 §6.2, RFC 8588): checks the
// Identity header(s) of a request against the sending peer's policy and returns a verdict,
// the response code to refuse with, and the verstat to pass toward the core.
import type { X509Certificate } from 'node:crypto';
import { CertFetcher, CertFetchError, type FetchedCert } from './fetch.js';
import { loadAnchors, validateChain, type ChainResult } from './chain.js';
import { parsePassport, PassportError, verifyEs256, canonicalJson, type ParsedPassport } from './passport.js';
import { digestFields, digestString, isRfc4474Alg, verifyRfc4474 } from './rfc4474.js';
import {
  addrSpec, canonicalNumber, canonicalTn, firstHeader, headerValues, parseIdentityValue, splitIdentityValues,
  type IdentityRequest,
} from './sipfields.js';
import { tnAuthorises } from '../../pki/tnauthlist.js';
import { countVerification } from './metrics.js';
import type { GlobalIdentity, PeerIdentity } from './schema.js';

export type Verstat = 'TN-Validation-Passed' | 'TN-Validation-Failed' | 'No-TN-Validation';
export type IdentityStandard = 'rfc4474' | 'rfc8224';

export interface IdentityFailure { standard: IdentityStandard; status: number; reason: string; detail: string }

export interface IdentityResult {
  verdict: 'pass' | 'fail' | 'none';
  /** True when the peer's mode is `required` and the verdict is not `pass`: refuse with status/reason. */
  reject: boolean;
  status?: number;
  reason?: string;
  /** Why, for logs (never sent to the peer). */
  detail?: string;
  verstat: Verstat;
  standard?: IdentityStandard;
  attest?: 'A' | 'B' | 'C';
  origid?: string;
  origTn?: string;
  destTns?: string[];
  certificateUrl?: string;
  /** The Identity header value that passed (to forward when the policy keeps it). */
  identity?: string;
  /** Every header that failed (several Identity headers may be present). */
  failures: IdentityFailure[];
}

/** Replay cache: true the first time `key` is seen within ttlMs, false for repeats (src/store). */
export type SeenOnce = (key: string, ttlMs: number) => Promise<boolean>;

/** In-process replay cache with expiry, bounded in size (used when no store is given). */
export function memorySeenOnce(maxKeys = 100_000, now: () => number = Date.now): SeenOnce {
  const seen = new Map<string, number>();
  let nextSweep = 0;
  return async (key, ttlMs) => {
    const t = now();
    if (t >= nextSweep || seen.size >= maxKeys) {
      for (const [k, exp] of seen) if (exp <= t) seen.delete(k);
      while (seen.size >= maxKeys) { const k = seen.keys().next().value; if (k === undefined) break; seen.delete(k); }
      nextSweep = t + 1000;
    }
    const exp = seen.get(key);
    if (exp !== undefined && exp > t) return false;
    seen.delete(key);
    seen.set(key, t + ttlMs);
    return true;
  };
}

export interface VerifierOptions {
  /** Global policy (trust anchors, fetch limits). */
  global: GlobalIdentity;
  seenOnce?: SeenOnce;
  fetcher?: CertFetcher;
  /** Already-loaded anchors (tests); otherwise read from global.trust_anchors files. */
  anchors?: X509Certificate[];
  rfc4474Anchors?: X509Certificate[];
  now?: () => number;
}

// Response codes and reason phrases, RFC 8224 §6.2.2 / RFC 4474 §14.
const USE_IDENTITY = { status: 428, reason: 'Use Identity Header' } as const;
const BAD_INFO = { status: 436, reason: 'Bad Identity Info' } as const;
const BAD_CERT = { status: 437, reason: 'Unsupported Credential' } as const;
const BAD_CERT_4474 = { status: 437, reason: 'Unsupported Certificate' } as const;
const INVALID = { status: 438, reason: 'Invalid Identity Header' } as const;
const STALE = { status: 403, reason: 'Stale Date' } as const;
const REPLAY = { status: 403, reason: 'Replayed Identity' } as const;
const INTERNAL = { status: 500, reason: 'Identity Verification Error' } as const;

/** Identity headers tried per request (RFC 8224 allows several; more are ignored). */
const MAX_IDENTITY_HEADERS = 4;
const BASE64 = /^[A-Za-z0-9+/=]+$/;
const URI_HOST_END = /[;?>]/;
const IPV4_SHAPE = /^[0-9.]+$/;
const SUBJECT_CN = /(?:^|\n)CN=([^\n]*)/;
const QUOTES = /"/g;
const ANGLES = /^<|>$/g;

class Fail extends Error {
  constructor(readonly code: { status: number; reason: string }, readonly detail: string) { super(detail); }
}

const VERSTAT: Record<IdentityResult['verdict'], Verstat> = {
  pass: 'TN-Validation-Passed', fail: 'TN-Validation-Failed', none: 'No-TN-Validation',
};

interface Passed {
  standard: IdentityStandard; identity: string; certificateUrl: string;
  origTn?: string; destTns?: string[]; attest?: 'A' | 'B' | 'C'; origid?: string;
}

export class IdentityVerifier {
  readonly fetcher: CertFetcher;
  private readonly seenOnce: SeenOnce;
  private readonly anchors: X509Certificate[];
  private readonly anchors4474: X509Certificate[];
  private readonly now: () => number;

  constructor(o: VerifierOptions) {
    this.now = o.now ?? Date.now;
    this.fetcher = o.fetcher ?? new CertFetcher({ ...o.global.fetch, now: this.now });
    this.seenOnce = o.seenOnce ?? memorySeenOnce(100_000, this.now);
    this.anchors = o.anchors ?? loadAnchors(o.global.trust_anchors);
    this.anchors4474 = o.rfc4474Anchors ?? (o.global.rfc4474_trust_anchors ? loadAnchors(o.global.rfc4474_trust_anchors) : this.anchors);
  }

  /** Verify `req` as received from `peerId` under its identity policy. Never throws for bad input. */
  async verify(req: IdentityRequest, policy: PeerIdentity, peerId = 'unknown'): Promise<IdentityResult> {
    const r = await this.run(req, policy);
    countVerification(peerId, r.standard ?? 'none', r.verdict);
    return r;
  }

  private async run(req: IdentityRequest, policy: PeerIdentity): Promise<IdentityResult> {
    if (policy.mode === 'off') return { verdict: 'none', reject: false, verstat: VERSTAT.none, failures: [] };
    const values = splitIdentityValues(headerValues(req, 'Identity'));
    const info4474 = firstHeader(req, 'Identity-Info');
    const candidates: Array<{ standard: IdentityStandard; value: string }> = [];
    for (const v of values) {
      // RFC 4474 carries a quoted base64 signature and a separate Identity-Info header;
      // RFC 8224 carries a JWS (dot-separated) with an info parameter.
      const standard: IdentityStandard = v.startsWith('"') || (!v.includes('.') && info4474 !== undefined) ? 'rfc4474' : 'rfc8224';
      if (policy.standards.includes(standard)) candidates.push({ standard, value: v });
    }
    if (candidates.length === 0) {
      const detail = values.length ? 'Identity header of a standard this peer is not configured for' : 'no Identity header';
      return {
        verdict: 'none', reject: policy.mode === 'required', verstat: VERSTAT.none, failures: [], detail,
        ...(policy.mode === 'required' ? USE_IDENTITY : {}),
      };
    }
    const failures: IdentityFailure[] = [];
    // Bounded: each header may cost a certificate fetch, so a flood of them cannot hold a call.
    for (const c of candidates.slice(0, MAX_IDENTITY_HEADERS)) {
      try {
        const ok = c.standard === 'rfc8224' ? await this.verifyPassport(req, c.value, policy) : await this.verify4474(req, c.value, info4474, policy);
        return { verdict: 'pass', reject: false, verstat: VERSTAT.pass, failures, ...ok };
      } catch (e) {
        // Anything but a verification failure (a store outage, a bug) must not crash the
        // call flow: it is reported as a failure the policy then acts on.
        const f = e instanceof Fail ? e : new Fail(INTERNAL, `verification error: ${e instanceof Error ? e.message : String(e)}`);
        failures.push({ standard: c.standard, status: f.code.status, reason: f.code.reason, detail: f.detail });
      }
    }
    const first = failures[0]!;
    return {
      verdict: 'fail', reject: policy.mode === 'required', verstat: VERSTAT.fail, standard: first.standard,
      status: first.status, reason: first.reason, detail: first.detail, failures,
    };
  }

  // ---------- RFC 8224 / 8225 / 8588 ----------

  private async verifyPassport(req: IdentityRequest, value: string, policy: PeerIdentity): Promise<Passed> {
    const { token, params } = parseIdentityValue(value);
    let pp: ParsedPassport;
    try { pp = parsePassport(token); } catch (e) {
      throw new Fail(INVALID, e instanceof PassportError ? e.message : 'malformed PASSporT');
    }
    const info = params.get('info');
    const pptParam = params.get('ppt');
    const algParam = params.get('alg');
    if (algParam !== undefined && algParam !== 'ES256') throw new Fail(INVALID, `unsupported alg ${algParam}`);
    if (pp.compact) this.rebuildCompact(pp, req, info, pptParam);
    const h = pp.header;
    const c = pp.claims;
    if (h.alg !== 'ES256') throw new Fail(INVALID, `unsupported PASSporT alg ${String(h.alg)}`);
    if (h.typ !== undefined && h.typ !== 'passport') throw new Fail(INVALID, 'PASSporT typ is not passport');
    const ppt = h.ppt === undefined ? undefined : String(h.ppt);
    if (pptParam !== undefined && pptParam.replace(QUOTES, '') !== ppt) throw new Fail(INVALID, 'ppt parameter does not match the PASSporT header');
    if (ppt !== undefined && ppt !== 'shaken') throw new Fail(INVALID, `unsupported PASSporT type ppt=${ppt}`);
    const x5u = typeof h.x5u === 'string' ? h.x5u : undefined;
    const url = info ?? x5u;
    if (!url) throw new Fail(BAD_INFO, 'no info parameter or x5u');
    if (info !== undefined && x5u !== undefined && info !== x5u) throw new Fail(BAD_INFO, 'info parameter differs from x5u');

    // Freshness (RFC 8224 §6.2.4): iat within max_age_s either side of now.
    const iat = c.iat;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new Fail(INVALID, 'PASSporT has no numeric iat');
    const now = this.now();
    const ageS = now / 1000 - iat;
    if (ageS > policy.max_age_s || ageS < -policy.max_age_s) throw new Fail(STALE, `iat is ${Math.round(ageS)} s from now (max ${policy.max_age_s} s)`);

    // orig/dest against the SIP request after canonicalisation (RFC 8224 §8).
    const origTn = typeof c.orig?.tn === 'string' ? canonicalNumber(c.orig.tn) : undefined;
    const origUri = typeof c.orig?.uri === 'string' ? c.orig.uri : undefined;
    if (!origTn && !origUri) throw new Fail(INVALID, 'PASSporT orig has no tn or uri');
    const callers = [...headerValues(req, 'P-Asserted-Identity').flatMap((v) => splitIdentityValues([v])), ...headerValues(req, 'From')].map(addrSpec);
    const origOk = origTn
      ? callers.some((u) => canonicalTn(u) === origTn)
      : callers.some((u) => stripParams(u) === stripParams(origUri!));
    if (!origOk) throw new Fail(INVALID, `orig ${origTn ?? origUri} does not match From/P-Asserted-Identity`);
    const destList = Array.isArray(c.dest?.tn) ? c.dest.tn : typeof c.dest?.tn === 'string' ? [c.dest.tn] : [];
    const destTns = destList.map((t) => (typeof t === 'string' ? canonicalNumber(t) : undefined)).filter((t): t is string => !!t);
    const destUris = Array.isArray(c.dest?.uri) ? c.dest.uri.filter((u): u is string => typeof u === 'string') : [];
    if (destTns.length === 0 && destUris.length === 0) throw new Fail(INVALID, 'PASSporT dest has no tn or uri');
    const called = [addrSpec(firstHeader(req, 'To') ?? ''), req.uri];
    const destOk = called.some((u) => {
      const tn = canonicalTn(u);
      return (tn !== undefined && destTns.includes(tn)) || destUris.some((d) => stripParams(d) === stripParams(u));
    });
    if (!destOk) throw new Fail(INVALID, 'dest does not match To/Request-URI');

    let attest: 'A' | 'B' | 'C' | undefined;
    let origid: string | undefined;
    if (ppt === 'shaken') {
      if (c.attest !== 'A' && c.attest !== 'B' && c.attest !== 'C') throw new Fail(INVALID, 'SHAKEN attest is not A, B or C');
      if (typeof c.origid !== 'string' || c.origid === '') throw new Fail(INVALID, 'SHAKEN origid missing');
      attest = c.attest;
      origid = c.origid;
    }

    const cert = await this.fetch(url, policy);
    this.checkChain(cert, this.anchors, now, BAD_CERT);
    const key = cert.publicKey;
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Fail(BAD_CERT, 'certificate key is not EC P-256');
    if (cert.tnAuthList === undefined) throw new Fail(BAD_CERT, 'certificate has no TNAuthList');
    if (cert.tnAuthList === null) throw new Fail(BAD_CERT, 'certificate TNAuthList is malformed');
    if (!tnAuthorises(cert.tnAuthList, origTn, policy.spcs)) throw new Fail(BAD_CERT, `certificate TNAuthList does not cover ${origTn ?? origUri}`);
    if (!verifyEs256(pp.signingInput, pp.signature, key)) throw new Fail(INVALID, 'PASSporT signature does not verify');

    // Replay (RFC 8224 §12.1): the same signature again inside the freshness window.
    if (!(await this.seenOnce(`passport:${pp.signature.toString('base64url')}`, (policy.max_age_s * 2 + 1) * 1000))) {
      throw new Fail(REPLAY, 'PASSporT seen before within its freshness window');
    }
    return {
      standard: 'rfc8224', identity: value, certificateUrl: url, destTns,
      ...(origTn ? { origTn } : {}), ...(attest ? { attest } : {}), ...(origid ? { origid } : {}),
    };
  }

  /** RFC 8225 §7: rebuild header and claims of a compact PASSporT from the request. */
  private rebuildCompact(pp: ParsedPassport, req: IdentityRequest, info: string | undefined, ppt: string | undefined): void {
    if (ppt !== undefined) throw new Fail(INVALID, `compact form is not defined for ppt=${ppt}`);
    if (!info) throw new Fail(BAD_INFO, 'compact PASSporT without info parameter');
    const orig = canonicalTn(addrSpec(firstHeader(req, 'P-Asserted-Identity') ?? firstHeader(req, 'From') ?? ''));
    const dest = canonicalTn(addrSpec(firstHeader(req, 'To') ?? ''));
    const date = Date.parse(firstHeader(req, 'Date') ?? '');
    if (!orig || !dest) throw new Fail(INVALID, 'compact PASSporT needs telephone numbers in From and To');
    if (!Number.isFinite(date)) throw new Fail(INVALID, 'compact PASSporT needs a Date header');
    pp.header = { alg: 'ES256', typ: 'passport', x5u: info };
    pp.claims = { dest: { tn: [dest] }, iat: Math.floor(date / 1000), orig: { tn: orig } };
    pp.signingInput = `${Buffer.from(canonicalJson(pp.header)).toString('base64url')}.${Buffer.from(canonicalJson(pp.claims)).toString('base64url')}`;
  }

  // ---------- RFC 4474 ----------

  private async verify4474(req: IdentityRequest, value: string, infoHeader: string | undefined, policy: PeerIdentity): Promise<Passed> {
    if (!infoHeader) throw new Fail(BAD_INFO, 'Identity-Info header missing');
    const info = parseIdentityValue(infoHeader.trim().startsWith('<') ? `x;info=${infoHeader}` : infoHeader);
    const url = info.params.get('info') ?? info.token.replace(ANGLES, '');
    const alg = info.params.get('alg') ?? 'rsa-sha1';
    if (!isRfc4474Alg(alg)) throw new Fail(BAD_CERT_4474, `unsupported Identity-Info alg ${alg}`);
    const sig = parseIdentityValue(value).token;
    if (!sig || !BASE64.test(sig)) throw new Fail(INVALID, 'Identity is not a base64 signature');
    const fields = digestFields(req);
    if (typeof fields === 'string') throw new Fail(fields === 'Date' ? STALE : INVALID, `${fields} header missing`);

    // Date freshness (RFC 4474 §6.2 step 4).
    const now = this.now();
    const date = Date.parse(fields.date);
    if (!Number.isFinite(date)) throw new Fail(STALE, 'Date header unparseable');
    const ageS = (now - date) / 1000;
    if (ageS > policy.max_age_s || ageS < -policy.max_age_s) throw new Fail(STALE, `Date is ${Math.round(ageS)} s from now (max ${policy.max_age_s} s)`);

    const cert = await this.fetch(url, policy);
    this.checkChain(cert, this.anchors4474, now, BAD_CERT_4474);
    if (cert.publicKey.asymmetricKeyType !== 'rsa') throw new Fail(BAD_CERT_4474, 'certificate key is not RSA');
    // The certificate must cover the From domain (RFC 4474 §6.2 step 2).
    const fromHost = hostOf(fields.from);
    if (!fromHost || !covers(cert, fromHost)) throw new Fail(BAD_CERT_4474, `certificate does not cover From domain ${fromHost ?? '(none)'}`);
    if (!verifyRfc4474(digestString(fields), sig, alg, cert.publicKey)) throw new Fail(INVALID, 'Identity signature does not verify');
    if (!(await this.seenOnce(`rfc4474:${sig}`, (policy.max_age_s * 2 + 1) * 1000))) throw new Fail(REPLAY, 'Identity signature seen before within its freshness window');
    const origTn = canonicalTn(fields.from);
    return { standard: 'rfc4474', identity: value, certificateUrl: url, ...(origTn ? { origTn } : {}) };
  }

  // ---------- shared ----------

  private async fetch(url: string, policy: PeerIdentity): Promise<FetchedCert> {
    try {
      return await this.fetcher.get(url, policy.allow_hosts);
    } catch (e) {
      throw new Fail(BAD_INFO, e instanceof CertFetchError ? `certificate fetch: ${e.message}` : `certificate fetch failed: ${String(e)}`);
    }
  }

  private checkChain(cert: FetchedCert, anchors: X509Certificate[], now: number, code: { status: number; reason: string }): void {
    // Memoised per anchor set: path validation runs once per fetched bundle, not per call.
    let r = cert.memo.get(anchors) as ChainResult | undefined;
    if (!r || (r.ok && (now < r.notBefore || now > r.notAfter))) {
      r = validateChain(cert.chain, anchors, now);
      cert.memo.set(anchors, r);
    }
    if (!r.ok) throw new Fail(code, r.reason);
  }
}

function stripParams(uri: string): string {
  const semi = uri.indexOf(';');
  return (semi < 0 ? uri : uri.slice(0, semi)).toLowerCase();
}

/** Host of a sip/sips URI (no port, IPv6 brackets removed). */
export function hostOf(uri: string): string | undefined {
  const colon = uri.indexOf(':');
  if (colon < 0) return undefined;
  let rest = uri.slice(colon + 1);
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  const end = rest.search(URI_HOST_END);
  if (end >= 0) rest = rest.slice(0, end);
  if (rest.startsWith('[')) return rest.slice(1, rest.indexOf(']'));
  const pc = rest.indexOf(':');
  return (pc >= 0 ? rest.slice(0, pc) : rest).toLowerCase() || undefined;
}

/** certCovers, memoised on the fetched bundle (hosts per certificate are few). */
function covers(cert: FetchedCert, host: string): boolean {
  const key = `cover:${host}`;
  let v = cert.memo.get(key) as boolean | undefined;
  if (v === undefined) {
    v = certCovers(cert.leaf, host);
    if (cert.memo.size < 256) cert.memo.set(key, v);
  }
  return v;
}

function certCovers(cert: X509Certificate, host: string): boolean {
  if (IPV4_SHAPE.test(host) || host.includes(':')) {
    if (cert.checkIP(host)) return true;
    // Older RFC 4474 deployments put the domain in the subject CN only.
    return SUBJECT_CN.exec(cert.subject)?.[1] === host;
  }
  return cert.checkHost(host) !== undefined;
}
