// The policy file's schema: the one source of truth for validation, defaults and the
// TypeScript types every other module reads. Unknown keys are errors everywhere
// (z.strictObject). Fragments owned by the limits, identity and media stages are imported,
// never copied. Cross-field rules (peer ids, route targets, TLS material) live in
// `checkPolicy` at the bottom so each error points at the key that is wrong.
import { isIP } from 'node:net';
import { z } from 'zod';
import { PeerLimitsSchema, GlobalLimitsSchema } from '../sbc/limits/schema.js';
import { PeerIdentitySchema, GlobalIdentitySchema } from '../sbc/identity/schema.js';
import { SideMediaSchema, GlobalMediaSchema } from '../sbc/media/schema.js';
import { DnsSchema, SideRoutingShape, PeerRoutingShape, RouteRoutingShape, checkRouting } from '../routing/schema.js';
import { CdrSchema } from '../sbc/cdr/schema.js';
import { CaptureSchema } from '../engine/capture/schema.js';
import { PeerSessionsSchema, GlobalSessionsSchema } from '../sbc/session/schema.js';
import { OverloadSchema } from '../engine/overload/schema.js';
import { FilePath } from './file-path.js';
import { isValidUri, parseUri } from '../sip/grammar/index.js';
import { LifecycleSchema, StaleCrlSchema, TlsRecheckSchema } from '../app/schema.js';
import { WorkersSchema } from '../app/workers/schema.js';
import { MemorySchema } from '../app/memory-schema.js';
import { WarmupSchema } from '../app/warmup/schema.js';

// ---------- scalar building blocks ----------

export const PortSchema = z.number({ error: 'must be a port number (1-65535)' }).int('must be an integer port')
  .min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535');

/** A literal IPv4/IPv6 address (no host names: listeners and ops bind to addresses). */
export const IpAddressSchema = z.string().refine((s) => isIP(s) !== 0, { error: (iss) => `not an IP address: '${String(iss.input)}'` });

/** Parsed form of a CIDR: `198.51.100.0/28`, `2001:db8::/32`, or a bare address (/32, /128). */
export interface Cidr { address: string; prefix: number; family: 'ipv4' | 'ipv6' }

/** Parse a CIDR string; returns undefined when it is not valid. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

export const CidrSchema = z.string().refine((s) => parseCidr(s) !== undefined, {
  error: (iss) => `not a valid CIDR or IP address: '${String(iss.input)}' (expected e.g. 198.51.100.0/28 or 2001:db8::/48)`,
});

// A sip:/sips: URI (RFC 3261 §19.1) as the grammar reads it, without `?headers` (a target is
// a Request-URI or a next hop) and with a port of 1–65535 when one is given.
export const SipUriSchema = z.string().refine((s) => /^sips?:/.test(s) && isValidUri(s, false) && parseUri(s)?.port !== 0, {
  error: (iss) => `not a SIP URI: '${String(iss.input)}' (expected e.g. sip:core-proxy.internal:5060;transport=udp)`,
});

// RFC 3261 token, as used for methods and header names.
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const METHOD = /^[A-Z][A-Z_-]*$/;
export const MethodSchema = z.string().regex(METHOD, 'a SIP method is an upper-case token, e.g. INVITE');
export const HeaderNameSchema = z.string().regex(TOKEN, 'not a SIP header name');

/** Host:port (Redis Sentinel and Cluster nodes). */
export const HostPortSchema = z.string().refine((s) => {
  const i = s.lastIndexOf(':');
  if (i <= 0) return false;
  const port = Number(s.slice(i + 1));
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}, { error: (iss) => `expected host:port, got '${String(iss.input)}'` });

const PEER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Names a route may use besides peer ids. */
export const RESERVED_ROUTE_NAMES = ['core', 'peers'] as const;

export const DEFAULT_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'PRACK', 'UPDATE', 'INFO'];

// ---------- sections ----------

export const ListenSchema = z.strictObject({
  /** Unique name, used in logs and metrics. */
  name: z.string().min(1),
  /** `peer`: faces peering SSPs; `core`: faces the own core network. */
  side: z.enum(['peer', 'core']),
  transport: z.enum(['udp', 'tcp', 'tls']),
  address: IpAddressSchema,
  port: PortSchema,
  /** Host or address written into Via/Contact/Record-Route instead of `address` (NAT). */
  advertise: z.string().min(1).optional(),
});

