// Location routing (SPEERMINT LUF + LRF) for the B2BUA: the destinations a route names (and
// an ENUM answer, when the route asks) → the ordered list of concrete next hops the B-leg
// walks with its failover (RFC 3263 §4.3), DNS-named targets expanded through NAPTR/SRV/
// AAAA/A, hops probed down skipped.
//
// Contract (the one call the B2BUA makes per INVITE):
//   targets(policy, route, destinations, called) →
//     { ok: true, targets: [{side, uri, hop?, key}] }  hop absent: a numeric target the
//        engine sends to as before; hop present: send to hop.address:hop.port over
//        hop.transport, TLS checked against hop.serverName (RFC 5922)
//     { ok: false, refusal }  nothing could be located; the refusal reveals nothing internal
//        (the reason is logged and counted, never sent).
import { getServers } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Policy, Route, Peer } from '../policy/schema.js';
import type { Side, Refusal } from '../sbc/stages.js';
import { DnsClient } from './dns-client.js';
import { Locator, parseTargetUri, type NextHop, type LocateResult } from './rfc3263.js';
import { lookupEnum } from './enum.js';
import { TargetHealth, hopKey, type HealthSide, type ProbeSender, type ProbeTarget } from './health.js';
import type { Dnssec, DnsConfig } from './schema.js';
import { parseResolver } from './resolver-address.js';
import { TLS_PIN_HEADER, encodePin } from './tls-pin.js';
import { counter } from '../ops/metrics.js';
import { routingNumber } from '../sip/grammar/index.js';

export { hopKey } from './health.js';
export type { NextHop } from './rfc3263.js';

export interface RoutedTarget {
  side: Side;
  /** The policy's (or ENUM's) target URI: the B-leg Request-URI is built from it. */
  uri: string;
  /** Where to send; absent for a numeric target (sent as before, unchanged). */
  hop?: NextHop;
  /** hopKey(): health state and metric label. */
  key: string;
}

/** Targets that could not be located, by reason (not_found, dnssec, dns_error, bad_uri) and side. */
export const unresolvedTotal = counter('peergate_route_unresolved_total', 'Route targets that DNS could not turn into next hops', ['side', 'reason']);
/** Hops skipped because probing marked them down. */
export const skippedDownTotal = counter('peergate_route_skipped_down_total', 'Next hops skipped by calls because they are down', ['side']);

const UNAVAILABLE: Refusal = { status: 503, reason: 'Service Unavailable', label: 'unresolved' };
const NO_ROUTE: Refusal = { status: 404, reason: 'No Route To Destination', label: 'no_route' };

