// Safe certificate fetching for Identity-Info (RFC 4474) and x5u/info (RFC 8224).
// The URL comes from an untrusted peer, so: https only (http only when policy allows it),
// a host allowlist, a size cap, a deadline, no redirects, a per-host limit on concurrent
// fetches (a slow host delays only the calls that need it), one fetch per URL at a time
// (single-flight), and a cache bounded by the policy's maximum age.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { IdentityFetch } from './schema.js';
import { countCacheHit, certCacheTotal, certFetchesTotal, certFetchSeconds } from './metrics.js';
import { extensionValue } from '../../pki/der.js';
import { parseTnAuthList, TN_AUTH_LIST_OID, type TnAuthEntry } from '../../pki/tnauthlist.js';

export type FetchErrorKind = 'forbidden' | 'timeout' | 'too_large' | 'http_error' | 'bad_certificate' | 'network';

export class CertFetchError extends Error {
  constructor(readonly kind: FetchErrorKind, message: string) { super(message); }
}

/** A fetched certificate bundle: leaf first, then any intermediates the server sent. */
export interface FetchedCert {
  url: string;
  chain: X509Certificate[];
  leaf: X509Certificate;
  /** Cached public key object (node:crypto KeyObject), so verification does not rebuild it. */
  publicKey: KeyObject;
  /** TNAuthList of the leaf; undefined when absent, null when present but malformed. */
  tnAuthList: TnAuthEntry[] | null | undefined;
  /** Validation results per trust-anchor set, memoised by the verifier. */
  memo: Map<unknown, unknown>;
}

interface CacheEntry {
  value?: FetchedCert; error?: CertFetchError; expires: number; host: string; http: boolean;
  /** hostAllowed(host, allowedFor) (a peer's allow list is one array for the policy's life). */
  allowedFor?: readonly string[]; allowed?: boolean;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;
const MAX_AGE = /(?:^|,)\s*(no-store|no-cache|s-maxage|max-age)\s*(?:=\s*"?(\d+)"?)?/gi;
const MAX_CACHE_ENTRIES = 2000;
const MAX_CHAIN = 8;
const BRACKETS = /^\[|\]$/g;

/** Does `host` match the allowlist (exact, or `*.domain` for subdomains)? */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = bare(host);
  for (const a of allow) {
    const p = bare(a);
    if (p.startsWith('*.')) { if (h.endsWith(p.slice(1)) && h.length > p.length - 1) return true; } else if (h === p) return true;
  }
  return false;
}

/** Lower-cased, without IPv6 brackets (the regex only runs when a bracket is there). */
function bare(host: string): string {
  const h = host.toLowerCase();
  return h.startsWith('[') || h.endsWith(']') ? h.replace(BRACKETS, '') : h;
}

/** Lifetime in seconds from Cache-Control: min(max-age, cap); no-store/no-cache → 0; absent → cap. */
export function cacheLifetime(cacheControl: string | undefined, capS: number): number {
  if (!cacheControl) return capS;
  let age: number | undefined;
  MAX_AGE.lastIndex = 0;
  for (let m = MAX_AGE.exec(cacheControl); m; m = MAX_AGE.exec(cacheControl)) {
    const d = m[1]!.toLowerCase();
    if (d === 'no-store' || d === 'no-cache') return 0;
    if (m[2] !== undefined && (d === 'max-age' || age === undefined)) age = Number(m[2]);
  }
  return Math.min(age ?? capS, capS);
}