export const TlsSchema = z.strictObject({
  certificate: FilePath,
  key: FilePath,
  /** Intermediate certificates sent after `certificate`. */
  chain: FilePath.optional(),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are not configurable here). */
  ciphers: z.string().min(1).optional(),
  /** CAs that may sign peers' client certificates (the federation CAs). */
  client_cas: z.array(FilePath).default([]),
  crls: z.array(FilePath).default([]),
  /** Refuse TLS connections without a valid client certificate (mutual TLS, RFC 6404 §4.5). */
  require_client_cert: z.boolean().default(true),
  /** Passphrase of an encrypted `key`; or key_passphrase_file, or $PEERGATE_TLS_KEY_PASSPHRASE. */
  key_passphrase: z.string().min(1).optional(),
  key_passphrase_file: FilePath.optional(),
  stale_crl: StaleCrlSchema,
  recheck_s: TlsRecheckSchema,
});

export const EngineWireSchema = z.strictObject({
  address: z.string().min(1).default('127.0.0.1'),
  port: PortSchema.default(9022),
  /** Shared secret of the drachtio wire protocol; the embedded engine picks a random one when omitted. */
  secret: z.string().min(1).optional(),
  /** File whose first line is `secret` (or $PEERGATE_WIRE_SECRET; src/policy/secrets.ts). */
  secret_file: FilePath.optional(),
});

/**
 * RFC 3261 Table 4 base timers of the embedded engine's transactions. §17.1.1.1 lets T1 be
 * set lower on a network known to have a smaller round-trip time; the defaults are the RFC's.
 * Timers B, F, H, J, L and M are 64*T1, so T1 sets how long ended transactions linger.
 */
export const SipTimersSchema = z.strictObject({
  /** RTT estimate; retransmissions start at T1 and transactions give up after 64*T1. */
  t1_ms: z.number().int().min(50, 't1_ms must be at least 50 ms').max(60_000).default(500),
  /** Cap on the retransmission interval of non-INVITE requests and INVITE responses. */
  t2_ms: z.number().int().min(50).max(600_000).default(4_000),
  /** How long a message may stay in the network (Timers I and K). */
  t4_ms: z.number().int().min(50).max(600_000).default(5_000),
}).refine((t) => t.t2_ms >= t.t1_ms, { error: 't2_ms must be at least t1_ms', path: ['t2_ms'] });

export const EngineSchema = z.strictObject({
  /** true: peergate runs its own SIP engine; false: connect to an external drachtio-server at `wire`. */
  embedded: z.boolean().default(true),
  wire: EngineWireSchema.prefault({}),
  /** RFC 3261 §17.2.1: the 100 Trying to an INVITE goes out only if no other response has this
   *  long after it arrived (most calls' 180 comes sooner: one datagram less); 0: at once. */
  trying_delay_ms: z.number().int().min(0).max(200).default(200),
  sip_timers: SipTimersSchema.prefault({}),
});

export const TopologySchema = z.strictObject({
  /** Headers forwarded across, in addition to the built-in safe set (an allowlist, never a denylist). */
  forward_headers: z.array(HeaderNameSchema).default([]),
  /** What happens to User-Agent and Server headers leaving toward this side. */
  user_agent: z.enum(['remove', 'replace']).default('remove'),
  /** The value used when user_agent is `replace`. */
  user_agent_value: z.string().min(1).default('peergate'),
  /** RFC 3325: this side is inside the trust domain; its P-Asserted-Identity is kept and ours is sent to it. */
  trust_pai: z.boolean().default(false),
  /** RFC 3323: `honor` applies the Privacy header the caller asked for; `always` anonymises every call toward this side. */
  privacy: z.enum(['honor', 'always']).default('honor'),
});

export const CoreSchema = z.strictObject({
  /** Core targets in failover order (first answers unless 408/503/no answer). */
  targets: z.array(SipUriSchema).min(1, 'core needs at least one target'),
  /** Source addresses accepted on core-side listeners; omitted = any. */
  addresses: z.array(CidrSchema).optional(),
  media: SideMediaSchema.prefault({}),
  topology: TopologySchema.prefault({}),
  ...SideRoutingShape,
});