export class LocationRouting {
  readonly health: TargetHealth;
  private locator: Locator | undefined;
  private dnsKey = '';
  /** The policy's dns section the locator was last checked against: the same object (no reload
   *  since) needs no comparison; JSON.stringify of it ran on every INVITE. */
  private dnsChecked: Policy['dns'] | undefined = undefined;
  private housekeeping: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, send?: ProbeSender) {
    this.health = new TargetHealth(send ?? (() => Promise.resolve('timeout')), (key, up) => log.warn({ target: key, up }, up ? 'target up' : 'target down'));
  }

  /** The locator for this policy's dns section (kept, with its cache, while the section is unchanged). */
  locatorFor(policy: Policy): Locator {
    if (this.locator !== undefined && policy.dns === this.dnsChecked) return this.locator;
    this.dnsChecked = policy.dns;
    const key = JSON.stringify(policy.dns);
    if (!this.locator || key !== this.dnsKey) {
      this.locator = buildLocator(policy.dns);
      this.dnsKey = key;
    }
    return this.locator;
  }

  async targets(policy: Policy, route: Route | undefined, destinations: string[], called: string): Promise<{ ok: true; targets: RoutedTarget[] } | { ok: false; refusal: Refusal }> {
    const locator = this.locatorFor(policy);
    const wanted: Array<{ side: Side; uri: string }> = [];
    if (route?.enum) {
      const mode = route.dnssec ?? policy.dns.dnssec;
      const e = await lookupEnum(locator, routingNumber(called), route.enum, mode);
      if (!e.ok) {
        unresolvedTotal.inc({ side: 'enum', reason: e.reason });
        this.log.warn({ reason: e.reason, dnssec: mode }, 'ENUM lookup failed: call not routed');
        return { ok: false, refusal: UNAVAILABLE };
      }
      for (const t of e.targets) {
        const peer = policy.peers.find((p) => p.id === t.peer);
        if (peer && destinations.includes(peer.id)) wanted.push({ side: { kind: 'peer', peer }, uri: t.uri });
      }
      if (wanted.length === 0 && route.enum.otherwise === 'reject') return { ok: false, refusal: NO_ROUTE };
    }
    if (wanted.length === 0) {
      for (const d of destinations) {
        if (d === 'core') for (const uri of policy.core.targets) wanted.push({ side: { kind: 'core' }, uri });
        else {
          const peer = policy.peers.find((p) => p.id === d);
          for (const uri of peer?.targets ?? []) wanted.push({ side: { kind: 'peer', peer: peer! }, uri });
        }
      }
    }
    if (wanted.length === 0) return { ok: false, refusal: NO_ROUTE };

    const out: RoutedTarget[] = [];
    let unresolved = 0;
    const located = await Promise.all(wanted.map((w) => this.locate(policy, locator, w.side, w.uri, route)));
    for (let i = 0; i < wanted.length; i++) {
      const w = wanted[i]!;
      const r = located[i]!;
      const label = sideLabel(w.side);
      if (!r.ok) {
        unresolved++;
        unresolvedTotal.inc({ side: label, reason: r.reason });
        this.log.warn({ side: label, target: w.uri, reason: r.reason, detail: r.detail }, 'route target not located');
        continue;
      }
      const numeric = isIP(parseTargetUri(w.uri)?.host ?? '') !== 0;
      for (const hop of r.hops) {
        const key = hopKey(hop);
        if (!this.health.isUp(key)) { skippedDownTotal.inc({ side: label }); continue; }
        out.push(numeric ? { side: w.side, uri: w.uri, key } : { side: w.side, uri: w.uri, hop, key });
      }
    }
    if (out.length === 0) return { ok: false, refusal: unresolved > 0 ? UNAVAILABLE : { ...UNAVAILABLE, label: 'targets_down' } };
    return { ok: true, targets: out };
  }

  private locate(policy: Policy, locator: Locator, side: Side, uri: string, route: Route | undefined): Promise<LocateResult> {
    const host = parseTargetUri(uri)?.host;
    // RFC 6761 §6.3: localhost is the loopback, without asking DNS.
    if (host === 'localhost') return locator.locate(uri.replace(/localhost/i, '127.0.0.1'), { dnssec: 'off' });
    return locator.locate(uri, { dnssec: dnssecFor(policy, side, route), families: familiesOf(policy, side) });
  }

  /** The sides whose policy asks for probing, with their hops resolved now. */
  probeSides(policy: Policy): HealthSide[] {
    const locator = this.locatorFor(policy);
    const sides: HealthSide[] = [];
    const add = (side: Side, targets: string[], health: Policy['core']['health']) => {
      sides.push({
        side: sideLabel(side), health,
        hops: async () => {
          const out: ProbeTarget[] = [];
          let complete = true;
          for (const uri of targets) {
            const r = await this.locate(policy, locator, side, uri, undefined);
            // A partial answer (one SRV target's lookup timed out) is no reason to forget hops.
            if (!r.ok || r.partial) complete = false;
            if (!r.ok) continue;
            for (const hop of r.hops) out.push({ uri, hop, ...(side.kind === 'core' ? { side: 'core' as const } : { side: 'peer' as const, peer: side.peer }) });
          }
          return { targets: out, complete };
        },
      });
    };
    add({ kind: 'core' }, policy.core.targets, policy.core.health);
    for (const p of policy.peers) if (p.targets) add({ kind: 'peer', peer: p }, p.targets, p.health);
    return sides;
  }

  /** Probe per the current policy; follows policy reloads once a second. */
  startProbing(policy: () => Policy): void {
    const sync = () => this.health.sync(this.probeSides(policy()));
    sync();
    let last = policy();
    this.housekeeping = setInterval(() => { const p = policy(); if (p !== last) { last = p; sync(); } }, 1000);
    this.housekeeping.unref();
  }

  stop(): void {
    if (this.housekeeping) clearInterval(this.housekeeping);
    this.health.stop();
  }
}

