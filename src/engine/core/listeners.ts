// The engine's own addresses as the UA core writes them: which listener a message leaves from,
// our Via (RFC 3261 §18.1.1, RFC 3581 rport) and Contact (wire spec §7.4), and the transport a
// URI asks for (§18.1.1, §26.2: sips → TLS).
import { isIP } from 'node:net';
import type { Endpoint, Protocol } from '../transport/types.js';
import type { SipUri } from './fields.js';
import { flat } from '../../flat-string.js';

export interface Listener {
  protocol: Protocol;
  address: string;
  port: number;
  /** Host written into our Via and Contact instead of `address` (a public address behind NAT). */
  advertise?: string;
}

/** The transport a URI asks for: `transport=` parameter, else TLS for sips and UDP for sip. */
export function protocolOf(u: SipUri): Protocol {
  const t = u.params.get('transport')?.toLowerCase();
  if (t === 'tcp') return 'tcp';
  if (t === 'tls') return 'tls';
  if (t === 'udp') return 'udp';
  return u.scheme === 'sips' ? 'tls' : 'udp';
}

/** `protocol/address:port`, the listener's key in dialog bindings (one flat string). */
const keyOf = (l: Listener): string => flat(`${l.protocol}/${l.address}:${l.port}`);

export class Listeners {
  private list!: readonly Listener[];
  /** Each listener's key, made once: every dialog's binding keeps it (issue #18 item 5). */
  private keys!: ReadonlyMap<Listener, string>;

  constructor(list: readonly Listener[]) {
    this.replace(list);
  }

  /** The listeners once they are bound (an engine that opens them after its start). */
  replace(list: readonly Listener[]): void {
    this.list = list;
    this.keys = new Map(list.map((l) => [l, keyOf(l)]));
  }

  get first(): Listener | undefined { return this.list[0]; }

  /** The listener a packet arrived on, else the first one of that protocol. */
  forProtocol(protocol: Protocol, local?: Pick<Endpoint, 'address' | 'port'>): Listener | undefined {
    if (local) {
      for (const l of this.list) if (l.protocol === protocol && l.port === local.port && l.address === local.address) return l;
    }
    for (const l of this.list) if (l.protocol === protocol) return l;
    return undefined;
  }

  /** The listener an app named (`address:port`, the egress header), if it has that protocol. */
  byEgress(protocol: Protocol, egress: string): Listener | undefined {
    return this.list.find((l) => l.protocol === protocol && `${l.address}:${l.port}` === egress);
  }

  key(l: Listener): string { return this.keys.get(l) ?? keyOf(l); }

  byKey(k: string): Listener | undefined {
    for (const l of this.list) if (this.key(l) === k) return l;
    return undefined;
  }

  /** Whether address:port is one of ours (a request must not be sent to ourselves). */
  isOwn(address: string, port: number): boolean {
    return this.list.some((l) => l.address === address && l.port === port);
  }

  hostPort(l: Listener): string {
    const host = l.advertise ?? l.address;
    return isIP(host) === 6 ? `[${host}]:${l.port}` : `${host}:${l.port}`;
  }

  /** Our Contact for a listener (spec §7.4). */
  contact(l: Listener): string {
    if (l.protocol === 'tls') return `<sips:${this.hostPort(l)};transport=tls>`;
    if (l.protocol === 'tcp') return `<sip:${this.hostPort(l)};transport=tcp>`;
    return `<sip:${this.hostPort(l)}>`;
  }

  /** Our From when the app gives none (spec §7.4). */
  ownUri(l: Listener): string {
    const hp = this.hostPort(l);
    return l.protocol === 'udp' ? `<sip:${hp}>` : l.protocol === 'tcp' ? `<sip:${hp};transport=tcp>` : `<sips:${hp};transport=tls>`;
  }

  /** Our Via for a request leaving from `l` (§18.1.1; rport of RFC 3581 over UDP). */
  via(l: Listener, branch: string): string {
    const adv = l.advertise ?? l.address;
    const host = isIP(adv) === 6 ? `[${adv}]` : adv;
    if (l.protocol === 'udp') return `SIP/2.0/UDP ${host}${l.port === 5060 ? '' : `:${l.port}`};rport;branch=${branch}`;
    return `SIP/2.0/${l.protocol.toUpperCase()} ${host}:${l.port};branch=${branch}`;
  }
}