export const RedisSchema = z.strictObject({
  /** Standalone Redis: redis://[user:pass@]host:port/db or rediss://. */
  url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').optional(),
  sentinel: z.strictObject({
    sentinels: z.array(HostPortSchema).min(1),
    /** Name of the monitored master. */
    name: z.string().min(1),
    password: z.string().optional(),
    db: z.number().int().min(0).default(0),
  }).optional(),
  cluster: z.strictObject({
    nodes: z.array(HostPortSchema).min(1),
    password: z.string().optional(),
  }).optional(),
  /** When Redis is unreachable: fail_open admits calls on local state, fail_closed refuses them. */
  on_failure: z.enum(['fail_open', 'fail_closed']).default('fail_open'),
  /** Per-command timeout before `on_failure` applies. */
  timeout_ms: z.number().int().positive().default(250),
  /** Prefix of every key, so several pools can share one Redis. */
  key_prefix: z.string().default('peergate:'),
  /** The Redis password for any of url, sentinel, cluster; or password_file, or $PEERGATE_REDIS_PASSWORD. */
  password: z.string().min(1).optional(),
  password_file: FilePath.optional(),
}).refine((r) => [r.url, r.sentinel, r.cluster].filter((x) => x !== undefined).length === 1, {
  error: 'redis needs exactly one of url, sentinel or cluster',
});

export const StoreSchema = z.strictObject({
  /** Omit for the in-memory store (single node). */
  redis: RedisSchema.optional(),
});

export const OpsSchema = z.strictObject({
  address: IpAddressSchema.default('127.0.0.1'),
  port: PortSchema.default(9090),
  /** Bearer token for /admin/*; without a token (or token file) the admin API answers 401 to everything. */
  admin_token: z.string().min(16, 'admin_token must be at least 16 characters').optional(),
  admin_token_file: FilePath.optional(),
}).refine((o) => !(o.admin_token !== undefined && o.admin_token_file !== undefined), {
  error: 'give admin_token or admin_token_file, not both',
});

export const LogSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const CertificateMatchSchema = z.strictObject({
  /** DNS or URI subjectAltNames, matched exactly (case-insensitive for DNS). */
  subject_alt_names: z.array(z.string().min(1)).default([]),
  /** Subject distinguished names, e.g. "CN=sbc.carrier-a.example,O=Carrier A". */
  subjects: z.array(z.string().min(1)).default([]),
  /** SHA-256 fingerprints; written with or without colons, normalised to AB:CD:... (Node's fingerprint256). */
  fingerprints_sha256: z.array(z.string().transform((s, ctx) => {
    const hex = s.replace(/:/g, '').toUpperCase();
    if (!/^[0-9A-F]{64}$/.test(hex)) {
      ctx.addIssue({ code: 'custom', message: `not a SHA-256 fingerprint: '${s}' (64 hex digits, colons optional)` });
      return z.NEVER;
    }
    return hex.match(/../g)!.join(':');
  })).default([]),
}).refine((c) => c.subject_alt_names.length + c.subjects.length + c.fingerprints_sha256.length > 0, {
  error: 'certificate match needs at least one of subject_alt_names, subjects, fingerprints_sha256',
});

export const PeerMatchSchema = z.strictObject({
  /** Source CIDRs the peer sends from. */
  addresses: z.array(CidrSchema).min(1, 'addresses must list at least one CIDR').optional(),
  /** Verified TLS client certificate. Where both are given, both must agree. */
  certificate: CertificateMatchSchema.optional(),
}).refine((m) => m.addresses !== undefined || m.certificate !== undefined, {
  error: 'match needs addresses, certificate, or both',
});

export const PeerSchema = z.strictObject({
  id: z.string().regex(PEER_ID, 'peer id: letters, digits, dot, dash, underscore; starting with a letter or digit')
    .refine((s) => !(RESERVED_ROUTE_NAMES as readonly string[]).includes(s), { error: "'core' and 'peers' are reserved names" }),
  match: PeerMatchSchema,
  /** Where calls routed to this peer go, in failover order (its SBEs). Needed when a route names the peer. */
  targets: z.array(SipUriSchema).min(1, 'targets must list at least one SIP URI').optional(),
  /** Transport the peer must use; `any` accepts any listener transport. */
  transport: z.enum(['udp', 'tcp', 'tls', 'any']).default('any'),
  methods: z.array(MethodSchema).min(1).default(DEFAULT_METHODS),
  limits: PeerLimitsSchema.prefault({}),
  identity: PeerIdentitySchema.prefault({}),
  media: SideMediaSchema.prefault({}),
  topology: TopologySchema.prefault({}),
  ...PeerRoutingShape,
  sessions: PeerSessionsSchema.prefault({}),
});