function buildLocator(dns: DnsConfig): Locator {
  const list = dns.resolvers ?? getServers();
  const resolvers = list.map((s) => parseResolver(s)).filter((r): r is { address: string; port: number } => r !== undefined);
  const trustedList = dns.trusted_resolvers?.map((s) => parseResolver(s)).filter((r) => r !== undefined);
  const trusted = trustedList
    ? (r: { address: string; port: number }) => trustedList.some((t) => t!.address === r.address && t!.port === r.port)
    // Default: a loopback resolver (the channel to it cannot be tampered with off the host).
    : (r: { address: string }) => r.address === '::1' || r.address.startsWith('127.');
  return new Locator({
    client: new DnsClient({ resolvers, trusted, timeoutMs: dns.timeout_ms, attempts: dns.attempts }),
    cache: { maxEntries: dns.cache.max_entries, minTtlS: dns.cache.min_ttl_s, maxTtlS: dns.cache.max_ttl_s, negativeTtlS: dns.cache.negative_ttl_s },
  });
}

/** The route's dnssec, else the side's, else the policy default. */
export function dnssecFor(policy: Policy, side: Side, route: Route | undefined): Dnssec {
  const own = side.kind === 'core' ? policy.core.dnssec : (side.peer as Peer).dnssec;
  return route?.dnssec ?? own ?? policy.dns.dnssec;
}

/** Address families we can send from toward a side (its listeners'). */
function familiesOf(policy: Policy, side: Side): Set<4 | 6> {
  const want = side.kind === 'core' ? 'core' : 'peer';
  const fams = new Set<4 | 6>();
  for (const l of policy.listen) if (l.side === want) fams.add(isIP(l.address) === 6 ? 6 : 4);
  return fams;
}

function sideLabel(s: Side): string {
  return s.kind === 'core' ? 'core' : s.peer.id;
}

/** The URI the engine sends a B-leg to (drachtio `proxy`): the hop's address, port and transport. */
export function hopUri(h: NextHop): string {
  const host = h.address.includes(':') ? `[${h.address}]` : h.address;
  return `${h.transport === 'tls' ? 'sips' : 'sip'}:${host}:${h.port};transport=${h.transport}`;
}

/**
 * Tells the embedded engine the name a TLS next hop must prove (SNI and certificate check,
 * RFC 5922 §4) when the B-leg goes to an address found through DNS (docs/routing.md).
 */
export const TLS_SERVER_NAME_HEADER = 'X-Peergate-TLS-Server-Name';

/** App headers for the embedded engine about outbound TLS toward this target (consumed, never sent). */
export function engineTlsHeaders(t: { side: Side; hop?: NextHop }): Record<string, string> {
  const h: Record<string, string> = {};
  if (t.hop?.transport !== 'tls') return h;
  if (t.hop.serverName) h[TLS_SERVER_NAME_HEADER] = t.hop.serverName;
  if (t.side.kind === 'peer' && t.side.peer.tls_pin && t.side.peer.match.certificate) h[TLS_PIN_HEADER] = encodePin(t.side.peer.match.certificate);
  return h;
}
