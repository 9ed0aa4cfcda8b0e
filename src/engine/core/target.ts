// Target resolution for a request an app sends outside a dialog (wire spec §7.1 form (d)): the
// host of the next hop (Route URL or Request-URI) to an address the transaction layer can send
// to. Today an A lookup (RFC 3263 §4.2 without NAPTR/SRV); the RFC 3263 resolver plugs in here.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Protocol } from '../transport/types.js';

export interface ResolvedTarget {
  protocol: Protocol;
  address: string;
  port: number;
}

export type Resolution = { ok: true; target: ResolvedTarget } | { ok: false; error: string };

/**
 * Resolve the next hop `host` (brackets already removed from an IPv6 literal). `port` is the
 * URI's port, undefined when absent (then 5060, or 5061 for TLS); `protocol` the transport the
 * URI asks for. An IP literal is used as is and answered synchronously, so that a request
 * to an address leaves in the order the app sent it (no turn of the event loop).
 */
export function resolveTarget(host: string, port: number | undefined, protocol: Protocol): Resolution | Promise<Resolution> {
  const p = port ?? (protocol === 'tls' ? 5061 : 5060);
  if (isIP(host)) return { ok: true, target: { protocol, address: host, port: p } };
  return lookup(host, { family: 4 }).then(
    (r): Resolution => ({ ok: true, target: { protocol, address: r.address, port: p } }),
    (): Resolution => ({ ok: false, error: `unable to resolve ${host}` }),
  );
}