const PREFIX = /^\+?[0-9*#]+$/;
export const RouteSchema = z.strictObject({
  /** `core`, `peers` (any peer) or a peer id. */
  from: z.string().min(1),
  /** Called number (Request-URI user part) prefix. Quote it: YAML reads +4420 as a number. */
  called_prefix: z.string({
    error: (iss) => (iss.input === undefined ? undefined : 'called_prefix must be a quoted string, e.g. "+4420" (unquoted digits are a YAML number)'),
  }).regex(PREFIX, 'called_prefix: digits, optionally starting with +').optional(),
  /** Request-URI host (exact, case-insensitive). */
  domain: z.string().min(1).optional(),
  /** `core` or a peer id, or a list of them in failover order. */
  to: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { error: 'to: core, a peer id, or a list of them (failover order)' }),
  ...RouteRoutingShape,
});

export const FailoverSchema = z.strictObject({
  /**
   * A target that sends no provisional and no final response for this long is CANCELed and
   * the next target tried. 100 Trying does not count (the engine absorbs it), so set this above
   * the time your slowest target takes to ring.
   */
  no_answer_ms: z.number().int().min(500).max(180_000).default(5000),
});

const RootSchema = z.strictObject({
  listen: z.array(ListenSchema).min(1, 'at least one listener is needed'),
  tls: TlsSchema.optional(),
  engine: EngineSchema.prefault({}),
  core: CoreSchema,
  store: StoreSchema.prefault({}),
  media: GlobalMediaSchema.prefault({}),
  identity: GlobalIdentitySchema.prefault({}),
  limits: GlobalLimitsSchema.prefault({}),
  ops: OpsSchema.prefault({}),
  log: LogSchema.prefault({}),
  lifecycle: LifecycleSchema.prefault({}),
  /** B2BUA worker processes: 1 (in this process), a number, or auto (one per core); src/app/workers. */
  workers: WorkersSchema,
  /** Requests from sources that match no peer: `drop` (no answer at all) or 403. */
  unknown_source: z.preprocess((v) => (v === 403 ? '403' : v), z.enum(['drop', '403'])).default('drop'),
  peers: z.array(PeerSchema).default([]),
  /** First matching route wins. */
  routes: z.array(RouteSchema).default([]),
  /** When to give up on a target and try the next one (also on 408 and 503). */
  failover: FailoverSchema.prefault({}),
  /** Resolvers, DNSSEC and the answer cache for DNS-named targets and ENUM (docs/routing.md). */
  dns: DnsSchema.prefault({}),
  /** Call records (docs/operations.md "Call records"). */
  cdr: CdrSchema.optional(),
  /** SIP capture to a HEPv3 collector (docs/operations.md "SIP capture"). */
  capture: CaptureSchema.prefault({}),
  /** Call lifetime: session timers, maximum duration, media inactivity, reconciliation. */
  sessions: GlobalSessionsSchema.prefault({}),
  /** Overload control: shedding of new INVITEs (docs/policy.md "overload"). */
  overload: OverloadSchema.prefault({}),
  /** Giving memory back once a burst of call set-ups is over (docs/policy.md "memory"). */
  memory: MemorySchema.prefault({}),
  /** Calls through the node's own processes before its listeners open (docs/policy.md "warmup"). */
  warmup: WarmupSchema.prefault({}),
});

type Root = z.infer<typeof RootSchema>;

