// Where a call goes: the first route (in file order) whose conditions all hold names the
// destinations, tried in order (ordered failover).
import { routingNumber } from '../sip/grammar/index.js';

export interface RouteRule {
  /** `core`, `peers` (any peer), or one peer id. */
  from: string;
  called_prefix?: string;
  domain?: string;
  /** `core` or a peer id, or an ordered list of them. */
  to: string | string[];
}

export interface RouteInput {
  /** `core`, or the id of the peer the request came from. */
  origin: string;
  /** Called number or user: the Request-URI's user part. */
  called: string;
  /** The Request-URI's host. */
  domain: string;
}

export function selectDestinations(rules: readonly RouteRule[], input: RouteInput): string[] {
  return selectRoute(rules, input)?.destinations ?? [];
}

/** The first matching rule (its enum and dnssec settings apply to the call) and its destinations. */
export function selectRoute<R extends RouteRule>(rules: readonly R[], input: RouteInput): { rule: R; destinations: string[] } | undefined {
  const called = routingNumber(input.called);
  const domain = input.domain.toLowerCase();
  for (const r of rules) {
    if (r.from === 'peers') { if (input.origin === 'core') continue; }
    else if (r.from !== input.origin) continue;
    if (r.called_prefix !== undefined && !called.startsWith(routingNumber(r.called_prefix))) continue;
    if (r.domain !== undefined && r.domain.toLowerCase() !== domain) continue;
    const to = Array.isArray(r.to) ? r.to : [r.to];
    // A call never goes back to where it came from.
    return { rule: r, destinations: to.filter((d) => d !== input.origin) };
  }
  return undefined;
}
