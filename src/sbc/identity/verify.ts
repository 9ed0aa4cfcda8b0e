// The identity verification service (RFC 8224 §6.2, RFC 4474 §6.2, RFC 8588): checks the
// Identity header(s) of a request against the sending peer's policy and returns a verdict,
// the response code to refuse with, and the verstat to pass toward the core.
import type { X509Certificate } from 'node:crypto';
import { CertFetcher, CertFetchError, type FetchedCert } from './fetch.js';
import { loadAnchors, validateChain, type ChainResult } from './chain.js';
import { parsePassport, PassportError, canonicalJson, type ParsedPassport } from './passport.js';
import { digestHead, digestParts, isRfc4474Alg, type DigestParts, type Rfc4474Alg } from './rfc4474.js';
import { prepareKey, type PreparedKey, type SigAlg } from './sigverify.js';
import {
  addrSpec, canonicalNumber, canonicalTn, firstHeader, headerValues, parseIdentityValue, parseIdentityValueShared, splitIdentityValues,
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

/** Replay cache: true the first time `key` is seen within ttlMs, false for repeats (src/store).
 *  An in-process cache may answer synchronously; a shared store answers with a promise. */
export type SeenOnce = (key: string, ttlMs: number) => boolean | Promise<boolean>;

/** In-process replay cache with expiry, bounded in size (used when no store is given). */
export function memorySeenOnce(maxKeys = 100_000, now: () => number = Date.now): SeenOnce {
  const seen = new Map<string, number>();
  let nextSweep = 0;
  return (key, ttlMs) => {
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

/** A header that passed every check but the replay check, which needs the (async) store;
 *  `passed` is the result to return when the replay check passes too. */
interface Checked { passed: IdentityResult; replayKey: string; replayTtlMs: number; replayDetail: string }

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

  /** Verify `req` as received from `peerId` under its identity policy. Never throws for bad input.
   *  With the certificate cached, everything up to the replay check runs synchronously: the
   *  replay store is the only await on that path. */
  async verify(req: IdentityRequest, policy: PeerIdentity, peerId = 'unknown'): Promise<IdentityResult> {
    let r: IdentityResult;
    if (policy.mode === 'off') r = { verdict: 'none', reject: false, verstat: VERSTAT.none, failures: [] };
    else {
      const values = splitIdentityValues(headerValues(req, 'Identity'));
      // Identity-Info is looked up only when a value needs it (null: not looked up yet).
      let info4474: string | undefined | null = null;
      let failures: IdentityFailure[] | undefined;
      let candidates = 0;
      let passed: IdentityResult | undefined;
      for (const v of values) {
        // RFC 4474 carries a quoted base64 signature and a separate Identity-Info header;
        // RFC 8224 carries a JWS (dot-separated) with an info parameter.
        let standard: IdentityStandard = 'rfc8224';
        if (v.startsWith('"')) standard = 'rfc4474';
        else if (!v.includes('.')) {
          if (info4474 === null) info4474 = firstHeader(req, 'Identity-Info');
          if (info4474 !== undefined) standard = 'rfc4474';
        }
        if (!policy.standards.includes(standard)) continue;
        // Bounded: each header may cost a certificate fetch, so a flood of them cannot hold a call.
        if (++candidates > MAX_IDENTITY_HEADERS) break;
        try {
          let k: Checked | Promise<Checked>;
          if (standard === 'rfc8224') k = this.checkPassport(req, v, policy);
          else {
            if (info4474 === null) info4474 = firstHeader(req, 'Identity-Info');
            k = this.check4474(req, v, info4474, policy);
          }
          if (k instanceof Promise) k = await k;
          // Replay (RFC 8224 §12.1, RFC 4474): the same signature again inside the freshness window.
          const fresh = this.seenOnce(k.replayKey, k.replayTtlMs);
          if (!(typeof fresh === 'boolean' ? fresh : await fresh)) throw new Fail(REPLAY, k.replayDetail);
          passed = k.passed;
          break;
        } catch (e) {
          // Anything but a verification failure (a store outage, a bug) must not crash the
          // call flow: it is reported as a failure the policy then acts on.
          const f = e instanceof Fail ? e : new Fail(INTERNAL, `verification error: ${e instanceof Error ? e.message : String(e)}`);
          (failures ??= []).push({ standard, status: f.code.status, reason: f.code.reason, detail: f.detail });
        }
      }
      if (passed) { if (failures) passed.failures = failures; r = passed; } else if (!failures) {
        // No header of a standard the peer uses (each one tried either passed or failed).
        const detail = values.length ? 'Identity header of a standard this peer is not configured for' : 'no Identity header';
        r = {
          verdict: 'none', reject: policy.mode === 'required', verstat: VERSTAT.none, failures: [], detail,
          ...(policy.mode === 'required' ? USE_IDENTITY : {}),
        };
      } else {
        const first = failures[0]!;
        r = {
          verdict: 'fail', reject: policy.mode === 'required', verstat: VERSTAT.fail, standard: first.standard,
          status: first.status, reason: first.reason, detail: first.detail, failures,
        };
      }
    }
    countVerification(peerId, r.standard ?? 'none', r.verdict);
    return r;
  }

  /** The cached certificate (no promise), or a fetch that fails with 436. */
  private cert(url: string, policy: PeerIdentity): FetchedCert | Promise<FetchedCert> {
    return this.fetcher.cached(url, policy.allow_hosts) ?? this.fetch(url, policy);
  }

  // ---------- RFC 8224 / 8225 / 8588 ----------

  /** Every check of a PASSporT but the replay check; synchronous when the certificate is cached. */
  private checkPassport(req: IdentityRequest, value: string, policy: PeerIdentity): Checked | Promise<Checked> {
    const { token, params } = parseIdentityValueShared(value);
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
    if (!origMatches(req, origTn, origUri)) throw new Fail(INVALID, `orig ${origTn ?? origUri} does not match From/P-Asserted-Identity`);
    const destList = Array.isArray(c.dest?.tn) ? c.dest.tn : typeof c.dest?.tn === 'string' ? [c.dest.tn] : [];
    const destTns: string[] = [];
    for (const t of destList) {
      const tn = typeof t === 'string' ? canonicalNumber(t) : undefined;
      if (tn) destTns.push(tn);
    }
    const destUris = Array.isArray(c.dest?.uri) ? c.dest.uri.filter((u): u is string => typeof u === 'string') : [];
    if (destTns.length === 0 && destUris.length === 0) throw new Fail(INVALID, 'PASSporT dest has no tn or uri');
    if (!destMatches(addrSpec(firstHeader(req, 'To') ?? ''), destTns, destUris) && !destMatches(req.uri, destTns, destUris)) {
      throw new Fail(INVALID, 'dest does not match To/Request-URI');
    }

    let attest: 'A' | 'B' | 'C' | undefined;
    let origid: string | undefined;
    if (ppt === 'shaken') {
      if (c.attest !== 'A' && c.attest !== 'B' && c.attest !== 'C') throw new Fail(INVALID, 'SHAKEN attest is not A, B or C');
      if (typeof c.origid !== 'string' || c.origid === '') throw new Fail(INVALID, 'SHAKEN origid missing');
      attest = c.attest;
      origid = c.origid;
    }

    const passed: IdentityResult = {
      verdict: 'pass', reject: false, verstat: VERSTAT.pass, failures: [],
      standard: 'rfc8224', identity: value, certificateUrl: url, destTns,
    };
    if (origTn) passed.origTn = origTn;
    if (attest) passed.attest = attest;
    if (origid) passed.origid = origid;
    const cert = this.cert(url, policy);
    if (cert instanceof Promise) return cert.then((ce) => this.passportCert(ce, pp, passed, now, origTn, origUri, policy));
    return this.passportCert(cert, pp, passed, now, origTn, origUri, policy);
  }

  /** The certificate checks of a PASSporT (chain, key, TNAuthList) and its signature. */
  private passportCert(
    cert: FetchedCert, pp: ParsedPassport, passed: IdentityResult, now: number,
    origTn: string | undefined, origUri: string | undefined, policy: PeerIdentity,
  ): Checked {
    this.checkChain(cert, this.anchors, now, BAD_CERT);
    const key = cert.publicKey;
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Fail(BAD_CERT, 'certificate key is not EC P-256');
    if (cert.tnAuthList === undefined) throw new Fail(BAD_CERT, 'certificate has no TNAuthList');
    if (cert.tnAuthList === null) throw new Fail(BAD_CERT, 'certificate TNAuthList is malformed');
    if (!tnAuthorises(cert.tnAuthList, origTn, policy.spcs)) throw new Fail(BAD_CERT, `certificate TNAuthList does not cover ${origTn ?? origUri}`);
    if (!preparedKey(cert, 'ES256').verify(pp.signingInput, pp.signature)) throw new Fail(INVALID, 'PASSporT signature does not verify');
    return {
      passed, replayKey: `passport:${pp.signatureKey}`, replayTtlMs: (policy.max_age_s * 2 + 1) * 1000,
      replayDetail: 'PASSporT seen before within its freshness window',
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

  /** Every check of an RFC 4474 Identity but the replay check; synchronous when the certificate is cached. */
  private check4474(req: IdentityRequest, value: string, infoHeader: string | undefined, policy: PeerIdentity): Checked | Promise<Checked> {
    if (!infoHeader) throw new Fail(BAD_INFO, 'Identity-Info header missing');
    const { url, alg } = identityInfo(infoHeader);
    if (!isRfc4474Alg(alg)) throw new Fail(BAD_CERT_4474, `unsupported Identity-Info alg ${alg}`);
    const parts = digestParts(req);
    if (typeof parts === 'string') throw new Fail(parts === 'Date' ? STALE : INVALID, `${parts} header missing`);

    // Date freshness (RFC 4474 §6.2 step 4).
    const now = this.now();
    const date = parseDate(parts[4]);
    if (!Number.isFinite(date)) throw new Fail(STALE, 'Date header unparseable');
    const ageS = (now - date) / 1000;
    if (ageS > policy.max_age_s || ageS < -policy.max_age_s) throw new Fail(STALE, `Date is ${Math.round(ageS)} s from now (max ${policy.max_age_s} s)`);

    const cached = this.fetcher.cached(url, policy.allow_hosts);
    if (cached) return this.cert4474(cached, value, url, alg, parts, now, policy);
    // Not worth a certificate fetch when the signature is not even base64.
    if (signatureOf(value) === undefined) throw new Fail(INVALID, 'Identity is not a base64 signature');
    return this.fetch(url, policy).then((ce) => this.cert4474(ce, value, url, alg, parts, now, policy));
  }

  /** The certificate checks of an RFC 4474 Identity (chain, key, From domain) and its signature. */
  private cert4474(
    cert: FetchedCert, value: string, url: string, alg: Rfc4474Alg, parts: DigestParts, now: number, policy: PeerIdentity,
  ): Checked {
    this.checkChain(cert, this.anchors4474, now, BAD_CERT_4474);
    if (cert.publicKey.asymmetricKeyType !== 'rsa') throw new Fail(BAD_CERT_4474, 'certificate key is not RSA');
    // The certificate must cover the From domain (RFC 4474 §6.2 step 2).
    const from = parts[0];
    const fromHost = hostOf(from);
    if (!fromHost || !covers(cert, fromHost)) throw new Fail(BAD_CERT_4474, `certificate does not cover From domain ${fromHost ?? '(none)'}`);
    const key = preparedKey(cert, alg === 'rsa-sha256' ? 'RS256' : 'RS1');
    // The quoted text goes to the check as it is (decoded in C). Only text that is not base64 in
    // canonical spelling, e.g. folded over lines, is decoded here and checked as bytes.
    const head = digestHead(parts);
    let replayText = quotedText(value);
    let ok = replayText === undefined ? undefined : key.verifyBase64(head, replayText, parts[6]);
    if (ok === undefined) {
      const sig = signatureOf(value);
      if (sig === undefined) throw new Fail(INVALID, 'Identity is not a base64 signature');
      ok = key.verify(head, sig.bytes, parts[6]);
      replayText = sig.canonical;
    }
    if (!ok) throw new Fail(INVALID, 'Identity signature does not verify');
    const origTn = canonicalTn(from);
    const passed: IdentityResult = {
      verdict: 'pass', reject: false, verstat: VERSTAT.pass, failures: [], standard: 'rfc4474', identity: value, certificateUrl: url,
    };
    if (origTn) passed.origTn = origTn;
    return {
      // Keyed on the canonical spelling of the bytes: base64 spells them several ways (padding,
      // unused bits, folding).
      passed, replayKey: `rfc4474:${replayText!}`, replayTtlMs: (policy.max_age_s * 2 + 1) * 1000,
      replayDetail: 'Identity signature seen before within its freshness window',
    };
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

// Hot-path helpers are plain functions and loops, not per-call closures: besides the
// allocation, the tsx loader (keepNames) defines a `name` on every named closure it creates.

/** Does the PASSporT orig match a P-Asserted-Identity or From URI? Tried in that order,
 *  stopping at the first match. */
function origMatches(req: IdentityRequest, origTn: string | undefined, origUri: string | undefined): boolean {
  const pai = headerValues(req, 'P-Asserted-Identity');
  if (pai.length) for (const v of splitIdentityValues(pai)) if (isOrig(addrSpec(v), origTn, origUri)) return true;
  for (const v of headerValues(req, 'From')) if (isOrig(addrSpec(v), origTn, origUri)) return true;
  return false;
}

function isOrig(u: string, origTn: string | undefined, origUri: string | undefined): boolean {
  return origTn ? canonicalTn(u) === origTn : stripParams(u) === stripParams(origUri!);
}

function destMatches(u: string, destTns: readonly string[], destUris: readonly string[]): boolean {
  const tn = canonicalTn(u);
  if (tn !== undefined && destTns.includes(tn)) return true;
  for (const d of destUris) if (stripParams(d) === stripParams(u)) return true;
  return false;
}

/** An RFC 4474 signature: its bytes, and their canonical base64 spelling (the replay key). */
interface Signature4474 { bytes: Buffer; canonical: string }

/** The text between the quotes of a quoted Identity value, else undefined. */
function quotedText(value: string): string | undefined {
  if (value.charCodeAt(0) !== 34 /* " */) return undefined;
  const end = value.indexOf('"', 1);
  return end > 1 ? value.slice(1, end) : undefined;
}

/** The signature of an RFC 4474 Identity value (quoted base64, possibly folded), or undefined
 *  when it is empty or not base64. */
function signatureOf(value: string): Signature4474 | undefined {
  const sig = parseIdentityValue(value).token;
  if (!sig || !BASE64.test(sig)) return undefined;
  const bytes = Buffer.from(sig, 'base64');
  return bytes.length ? { bytes, canonical: bytes.toString('base64') } : undefined;
}

// Identity-Info values by their text (a signer sends the same one on every call). Bounded.
const INFO_CACHE_MAX = 256;
const infoCache = new Map<string, { url: string; alg: string }>();

/** URL and alg of an RFC 4474 Identity-Info header (`<url>;alg=…`). */
function identityInfo(header: string): { url: string; alg: string } {
  let v = infoCache.get(header);
  if (!v) {
    const info = parseIdentityValue(header.trim().startsWith('<') ? `x;info=${header}` : header);
    v = { url: info.params.get('info') ?? info.token.replace(ANGLES, ''), alg: info.params.get('alg') ?? 'rsa-sha1' };
    if (header.length <= 1024) {
      if (infoCache.size >= INFO_CACHE_MAX) infoCache.delete(infoCache.keys().next().value!);
      infoCache.set(header, v);
    }
  }
  return v;
}

// Date.parse of the last Date header seen: calls within the same second carry the same text.
let lastDateText: string | undefined;
let lastDateMs = NaN;
function parseDate(text: string): number {
  if (text !== lastDateText) { lastDateMs = Date.parse(text); lastDateText = text; }
  return lastDateMs;
}

function stripParams(uri: string): string {
  const semi = uri.indexOf(';');
  return (semi < 0 ? uri : uri.slice(0, semi)).toLowerCase();
}

/** Host of a sip/sips URI (no port, IPv6 brackets removed). */
export function hostOf(uri: string): string | undefined {
  const colon = uri.indexOf(':');
  if (colon < 0) return undefined;
  const at = uri.lastIndexOf('@');
  const start = at > colon ? at + 1 : colon + 1;
  let end = start;
  // The host ends at a port, parameters, headers or the closing '>'.
  for (const n = uri.length; end < n; end++) {
    const c = uri.charCodeAt(end);
    if (c === 59 /* ; */ || c === 63 /* ? */ || c === 62 /* > */) break;
  }
  if (uri.charCodeAt(start) === 91 /* [ */) {
    const close = uri.indexOf(']', start);
    return close < 0 ? undefined : uri.slice(start + 1, close);
  }
  const pc = uri.indexOf(':', start);
  const host = uri.slice(start, pc >= 0 && pc < end ? pc : end);
  return host ? host.toLowerCase() : undefined;
}

/** The certificate's key prepared for `alg`, memoised on the fetched bundle (the caller has
 *  checked the key type). */
function preparedKey(cert: FetchedCert, alg: SigAlg): PreparedKey {
  let k = cert.memo.get(alg) as PreparedKey | undefined;
  if (!k) { k = prepareKey(cert.publicKey, alg); cert.memo.set(alg, k); }
  return k;
}

const COVERS = Symbol('covers');

/** certCovers, memoised per fetched bundle and host (hosts per certificate are few). */
function covers(cert: FetchedCert, host: string): boolean {
  let m = cert.memo.get(COVERS) as Map<string, boolean> | undefined;
  if (!m) { m = new Map(); cert.memo.set(COVERS, m); }
  let v = m.get(host);
  if (v === undefined) {
    v = certCovers(cert.leaf, host);
    if (m.size < 256) m.set(host, v);
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