/** Cross-field rules; each issue's path names the offending key. */
function checkPolicy(p: Root, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });

  const names = new Map<string, number>();
  const wildcard = (a: string) => a === '0.0.0.0' || a === '::';
  p.listen.forEach((l, i) => {
    const prev = names.get(l.name);
    if (prev !== undefined) issue(['listen', i, 'name'], `duplicate listener name '${l.name}' (also listen[${prev}])`);
    else names.set(l.name, i);
    // UDP and TCP may share a port; TCP and TLS may not; a wildcard address takes the port on every address.
    const proto = l.transport === 'udp' ? 'udp' : 'tcp';
    const clash = p.listen.findIndex((o, k) => k < i && o.port === l.port && (o.transport === 'udp' ? 'udp' : 'tcp') === proto
      && (o.address === l.address || ((wildcard(o.address) || wildcard(l.address)) && isIP(o.address) === isIP(l.address))));
    if (clash >= 0) issue(['listen', i, 'port'], `${proto} port ${l.port} on ${l.address} is already taken by listen[${clash}] (${p.listen[clash]!.address})`);
    if (l.transport === 'tls' && !p.tls) issue(['listen', i, 'transport'], 'a tls listener needs the top-level tls section (certificate, key)');
  });
  if (!p.listen.some((l) => l.side === 'peer')) issue(['listen'], 'no listener with side: peer');
  if (!p.listen.some((l) => l.side === 'core')) issue(['listen'], 'no listener with side: core');

  const peerTls = p.listen.some((l) => l.side === 'peer' && l.transport === 'tls');
  if (p.tls && p.tls.require_client_cert && peerTls && p.tls.client_cas.length === 0) {
    issue(['tls', 'client_cas'], 'require_client_cert is true but client_cas is empty: no client certificate could be verified');
  }

  // The wire secret of an external drachtio-server may come from a file or the environment:
  // its presence is checked after they are read (src/policy/secrets.ts).

  const ids = new Map<string, number>();
  p.peers.forEach((peer, i) => {
    const prev = ids.get(peer.id);
    if (prev !== undefined) issue(['peers', i, 'id'], `duplicate peer id '${peer.id}' (also peers[${prev}])`);
    else ids.set(peer.id, i);
    if (peer.transport !== 'any' && !p.listen.some((l) => l.side === 'peer' && l.transport === peer.transport)) {
      issue(['peers', i, 'transport'], `no peer-side ${peer.transport} listener for this peer to use`);
    }
    if (peer.match.certificate && !peerTls) {
      issue(['peers', i, 'match', 'certificate'], 'certificate match needs a peer-side tls listener');
    }
    if (peer.match.certificate && peer.transport !== 'tls' && peer.transport !== 'any') {
      issue(['peers', i, 'transport'], `a peer matched by certificate cannot use ${peer.transport}`);
    }
  });

  checkPeerOverlap(p, issue);
  checkRouting(p, issue);

  const shadows = shadowingRoutes(p.routes);
  p.routes.forEach((r, i) => {
    // First match wins, so a route that an earlier one fully covers can never be used.
    const shadow = shadows[i]!;
    if (shadow >= 0) issue(['routes', i], `unreachable: routes[${shadow}] already matches every call this route matches (first match wins)`);
    const targets = typeof r.to === 'string' ? [r.to] : r.to;
    const dup = targets.findIndex((t, j) => targets.indexOf(t) !== j);
    if (dup >= 0) issue(['routes', i, 'to', dup], `'${targets[dup]}' is listed twice`);
    if (r.from !== 'core' && r.from !== 'peers' && !ids.has(r.from)) {
      issue(['routes', i, 'from'], `unknown peer '${r.from}' (expected core, peers or a peer id)`);
    }
    (typeof r.to === 'string' ? [r.to] : r.to).forEach((t, j) => {
      const path = typeof r.to === 'string' ? ['routes', i, 'to'] : ['routes', i, 'to', j];
      if (t === 'peers') issue(path, "'peers' is not a route target: name a peer id or core");
      else if (t !== 'core' && !ids.has(t)) issue(path, `unknown peer '${t}' in route target`);
      else if (t === 'core' && r.from === 'core') issue(path, 'a route from core to core would loop');
      else if (t !== 'core' && !p.peers[ids.get(t)!]?.targets) issue(path, `peer '${t}' is a route target but has no targets (where to send its calls)`);
    });
  });
}

/**
 * Two peers whose address ranges overlap are ambiguous for a source in the overlap (the
 * request would be refused as unknown) unless both also require a certificate to tell them apart.
 * Ranges are sorted by start so large policies stay fast (CIDRs overlap only by nesting).
 */
function checkPeerOverlap(p: Root, issue: (path: (string | number)[], message: string) => void): void {
  type Range = { peer: number; index: number; text: string; family: string; start: bigint; end: bigint; cert: boolean };
  const ranges: Range[] = [];
  p.peers.forEach((peer, i) => {
    peer.match.addresses?.forEach((text, j) => {
      const c = parseCidr(text);
      if (!c) return;
      const bits = c.family === 'ipv4' ? 32n : 128n;
      const host = (1n << (bits - BigInt(c.prefix))) - 1n;
      const start = ipToBigInt(c.address, c.family) & ~host;
      ranges.push({ peer: i, index: j, text, family: c.family, start, end: start | host, cert: peer.match.certificate !== undefined });
    });
  });
  ranges.sort((a, b) => (a.family < b.family ? -1 : a.family > b.family ? 1 : a.start < b.start ? -1 : a.start > b.start ? 1 : Number(b.end - a.end)));
  const reported = new Set<Range>();
  for (let a = 0; a < ranges.length; a++) {
    const outer = ranges[a]!;
    for (let b = a + 1; b < ranges.length; b++) {
      const inner = ranges[b]!;
      if (inner.family !== outer.family || inner.start > outer.end) break;
      if (inner.peer === outer.peer || (inner.cert && outer.cert)) continue;
      // Report on the one written later in the file, once.
      const [first, second] = inner.peer > outer.peer || (inner.peer === outer.peer && inner.index > outer.index) ? [outer, inner] : [inner, outer];
      if (reported.has(second)) continue;
      reported.add(second);
      issue(['peers', second.peer, 'match', 'addresses', second.index], `${second.text} overlaps ${first.text} of peer '${p.peers[first.peer]!.id}': sources in both would be ambiguous (give both peers a certificate match, or split the ranges)`);
    }
  }
}

