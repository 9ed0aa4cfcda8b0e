// RFC 3263 "Locating SIP Servers", client side: a SIP or SIPS URI → the ordered list of
// (transport, address, port) next hops to try, with the name a TLS peer must prove
// (RFC 5922 §4: the URI's host, never an address the DNS gave us).
//
//   §4.1 transport: URI transport param; else a numeric host or explicit port → UDP (sip) /
//        TLS (sips); else NAPTR (SIP+D2U, SIP+D2T, SIPS+D2T; sips: only SIPS+D2T); else SRV
//        for each transport (_sips._tcp for sips; _sip._udp, _sip._tcp, _sips._tcp for sip);
//        else UDP / TLS with the default port.
//   §4.2 port and address: SRV targets in RFC 2782 order, then AAAA and A of each.
//   §4.3 failover: the caller walks the list in order on transport error, timeout or 503.
//
// Contract: locate(uri, {dnssec, families}) never throws. With `dnssec: required` every DNS
// answer on the way (negative ones too: a stripped NAPTR must not downgrade the transport)
// must be authenticated by a trusted resolver, else the result is {ok: false, reason: 'dnssec'}.
// `prefer` asks for validation and takes what comes; `off` does not ask.
import { isIP } from 'node:net';
import type { Dnssec } from './schema.js';
import type { DnsClient, DnsResult, RecordType, RecordData, DnsErrorKind } from './dns-client.js';
import { isDnsName } from './dns-client.js';
import { TtlCache, type CacheLimits } from './cache.js';
import { orderNaptr, orderSrv } from './srv.js';

export type Transport = 'udp' | 'tcp' | 'tls';

export interface NextHop {
  transport: Transport;
  address: string;
  port: number;
  /** TLS: the name the server certificate must carry (RFC 5922 §4); absent for a numeric host. */
  serverName?: string;
}

export type LocateResult =
  /** partial: some lookup behind the answer failed (a timeout, SERVFAIL), so hops may be missing. */
  | { ok: true; hops: NextHop[]; authenticated: boolean; partial?: true }
  /** not_found: the name or its records do not exist; dnssec: an answer was not validated; dns_error: no usable answer. */
  | { ok: false; reason: 'not_found' | 'dnssec' | 'dns_error' | 'bad_uri'; detail: string };

export interface TargetUri { scheme: 'sip' | 'sips'; host: string; port?: number; transport?: Transport }

