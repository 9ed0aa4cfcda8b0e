// Where a transaction's messages go, one shared SendTarget per peer. A transaction keeps its
// target through its whole window (Timer J/L/M: 32 s; ≈ 50,000 waiting at 500 calls/s), nearly
// all to a few peers, and each target was an object of ≈ 64 B with a string of its own for the
// address (every datagram brings a fresh one, every route a parsed one). A peer's target is
// made once and shared. Shared targets are never modified: a TU that wants another destination
// assigns a new one (RFC 3261 §18.2.2), and a target with TLS checks of its own (serverName,
// pin) is never shared.
import type { SendTarget } from '../transport/types.js';
import type { InboundMeta } from './types.js';

/** More peers than this at once (a scan, a flood of sources): start over rather than grow. */
const MAX_PEERS = 4096;

export class SharedTargets {
  private readonly byPeer = new Map<string, SendTarget>();

  /** Peers known now. */
  get size(): number {
    return this.byPeer.size;
  }

  /** Responses to a request that came in `pkt` (RFC 3581 rport: its source, over its
   *  connection, from the listener it arrived on). */
  reply(pkt: InboundMeta): SendTarget {
    const s = pkt.source;
    const cid = pkt.connectionId;
    const key = cid === undefined ? s.protocol + ' ' + s.address + ' ' + s.port : cid;
    const known = this.byPeer.get(key);
    if (known !== undefined && same(known, s.protocol, s.address, s.port, cid, pkt.local)) return known;
    return this.keep(key, { protocol: s.protocol, address: s.address, port: s.port, connectionId: cid, local: pkt.local });
  }

  /** A request's target, or an equal one made before. */
  share(t: SendTarget): SendTarget {
    if (t.serverName !== undefined || t.pin !== undefined) return t;
    const cid = t.connectionId;
    const key = cid === undefined ? t.protocol + ' ' + t.address + ' ' + t.port : cid;
    const known = this.byPeer.get(key);
    if (known !== undefined && same(known, t.protocol, t.address, t.port, cid, t.local)) return known;
    return this.keep(key, t);
  }

  private keep(key: string, t: SendTarget): SendTarget {
    if (this.byPeer.size >= MAX_PEERS) this.byPeer.clear();
    this.byPeer.set(key, t);
    return t;
  }
}

function same(t: SendTarget, protocol: string, address: string, port: number, cid: string | undefined, local: SendTarget['local']): boolean {
  return t.local === local && t.protocol === protocol && t.port === port && t.address === address && t.connectionId === cid && t.serverName === undefined && t.pin === undefined;
}