/** Numeric value of an IPv4/IPv6 address (already validated by isIP). */
function ipToBigInt(address: string, family: 'ipv4' | 'ipv6'): bigint {
  if (family === 'ipv4') return address.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  let a = address;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two hextets.
  const lastColon = a.lastIndexOf(':');
  if (a.indexOf('.', lastColon) >= 0) {
    const v4 = ipToBigInt(a.slice(lastColon + 1), 'ipv4');
    a = `${a.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * For each route, the first earlier route that matches every call it matches, or -1. Earlier
 * covers later when its `from` is the same (or `peers`, and later's is not `core`), its
 * `called_prefix` is absent or a prefix of later's, and its `domain` is absent or the same
 * (case-insensitive). One pass over an index of what came before, keyed by those three, so a
 * carrier's table of thousands of prefixes is checked in milliseconds, not in a pairwise scan.
 */
function shadowingRoutes(routes: readonly Root['routes'][number][]): number[] {
  const ANY = '*';
  const firstWith = new Map<string, number>();
  const key = (from: string, domain: string, prefix: string) => `${from}\n${domain}\n${prefix}`;
  return routes.map((r, i) => {
    const froms = r.from === 'core' || r.from === 'peers' ? [r.from] : [r.from, 'peers'];
    const domains = r.domain === undefined ? [ANY] : [ANY, `=${r.domain.toLowerCase()}`];
    const prefixes = [ANY];
    if (r.called_prefix !== undefined) for (let n = 0; n <= r.called_prefix.length; n++) prefixes.push(`=${r.called_prefix.slice(0, n)}`);
    let shadow = -1;
    for (const f of froms) for (const d of domains) for (const p of prefixes) {
      const k = firstWith.get(key(f, d, p));
      if (k !== undefined && (shadow < 0 || k < shadow)) shadow = k;
    }
    const own = key(r.from, r.domain === undefined ? ANY : `=${r.domain.toLowerCase()}`, r.called_prefix === undefined ? ANY : `=${r.called_prefix}`);
    if (!firstWith.has(own)) firstWith.set(own, i);
    return shadow;
  });
}

// Route targets leave the schema as a list, so consumers never handle the single-name form.
export const PolicySchema = RootSchema.superRefine(checkPolicy).transform((p) => ({
  ...p,
  routes: p.routes.map((r) => ({ ...r, to: typeof r.to === 'string' ? [r.to] : r.to })),
}));

export type Policy = z.infer<typeof PolicySchema>;
export type Listen = z.infer<typeof ListenSchema>;
export type Tls = z.infer<typeof TlsSchema>;
export type Engine = z.infer<typeof EngineSchema>;
export type Core = z.infer<typeof CoreSchema>;
export type Store = z.infer<typeof StoreSchema>;
export type RedisConfig = z.infer<typeof RedisSchema>;
export type Ops = z.infer<typeof OpsSchema>;
export type Topology = z.infer<typeof TopologySchema>;
export type Peer = z.infer<typeof PeerSchema>;
export type PeerMatch = z.infer<typeof PeerMatchSchema>;
/** A route with `to` always a list (failover order). */
export type Route = Policy['routes'][number];
export type { PeerLimits, GlobalLimits } from '../sbc/limits/schema.js';
export type { PeerIdentity, GlobalIdentity } from '../sbc/identity/schema.js';
export type { SideMedia, GlobalMedia } from '../sbc/media/schema.js';
export type { CdrPolicy } from '../sbc/cdr/schema.js';
export type { CapturePolicy, HepPolicy } from '../engine/capture/schema.js';
export type { GlobalSessions, PeerSessions } from '../sbc/session/schema.js';