const URI = /^(sips?):(?:[^@\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?((?:;[^?\s]*)?)/i;

/** Parsed target URIs by their text: a route's targets were parsed three times per INVITE.
 *  Bounded (URIs from ENUM answers come and go): a full map starts over. */
const parsedUris = new Map<string, Readonly<TargetUri> | null>();
const MAX_PARSED_URIS = 512;

/** The parts of a SIP/SIPS URI that say where to send; undefined when it is not one. */
export function parseTargetUri(uri: string): Readonly<TargetUri> | undefined {
  const known = parsedUris.get(uri);
  if (known !== undefined) return known ?? undefined;
  const t = parseUncached(uri);
  if (parsedUris.size >= MAX_PARSED_URIS) parsedUris.clear();
  parsedUris.set(uri, t === undefined ? null : Object.freeze(t));
  return t;
}

function parseUncached(uri: string): TargetUri | undefined {
  const m = URI.exec(uri);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase() as 'sip' | 'sips';
  const host = m[2]!.replace(/^\[|\]$/g, '').toLowerCase();
  const out: TargetUri = { scheme, host };
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return undefined;
    out.port = port;
  }
  const t = /;transport=([a-z]+)/i.exec(m[4] ?? '')?.[1]?.toLowerCase();
  if (t === 'udp' || t === 'tcp' || t === 'tls') out.transport = scheme === 'sips' && t === 'tcp' ? 'tls' : t;
  else if (t !== undefined) return undefined;
  return out;
}

/** The one hop of a numeric target, the same (read-only) answer for every call to it. */
const numericHops = new WeakMap<Readonly<TargetUri>, LocateResult>();

function numericHop(t: Readonly<TargetUri>): LocateResult {
  let r = numericHops.get(t);
  if (r === undefined) {
    const transport = t.transport ?? (t.scheme === 'sips' ? 'tls' : 'udp');
    r = Object.freeze({ ok: true as const, hops: Object.freeze([Object.freeze({ transport, address: t.host, port: t.port ?? DEFAULT_PORT[transport] })]) as NextHop[], authenticated: false });
    numericHops.set(t, r);
  }
  return r;
}

const NAPTR_SERVICE: Record<string, Transport> = { 'SIP+D2U': 'udp', 'SIP+D2T': 'tcp', 'SIPS+D2T': 'tls' };
const SRV_PREFIX: Record<Transport, string> = { udp: '_sip._udp.', tcp: '_sip._tcp.', tls: '_sips._tcp.' };
const DEFAULT_PORT: Record<Transport, number> = { udp: 5060, tcp: 5060, tls: 5061 };
/** Bounds on what one lookup may fan out to. */
export const MAX_HOPS = 16;
const MAX_RECORDS_USED = 16;

type Cached = DnsResult<RecordType>;

export interface LocatorOptions {
  client: DnsClient;
  cache: CacheLimits;
  now?: () => number;
  random?: () => number;
}

export class Locator {
  private readonly cache: TtlCache<Cached>;
  private readonly inflight = new Map<string, Promise<Cached>>();
  private readonly random: () => number;

  constructor(private readonly opts: LocatorOptions) {
    this.cache = new TtlCache<Cached>(opts.cache, opts.now ?? Date.now);
    this.random = opts.random ?? Math.random;
  }

  /** `families`: address families we can send from (no AAAA hops without an IPv6 listener). */
  async locate(uri: string, o: { dnssec: Dnssec; families?: ReadonlySet<4 | 6> }): Promise<LocateResult> {
    const t = parseTargetUri(uri);
    if (!t) return { ok: false, reason: 'bad_uri', detail: 'not a SIP URI' };
    const families = o.families ?? new Set<4 | 6>([4, 6]);
    const fixedTransport = t.transport ?? (t.scheme === 'sips' ? 'tls' : undefined);
    // A numeric host: no DNS at all (static targets work as they always did).
    if (isIP(t.host) !== 0) return numericHop(t);
    if (!isDnsName(t.host)) return { ok: false, reason: 'bad_uri', detail: 'host is not a DNS name' };
    const walk = new Walk(this, o.dnssec);
    const serverName = t.host;
    // §4.2: an explicit port means A/AAAA only.
    if (t.port !== undefined) {
      const transport = fixedTransport ?? 'udp';
      const addrs = await walk.addresses(t.host, families);
      if (!addrs.ok) return walk.failure(addrs);
      return walk.done(addrs.list.map((address) => ({ transport, address, port: t.port!, serverName })));
    }
    // §4.1: the transports to try, with their SRV names.
    let services: Array<{ transport: Transport; srv: string }> = [];
    if (t.transport === undefined) {
      const naptr = await walk.query(t.host, 'NAPTR');
      if (!naptr.ok) return walk.failure(naptr);
      for (const n of orderNaptr(naptr.records).slice(0, MAX_RECORDS_USED)) {
        const transport = NAPTR_SERVICE[n.services.toUpperCase()];
        // Only "s" (SRV follows) records for transports this URI may use (RFC 3263 §4.1).
        if (!transport || n.flags.toLowerCase() !== 's' || !isDnsName(n.replacement)) continue;
        if (t.scheme === 'sips' && transport !== 'tls') continue;
        services.push({ transport, srv: n.replacement });
      }
    }
    if (services.length === 0) {
      const order: Transport[] = fixedTransport ? [fixedTransport] : ['udp', 'tcp', 'tls'];
      services = order.map((transport) => ({ transport, srv: SRV_PREFIX[transport] + t.host }));
    }
    const hops: NextHop[] = [];
    let anySrv = false;
    for (const s of services) {
      const srv = await walk.query(s.srv, 'SRV');
      if (!srv.ok) return walk.failure(srv);
      if (srv.records.length > 0) anySrv = true;
      for (const r of orderSrv(srv.records.slice(0, MAX_RECORDS_USED), this.random)) {
        const addrs = await walk.addresses(r.target, families);
        if (!addrs.ok) { if (addrs.why === 'dnssec') return walk.failure(addrs); walk.missed(addrs); continue; }
        for (const address of addrs.list) hops.push({ transport: s.transport, address, port: r.port, serverName });
        if (hops.length >= MAX_HOPS) break;
      }
      if (hops.length >= MAX_HOPS) break;
    }
    if (anySrv) return hops.length > 0 ? walk.done(hops.slice(0, MAX_HOPS)) : { ok: false, reason: 'not_found', detail: 'SRV targets have no addresses' };
    // No SRV: the host's own addresses, default port (§4.2).
    const transport = fixedTransport ?? 'udp';
    const addrs = await walk.addresses(t.host, families);
    if (!addrs.ok) return walk.failure(addrs);
    return walk.done(addrs.list.map((address) => ({ transport, address, port: DEFAULT_PORT[transport], serverName })));
  }

  /** One cached, coalesced question. */
  async cached<T extends RecordType>(name: string, type: T, dnssec: boolean): Promise<DnsResult<T>> {
    const key = `${type} ${name.toLowerCase()}${dnssec ? ' +do' : ''}`;
    const hit = this.cache.get(key);
    if (hit) return hit as DnsResult<T>;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.opts.client.query(name, type, { dnssec }).then((r) => {
        this.inflight.delete(key);
        // Failures are remembered briefly too (RFC 2308 §7), so a dead resolver does not cost every call a timeout.
        if (!r.ok) this.cache.set(key, r, 5, true);
        else this.cache.set(key, r, r.ttl, r.records.length === 0);
        return r;
      });
      this.inflight.set(key, p);
    }
    return p as Promise<DnsResult<T>>;
  }

  /** Forget every cached answer (policy reload with other resolvers). */
  flush(): void { this.cache.clear(); }
}

