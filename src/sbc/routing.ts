// Where a call goes: the first route (in file order) whose conditions all hold names the
// destinations, tried in order (ordered failover).

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

/** RFC 3966 visual separators carry no meaning: `+44 (20) 7946-0000` routes as `+442079460000`. */
export function canonicalNumber(user: string): string {
  let out = '';
  for (const ch of user) {
    if (ch === '-' || ch === '.' || ch === '(' || ch === ')' || ch === ' ') continue;
    out += ch;
  }
  return out;
}

export function selectDestinations(rules: readonly RouteRule[], input: RouteInput): string[] {
  return selectRoute(rules, input)?.destinations ?? [];
}

/** The first matching rule (its enum and dnssec settings apply to the call) and its destinations. */
export function selectRoute<R extends RouteRule>(rules: readonly R[], input: RouteInput): { rule: R; destinations: string[] } | undefined {
  const called = canonicalNumber(input.called);
  const domain = input.domain.toLowerCase();
  for (const r of rules) {
    if (r.from === 'peers') { if (input.origin === 'core') continue; }
    else if (r.from !== input.origin) continue;
    if (r.called_prefix !== undefined && !called.startsWith(canonicalNumber(r.called_prefix))) continue;
    if (r.domain !== undefined && r.domain.toLowerCase() !== domain) continue;
    const to = Array.isArray(r.to) ? r.to : [r.to];
    // A call never goes back to where it came from.
    return { rule: r, destinations: to.filter((d) => d !== input.origin) };
  }
  return undefined;
}

/** The host of a SIP Request-URI (without port or brackets). */
export function uriHost(uri: string): string {
  const at = uri.indexOf('@');
  const colon = uri.indexOf(':');
  let start = at >= 0 ? at + 1 : colon + 1;
  let end = uri.length;
  if (uri[start] === '[') return uri.slice(start + 1, uri.indexOf(']', start));
  for (let i = start; i < uri.length; i++) {
    const c = uri[i];
    if (c === ':' || c === ';' || c === '?' || c === '>') { end = i; break; }
  }
  if (start < 0) start = 0;
  return uri.slice(start, end);
}
