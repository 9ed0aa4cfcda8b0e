// A set of address ranges (`a.b.c.d`, `a.b.c.d/n`, `v6`, `v6/n`) asked about one source address
// at a time: the shield's ACL, the peers' and the core's source ranges. IPv4 goes through
// Ipv4Ranges (bisection, no allocation); net.BlockList answers for IPv6 only, because its
// check() builds a SocketAddress on every call (≈ 2.7 µs here), which per peer per request
// grows with the number of peers a carrier has.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { Ipv4Ranges, parseIPv4 } from './ipv4.js';

const V4_MAPPED = '::ffff:';

/** `::ffff:192.0.2.1` (a v4 peer on a dual-stack socket) → `192.0.2.1`, so one rule covers both. */
export function normalizeAddress(address: string): string {
  if (address.length > 7 && address.charCodeAt(0) === 0x3a && address.startsWith(V4_MAPPED) && address.includes('.', 7)) {
    return address.slice(7);
  }
  return address;
}

/** Builds a BlockList from `a.b.c.d`, `a.b.c.d/n`, `v6`, `v6/n`; throws with the offending entry. */
export function buildBlockList(entries: readonly string[], what: string): BlockList {
  const list = new BlockList();
  for (const raw of entries) {
    const entry = String(raw).trim();
    const slash = entry.indexOf('/');
    const addr = slash < 0 ? entry : entry.slice(0, slash);
    const fam = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
    if (!fam) throw new Error(`${what}: "${entry}" is not an IP address or CIDR`);
    if (slash < 0) { list.addAddress(addr, fam); continue; }
    const bitsText = entry.slice(slash + 1);
    const bits = Number(bitsText);
    const max = fam === 'ipv4' ? 32 : 128;
    if (!/^\d{1,3}$/.test(bitsText) || bits > max) throw new Error(`${what}: "${entry}" has a bad prefix length`);
    list.addSubnet(addr, bits, fam);
  }
  return list;
}

export class AddressSet {
  private readonly v4: Ipv4Ranges;
  private readonly v6: BlockList | null;

  /** Throws, naming `what` and the entry, on anything that is not an address or CIDR. */
  constructor(entries: readonly string[], what: string) {
    const trimmed = entries.map((e) => String(e).trim());
    const list = buildBlockList(trimmed, what);
    this.v4 = new Ipv4Ranges(trimmed);
    this.v6 = trimmed.some((e) => e.includes(':')) ? list : null;
  }

  /** Whether `address` (an IP literal as a socket reports it; v4-mapped v6 counts as v4) is in the set. */
  has(address: string): boolean {
    const text = normalizeAddress(address); // no SourceAddress object: this runs per request
    return this.test(text, parseIPv4(text));
  }

  /** The same for an address read once (sourceAddress) to ask several sets. */
  contains(s: SourceAddress): boolean {
    return this.test(s.text, s.v4);
  }

  private test(text: string, v4: number): boolean {
    if (v4 >= 0) return this.v4.has(v4);
    return this.v6 !== null && isIPv6(text) && this.v6.check(text, 'ipv6');
  }
}

/** A source address read once: normalised (normalizeAddress), and its IPv4 value or -1. */
export interface SourceAddress { text: string; v4: number }

export function sourceAddress(address: string): SourceAddress {
  const text = normalizeAddress(address);
  return { text, v4: parseIPv4(text) };
}