type Fail = { ok: false; why: 'not_found' | 'dnssec' | 'dns_error'; detail: string };

/** One locate() run: applies the DNSSEC rule to every answer it reads. */
class Walk {
  private authenticated = true;
  private partial = false;
  constructor(private readonly locator: Locator, private readonly mode: Dnssec) {}

  async query<T extends RecordType>(name: string, type: T): Promise<{ ok: true; records: RecordData<T>[] } | Fail> {
    const r = await this.locator.cached(name, type, this.mode !== 'off');
    if (!r.ok) return { ok: false, why: 'dns_error', detail: `${type} ${name}: ${r.error satisfies DnsErrorKind}` };
    if (!r.authenticated) {
      this.authenticated = false;
      if (this.mode === 'required') return { ok: false, why: 'dnssec', detail: `${type} ${name}: answer not authenticated` };
    }
    if (r.rcode === 'NXDOMAIN') return { ok: true, records: [] };
    return { ok: true, records: r.records };
  }

  /** AAAA then A of `host`, only for families we can send from. */
  async addresses(host: string, families: ReadonlySet<4 | 6>): Promise<{ ok: true; list: string[] } | Fail> {
    const list: string[] = [];
    let failed: Fail | undefined;
    for (const [type, fam] of [['AAAA', 6], ['A', 4]] as const) {
      if (!families.has(fam)) continue;
      const r = await this.query(host, type);
      // A validation failure condemns the name; a lookup error of one family does not stop the other.
      if (!r.ok) { if (r.why === 'dnssec') return r; failed = r; this.missed(r); continue; }
      for (const a of r.records) if (isIP(a) === fam) list.push(a);
    }
    if (list.length === 0) return failed ?? { ok: false, why: 'not_found', detail: `${host}: no address` };
    return { ok: true, list: list.slice(0, MAX_HOPS) };
  }

  failure(f: Fail): LocateResult {
    return { ok: false, reason: f.why, detail: f.detail };
  }

  /** A lookup failed but the walk goes on without it: the answer may lack hops. */
  missed(f: Fail): void {
    if (f.why !== 'not_found') this.partial = true;
  }

  done(hops: NextHop[]): LocateResult {
    return this.partial ? { ok: true, hops, authenticated: this.authenticated, partial: true } : { ok: true, hops, authenticated: this.authenticated };
  }
}