/** Parse a PEM bundle (or one DER certificate) into X509Certificates. */
export function parseCertificates(body: Buffer): X509Certificate[] {
  const text = body.toString('latin1');
  const out: X509Certificate[] = [];
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    PEM_BLOCK.lastIndex = 0;
    for (let m = PEM_BLOCK.exec(text); m && out.length < MAX_CHAIN; m = PEM_BLOCK.exec(text)) {
      out.push(new X509Certificate(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
    }
  } else if (body.length > 0 && body[0] === 0x30) {
    out.push(new X509Certificate(body));
  }
  if (out.length === 0) throw new Error('no certificate in response');
  return out;
}

export function toFetched(url: string, chain: X509Certificate[]): FetchedCert {
  const leaf = chain[0]!;
  let tnAuthList: TnAuthEntry[] | null | undefined;
  try {
    const ext = extensionValue(leaf.raw, TN_AUTH_LIST_OID);
    tnAuthList = ext ? parseTnAuthList(ext.value) : undefined;
  } catch {
    tnAuthList = null;
  }
  return { url, chain, leaf, publicKey: leaf.publicKey, tnAuthList, memo: new Map() };
}

/** Waiters for one host's fetch slots. */
class HostGate {
  active = 0;
  queue: Array<() => void> = [];
}

export interface CertFetcherOptions extends Partial<IdentityFetch> {
  /** PEM text of extra CAs for the HTTPS connection (tls_ca files already read). */
  caPem?: string[];
  now?: () => number;
}

export class CertFetcher {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<FetchedCert>>();
  private readonly gates = new Map<string, HostGate>();
  private readonly opts: Required<Omit<CertFetcherOptions, 'caPem' | 'tls_ca'>>;
  private readonly ca: string[] | undefined;

  constructor(o: CertFetcherOptions = {}) {
    this.opts = {
      allow_hosts: o.allow_hosts ?? [], allow_http: o.allow_http ?? false, timeout_ms: o.timeout_ms ?? 1000,
      max_bytes: o.max_bytes ?? 16_384, max_concurrent: o.max_concurrent ?? 4, cache_max_age_s: o.cache_max_age_s ?? 3600,
      negative_cache_s: o.negative_cache_s ?? 5, now: o.now ?? Date.now,
    };
    const extra = [...(o.caPem ?? []), ...(o.tls_ca ?? []).map((f) => readFileSync(f, 'utf8'))];
    this.ca = extra.length ? [...rootCertificates, ...extra] : undefined;
  }

  /** The cached bundle for `url` if fresh (no network); used by hot paths and benchmarks. */
  peek(url: string): FetchedCert | undefined {
    const e = this.cache.get(url);
    return e && e.value && e.expires > this.opts.now() ? e.value : undefined;
  }

  /** The cached bundle for `url` when fresh and allowed for this caller, synchronously (the
   *  verifier's hot path: no promise for a cache hit); undefined sends the caller to get(). The
   *  allowlist is applied per call because peers may have different allow_hosts. */
  cached(url: string, allowHosts: readonly string[] = this.opts.allow_hosts): FetchedCert | undefined {
    const e = this.cache.get(url);
    if (e && e.value && e.expires > this.opts.now() && (!e.http || this.opts.allow_http)) {
      if (e.allowedFor !== allowHosts) { e.allowed = hostAllowed(e.host, allowHosts); e.allowedFor = allowHosts; }
      if (!e.allowed) return undefined;
      countCacheHit();
      return e.value;
    }
    return undefined;
  }

  /** Fetch (or return cached) the certificate bundle at `url`. Rejects with CertFetchError. */
  get(url: string, allowHosts: readonly string[] = this.opts.allow_hosts): Promise<FetchedCert> {
    // Hot path: a cached URL skips URL parsing.
    const cached = this.cached(url, allowHosts);
    if (cached) return Promise.resolve(cached);
    let u: URL;
    try { u = new URL(url); } catch { return Promise.reject(new CertFetchError('forbidden', `bad certificate URL '${url.slice(0, 200)}'`)); }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && this.opts.allow_http)) {
      certFetchesTotal.inc({ result: 'forbidden' });
      return Promise.reject(new CertFetchError('forbidden', `certificate URL scheme ${u.protocol} not allowed`));
    }
    if (u.username || u.password || !hostAllowed(u.hostname, allowHosts)) {
      certFetchesTotal.inc({ result: 'forbidden' });
      return Promise.reject(new CertFetchError('forbidden', `certificate host '${u.hostname}' not in allow_hosts`));
    }
    const now = this.opts.now();
    const hit = this.cache.get(url);
    if (hit && hit.expires > now) {
      if (hit.value) { certCacheTotal.inc({ result: 'hit' }); return Promise.resolve(hit.value); }
      certCacheTotal.inc({ result: 'negative_hit' });
      return Promise.reject(hit.error!);
    }
    certCacheTotal.inc({ result: 'miss' });
    const running = this.inflight.get(url);
    if (running) return running;
    const p = this.fetchGated(u, url).finally(() => this.inflight.delete(url));
    this.inflight.set(url, p);
    return p;
  }

  /** `key` is the URL exactly as the peer wrote it: the cache and single-flight key. */
  private async fetchGated(u: URL, key: string): Promise<FetchedCert> {
    const deadline = this.opts.now() + this.opts.timeout_ms;
    const gateKey = `${u.protocol}//${u.host}`;
    let gate = this.gates.get(gateKey);
    if (!gate) { gate = new HostGate(); this.gates.set(gateKey, gate); }
    const started = performance.now();
    try {
      await this.acquire(gate, deadline);
      try {
        const { body, cacheControl } = await this.download(u, deadline);
        let chain: X509Certificate[];
        try { chain = parseCertificates(body); } catch (e) {
          throw new CertFetchError('bad_certificate', `unparseable certificate at ${u.href}: ${(e as Error).message}`);
        }
        const value = toFetched(u.href, chain);
        const life = cacheLifetime(cacheControl, this.opts.cache_max_age_s);
        this.store(key, { value, expires: this.opts.now() + life * 1000, host: u.hostname, http: u.protocol === 'http:' });
        certFetchesTotal.inc({ result: 'ok' });
        return value;
      } finally {
        this.release(gate, gateKey);
      }
    } catch (e) {
      const err = e instanceof CertFetchError ? e : new CertFetchError('network', (e as Error).message);
      certFetchesTotal.inc({ result: err.kind });
      if (this.opts.negative_cache_s > 0) this.store(key, { error: err, expires: this.opts.now() + this.opts.negative_cache_s * 1000, host: u.hostname, http: u.protocol === 'http:' });
      throw err;
    } finally {
      certFetchSeconds.observe((performance.now() - started) / 1000);
    }
  }

  private store(url: string, e: CacheEntry): void {
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.delete(url);
    this.cache.set(url, e);
  }

  private acquire(gate: HostGate, deadline: number): Promise<void> {
    if (gate.active < this.opts.max_concurrent) { gate.active++; return Promise.resolve(); }
    return new Promise<void>((resolve, reject) => {
      const waiter = () => { clearTimeout(t); gate.active++; resolve(); };
      const t = setTimeout(() => {
        const i = gate.queue.indexOf(waiter);
        if (i >= 0) gate.queue.splice(i, 1);
        reject(new CertFetchError('timeout', 'timed out waiting for a fetch slot to the certificate host'));
      }, Math.max(0, deadline - this.opts.now()));
      gate.queue.push(waiter);
    });
  }

  private release(gate: HostGate, key: string): void {
    gate.active--;
    const next = gate.queue.shift();
    if (next) next();
    else if (gate.active === 0) this.gates.delete(key);
  }

  private download(u: URL, deadline: number): Promise<{ body: Buffer; cacheControl: string | undefined }> {
    const max = this.opts.max_bytes;
    return new Promise((resolve, reject) => {
      const remaining = deadline - this.opts.now();
      if (remaining <= 0) { reject(new CertFetchError('timeout', 'certificate fetch deadline passed')); return; }
      let settled = false;
      const fail = (err: CertFetchError) => { if (!settled) { settled = true; clearTimeout(timer); req.destroy(); reject(err); } };
      const onResponse = (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) { res.resume(); fail(new CertFetchError('http_error', `certificate server answered ${status}`)); return; }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > max) { fail(new CertFetchError('too_large', `certificate response of ${declared} bytes exceeds ${max}`)); return; }
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > max) { fail(new CertFetchError('too_large', `certificate response exceeds ${max} bytes`)); return; }
          parts.push(d);
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const cc = res.headers['cache-control'];
          resolve({ body: Buffer.concat(parts), cacheControl: Array.isArray(cc) ? cc.join(',') : cc });
        });
        res.on('error', (e) => fail(new CertFetchError('network', e.message)));
      };
      const options = { method: 'GET', agent: false as const, headers: { accept: 'application/pem-certificate-chain, application/pkix-cert' } };
      const req = u.protocol === 'https:'
        ? httpsRequest(u, { ...options, ...(this.ca ? { ca: this.ca } : {}) }, onResponse)
        : httpRequest(u, options, onResponse);
      const timer = setTimeout(() => fail(new CertFetchError('timeout', `certificate fetch from ${u.host} timed out`)), remaining);
      req.on('error', (e) => fail(new CertFetchError('network', e.message)));
      req.end();
    });
  }
}
