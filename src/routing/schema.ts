// Policy fragments of location routing (docs/routing.md): where DNS questions go and how
// far their answers are trusted, ENUM per route, and target health probing. The policy
// schema (src/policy/schema.ts) spreads these shapes into its sections.
import { z } from 'zod';
import { parseResolver } from './resolver-address.js';

export { parseResolver } from './resolver-address.js';

/** `off`: any answer; `prefer`: validated when the resolver can, else plain; `required`: only AD-bit answers from a trusted resolver. */
export const DnssecSchema = z.enum(['off', 'prefer', 'required']);
export type Dnssec = z.infer<typeof DnssecSchema>;

/** `address` or `address:port` or `[v6]:port` of a recursive resolver. */
export const ResolverSchema = z.string().refine((s) => parseResolver(s) !== undefined, {
  error: (iss) => `not a resolver address: '${String(iss.input)}' (expected e.g. 127.0.0.1:53, ::1 or [::1]:5353)`,
});

export const DnsCacheSchema = z.strictObject({
  /** Entries kept (positive and negative); the least recently used goes first. */
  max_entries: z.number().int().min(16).max(1_000_000).default(10_000),
  /** TTLs are clamped into [min_ttl_s, max_ttl_s]: a 0 TTL still saves a burst of calls one lookup each. */
  min_ttl_s: z.number().int().min(0).max(3600).default(1),
  max_ttl_s: z.number().int().min(1).max(86_400).default(3600),
  /** How long "no such name / no such record" is remembered (RFC 2308; the SOA minimum caps it when lower). */
  negative_ttl_s: z.number().int().min(0).max(3600).default(30),
});

export const DnsSchema = z.strictObject({
  /** Recursive resolvers, asked in order. Omitted: the system's (never trusted for dnssec: required). */
  resolvers: z.array(ResolverSchema).min(1).optional(),
  /** Resolvers whose AD bit is believed; default: those on loopback (the channel to them cannot be tampered with). */
  trusted_resolvers: z.array(ResolverSchema).optional(),
  /** One query, one resolver: time before the next resolver (or the next attempt) is asked. */
  timeout_ms: z.number().int().min(50).max(10_000).default(1000),
  /** Rounds over the resolver list before a lookup fails. */
  attempts: z.number().int().min(1).max(5).default(2),
  /** Default for peers, core and routes that do not say. */
  dnssec: DnssecSchema.default('off'),
  cache: DnsCacheSchema.prefault({}),
}).refine((d) => d.cache.min_ttl_s <= d.cache.max_ttl_s, { error: 'dns.cache.min_ttl_s is above max_ttl_s' });
export type DnsConfig = z.infer<typeof DnsSchema>;

/** OPTIONS probing of one side's targets (RFC 3261 §11). */
export const HealthSchema = z.strictObject({
  /** Probe every target of this side; a target that is down is skipped by calls until it recovers. */
  probe: z.boolean().default(false),
  interval_ms: z.number().int().min(200).max(600_000).default(10_000),
  /** A probe with no final response within this long failed (any final response, even 4xx/5xx but 503, means alive). */
  timeout_ms: z.number().int().min(100).max(60_000).default(2000),
  /** Consecutive failures that mark an up target down. */
  failure_threshold: z.number().int().min(1).max(100).default(2),
  /** Consecutive successes that mark a down target up again. */
  success_threshold: z.number().int().min(1).max(100).default(2),
}).refine((h) => h.timeout_ms < h.interval_ms, { error: 'health.timeout_ms must be below interval_ms' });
export type Health = z.infer<typeof HealthSchema>;

/** Keys a peer and the core gain (spread into their sections). */
export const SideRoutingShape = {
  /** How far DNS answers for this side's targets are trusted; default dns.dnssec. */
  dnssec: DnssecSchema.optional(),
  health: HealthSchema.prefault({}),
};

/** Keys a peer gains. */
export const PeerRoutingShape = {
  ...SideRoutingShape,
  /**
   * Outbound TLS to this peer must present a certificate that also matches `match.certificate`
   * (the identity the peer has inbound), in addition to naming the target host (RFC 5922).
   */
  tls_pin: z.boolean().default(false),
};

// A domain an ENUM answer may name: `carrier-a.example` or `*.carrier-a.example` (any subdomain).
const DOMAIN_PATTERN = /^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const SUFFIX = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;

export const EnumSchema = z.strictObject({
  /** ENUM trees asked in order (RFC 6116 §3.4), e.g. e164.arpa or a private federation tree. */
  suffixes: z.array(z.string().regex(SUFFIX, 'an ENUM suffix is a domain name, e.g. e164.arpa')).min(1),
  /**
   * What an answer may route to, per peer of this route's `to`: the answer's host must match one
   * of the domains (`*.d` = any name under d). Anything else is not routed (an ENUM answer never
   * sends a call to a host the policy does not name).
   */
  allow: z.record(z.string().min(1), z.array(z.string().regex(DOMAIN_PATTERN, 'a domain, or *.domain for any name under it')).min(1)),
  /** No usable ENUM answer: `static` routes to `to` as if there were no enum; `reject` answers 404. */
  otherwise: z.enum(['static', 'reject']).default('static'),
});
export type EnumConfig = z.infer<typeof EnumSchema>;

/** Keys a route gains. */
export const RouteRoutingShape = {
  /** Overrides the dnssec of the peers and core this route sends to, and applies to its ENUM lookups. */
  dnssec: DnssecSchema.optional(),
  /** Look the called number up in ENUM (RFC 6116) before routing (the SPEERMINT LUF). */
  enum: EnumSchema.optional(),
};

/** The parts of a policy the cross-field routing rules read. */
interface RoutingView {
  routes: Array<{ to: string | string[]; enum?: EnumConfig | undefined }>;
  peers: Array<{ id: string; tls_pin: boolean; match: { certificate?: unknown } }>;
}

/** Cross-field rules of the routing keys; each issue's path names the offending key. */
export function checkRouting(p: RoutingView, issue: (path: (string | number)[], message: string) => void): void {
  p.routes.forEach((r, i) => {
    if (!r.enum) return;
    const to = typeof r.to === 'string' ? [r.to] : r.to;
    for (const id of Object.keys(r.enum.allow)) {
      if (!to.includes(id)) issue(['routes', i, 'enum', 'allow', id], `'${id}' is not in this route's to: an ENUM answer can only route to a peer the route names`);
      if (id === 'core') issue(['routes', i, 'enum', 'allow', id], 'ENUM answers route to peers, not to core');
    }
  });
  p.peers.forEach((peer, i) => {
    if (peer.tls_pin && !peer.match.certificate) issue(['peers', i, 'tls_pin'], 'tls_pin needs match.certificate (the identity to pin outbound TLS to)');
  });
}
