// Where a server transaction's responses go (RFC 3261 §18.2.2 with RFC 3581 rport: the
// request's source, over its connection, from the listener it arrived on), one shared object
// per peer. A server transaction keeps its target through Timer J/L (32 s): ≈ 32,000 at 500
// calls/s, nearly all to a few peers, each a 64 B object plus the source address's own string
// (every datagram brings a fresh one). A peer's target is made once and shared; targets are
// never modified once made (a TU that wants another destination assigns a new one).
import type { InboundPacket, SendTarget } from '../transport/types.js';

/** More peers than this at once (a scan, a flood of sources): start over rather than grow. */
const MAX_PEERS = 4096;

export class ReplyTargets {
  private readonly byPeer = new Map<string, SendTarget>();

  /** The target for responses to a request that came in `pkt`. */
  of(pkt: InboundPacket): SendTarget {
    const s = pkt.source;
    const cid = pkt.connectionId;
    const key = cid === undefined ? s.address + ' ' + s.port : cid;
    const known = this.byPeer.get(key);
    if (known !== undefined && known.local === pkt.local && known.protocol === s.protocol && known.port === s.port && known.address === s.address && known.connectionId === cid) return known;
    if (this.byPeer.size >= MAX_PEERS) this.byPeer.clear();
    const t: SendTarget = { protocol: s.protocol, address: s.address, port: s.port, connectionId: cid, local: pkt.local };
    this.byPeer.set(key, t);
    return t;
  }
}
