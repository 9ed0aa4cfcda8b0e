// RFC 6404 §4.4/§4.10, RFC 5853: the far side of peergate learns nothing about the near
// side. The B2BUA already gives each leg its own Call-ID, tags, branches, Via, Contact and
// route set (the engine mints them); this module decides which *other* headers cross, by an
// allowlist per direction, and what identity headers (RFC 3325) may cross.
import { addrSpecOf, parseNameAddr, uriUser } from '../sip/grammar/index.js';

/** Headers that carry no addressing of the near side and that endpoints commonly need. */
export const DEFAULT_FORWARD_HEADERS: readonly string[] = [
  'Allow', 'Supported', 'Accept', 'Accept-Language', 'Content-Disposition', 'Content-Language',
  'Event', 'Allow-Events', 'Subject', 'Priority', 'Date', 'Session-Expires', 'Min-SE', 'Reason',
];

/** Never forwarded, whatever the policy says: they describe the near side's topology or are the engine's to set. */
const NEVER_FORWARD = new Set([
  'via', 'route', 'record-route', 'contact', 'call-id', 'from', 'to', 'cseq', 'max-forwards', 'content-length',
  'content-type', 'rseq', 'rack', 'path', 'service-route', 'x-peergate-tls-identity', 'x-peergate-admission', 'user-agent', 'server',
  'p-asserted-identity', 'p-preferred-identity', 'privacy', 'warning', 'organization', 'call-info',
  'p-charging-vector', 'p-visited-network-id', 'x-forwarded-for', 'record-route',
]);

export interface TopologyOptions {
  /** Extra headers the operator lets cross in this direction (added to the default set). */
  forward_headers?: string[];
  /** `remove` (default) or `replace` User-Agent / Server with `user_agent_value`. */
  user_agent?: 'remove' | 'replace';
  user_agent_value?: string;
}

export interface TrustOptions {
  /** RFC 3325: the sender is inside our trust domain, so its P-Asserted-Identity may be believed. */
  trustedSender: boolean;
  /** RFC 3325: the receiver is inside our trust domain, so it may be told the asserted identity. */
  trustedReceiver: boolean;
}

export type HeaderGetter = (name: string) => string | undefined;

/** Compiled once per policy and direction: header names lower-cased. */
export class HeaderAllowlist {
  private readonly names: string[];
  private readonly userAgent: 'remove' | 'replace';
  private readonly userAgentValue: string;

  constructor(opts: TopologyOptions = {}) {
    const all = [...DEFAULT_FORWARD_HEADERS, ...(opts.forward_headers ?? [])];
    const seen = new Set<string>();
    this.names = [];
    for (const n of all) {
      const lower = n.toLowerCase();
      // An operator can widen the allowlist, but never to the headers that reveal topology.
      if (NEVER_FORWARD.has(lower) && lower !== 'p-asserted-identity' && lower !== 'privacy') continue;
      if (seen.has(lower)) continue;
      seen.add(lower);
      this.names.push(n);
    }
    this.userAgent = opts.user_agent ?? 'remove';
    this.userAgentValue = opts.user_agent_value ?? 'peergate';
  }

  /** Headers to put on the request (or response) sent on the other leg. */
  requestHeaders(get: HeaderGetter, trust: TrustOptions, kind: 'request' | 'response' = 'request'): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of this.names) {
      const lower = n.toLowerCase();
      if (lower === 'p-asserted-identity' || lower === 'privacy') continue;
      const v = get(n);
      if (v !== undefined && v !== '') out[n] = v;
    }
    if (this.userAgent === 'replace') out[kind === 'request' ? 'User-Agent' : 'Server'] = this.userAgentValue;
    applyAssertedIdentity(get, trust, out, this.names.some((n) => n.toLowerCase() === 'privacy'));
    return out;
  }
}

/**
 * RFC 3325 §5: a P-Asserted-Identity is believed only from a trusted sender and told only to
 * a trusted receiver; `Privacy: id` withholds it from an untrusted receiver altogether.
 */
function applyAssertedIdentity(get: HeaderGetter, trust: TrustOptions, out: Record<string, string>, forwardPrivacy: boolean): void {
  const pai = get('P-Asserted-Identity');
  const privacy = get('Privacy');
  const privacyId = privacy !== undefined && /(^|[;,\s])id($|[;,\s])/i.test(privacy);
  if (pai && trust.trustedSender && trust.trustedReceiver) out['P-Asserted-Identity'] = pai;
  if (privacy && (trust.trustedReceiver || forwardPrivacy)) out['Privacy'] = privacy;
  // An untrusted receiver gets neither the identity nor a hint that one exists when privacy is asked for.
  if (privacyId && !trust.trustedReceiver) delete out['P-Asserted-Identity'];
}

/** The user part of a SIP/SIPS/TEL URI in a header value (name-addr or addr-spec) or a
 *  Request-URI, unescaped; '' if none. */
export function userPart(value: string | undefined): string {
  if (!value) return '';
  // A bare URI (Request-URI, addr-spec) parses whole; a name-addr gives its URI first.
  const u = uriUser(value) ?? uriUser(addrSpecOf(value));
  if (u === undefined) return '';
  try { return decodeURIComponent(u); } catch { return u; }
}

/** The display name of a name-addr, without quotes; '' if none. */
export function displayName(value: string | undefined): string {
  if (!value) return '';
  return parseNameAddr(value)?.displayName ?? '';
}

/** A user part safe to put back into a SIP URI (RFC 3261 §25.1 user unreserved set). */
export function escapeUser(user: string): string {
  return user.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) => encodeURIComponent(c));
}

/** A display name safe inside a quoted-string. */
export function quoteDisplayName(name: string): string {
  return `"${name.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')}"`;
}

/**
 * The From of the new leg: the caller's user part and display name, but our own host (the
 * engine puts its address where the app writes `localhost`), never the far side's.
 */
export function newFrom(originalFrom: string | undefined, scheme: 'sip' | 'sips' = 'sip'): string {
  const user = userPart(originalFrom);
  const name = displayName(originalFrom);
  const uri = user ? `${scheme}:${escapeUser(user)}@localhost` : `${scheme}:anonymous@localhost`;
  return name ? `${quoteDisplayName(name)} <${uri}>` : `<${uri}>`;
}

/** The From used when the caller's identity must not cross (RFC 3323 §4.1). */
export const ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>';

/**
 * Whether the new leg's From must be anonymous: always toward a side configured so, and toward
 * an untrusted receiver when the caller asked for `Privacy: user` (RFC 3323 §4.2). `id`
 * privacy is about P-Asserted-Identity (applyAssertedIdentity), not From.
 */
export function anonymizeFrom(privacyHeader: string | undefined, mode: 'honor' | 'always', trustedReceiver: boolean): boolean {
  if (mode === 'always') return true;
  if (trustedReceiver || !privacyHeader) return false;
  return /(^|[;,\s])user($|[;,\s])/i.test(privacyHeader);
}
