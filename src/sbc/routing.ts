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

/** Where each rule's called_prefix sends a lookup, built once per routes list (a policy is
 *  never changed in place; a reload brings new lists). A carrier's table can hold thousands of
 *  prefixes: a scan of 1,000 rules took ≈ 28 µs per call, and this looks up one key per prefix
 *  length the table has. */
interface RouteIndex {
  /** Rule indices by canonical prefix, ascending (file order). */
  byPrefix: Map<string, number[]>;
  /** The prefix lengths present, ascending. */
  lengths: number[];
  /** Rules without called_prefix, ascending. */
  unprefixed: number[];
}

const indexes = new WeakMap<readonly RouteRule[], RouteIndex>();

function indexFor(rules: readonly RouteRule[]): RouteIndex {
  let ix = indexes.get(rules);
  if (ix) return ix;
  ix = { byPrefix: new Map(), lengths: [], unprefixed: [] };
  rules.forEach((r, i) => {
    if (r.called_prefix === undefined) { ix!.unprefixed.push(i); return; }
    const key = routingNumber(r.called_prefix);
    const list = ix!.byPrefix.get(key);
    if (list) list.push(i); else ix!.byPrefix.set(key, [i]);
  });
  ix.lengths = [...new Set([...ix.byPrefix.keys()].map((k) => k.length))].sort((a, b) => a - b);
  indexes.set(rules, ix);
  return ix;
}

/** Build the index of a routes list now (at start or reload) instead of at its first call;
 *  returns how many prefixes it holds. */
export function prepareRoutes(rules: readonly RouteRule[]): number {
  return indexFor(rules).byPrefix.size;
}

/** Whether rule r matches apart from its prefix (already known to fit). */
function holds(r: RouteRule, origin: string, domain: string): boolean {
  if (r.from === 'peers') { if (origin === 'core') return false; }
  else if (r.from !== origin) return false;
  return r.domain === undefined || r.domain.toLowerCase() === domain;
}

/** The first matching rule (its enum and dnssec settings apply to the call) and its destinations. */
export function selectRoute<R extends RouteRule>(rules: readonly R[], input: RouteInput): { rule: R; destinations: string[] } | undefined {
  const called = routingNumber(input.called);
  const domain = input.domain.toLowerCase();
  const ix = indexFor(rules);
  // The lowest index among the candidates that holds: each list is in file order, so a list is
  // read only up to its first rule that holds or the best found so far.
  let best = -1;
  const consider = (list: readonly number[]): void => {
    for (const i of list) {
      if (best >= 0 && i >= best) return;
      if (holds(rules[i]!, input.origin, domain)) { best = i; return; }
    }
  };
  consider(ix.unprefixed);
  for (const len of ix.lengths) {
    if (len > called.length) break;
    const list = ix.byPrefix.get(len === called.length ? called : called.slice(0, len));
    if (list) consider(list);
  }
  if (best < 0) return undefined;
  const r = rules[best]!;
  const to = Array.isArray(r.to) ? r.to : [r.to];
  // A call never goes back to where it came from.
  return { rule: r, destinations: to.filter((d) => d !== input.origin) };
}
