// HEPv3 (HEP3/EEP, the encapsulation Homer, heplify and sngrep read) encoding of one SIP
// message. A packet is the 4 octets "HEP3", a 16-bit total length, then chunks; every chunk is
// vendor id (16 bits, 0x0000 = generic), type id (16 bits), length (16 bits, header included)
// and the value, all in network byte order. Chunk types used here (vendor 0x0000):
//   0x0001 IP protocol family (8 bits: 2 AF_INET, 10 AF_INET6)
//   0x0002 IP protocol id     (8 bits: 17 UDP, 6 TCP — TLS is TCP; its plaintext is the payload)
//   0x0003/0x0004 IPv4 source/destination address, 0x0005/0x0006 IPv6 source/destination
//   0x0007/0x0008 source/destination port (16 bits)
//   0x0009/0x000a timestamp seconds / microseconds (32 bits)
//   0x000b protocol type (8 bits: 1 = SIP)
//   0x000c capture agent id (32 bits)
//   0x000e authentication key (string)
//   0x000f captured payload (the SIP message)
//   0x0011 internal correlation id (string: the leg's Call-ID)
import { isIPv4 } from 'node:net';
import { ipBytes } from '../transport/ip-bytes.js';

export const HEP3_MAGIC = 'HEP3';
export const HEP_CHUNK = {
  ipFamily: 0x0001, ipProtocol: 0x0002, ipv4Src: 0x0003, ipv4Dst: 0x0004, ipv6Src: 0x0005, ipv6Dst: 0x0006,
  srcPort: 0x0007, dstPort: 0x0008, timeSec: 0x0009, timeUsec: 0x000a, protoType: 0x000b, captureId: 0x000c,
  authKey: 0x000e, payload: 0x000f, correlationId: 0x0011,
} as const;
const AF_INET = 2;
const AF_INET6 = 10;
const PROTO_SIP = 1;
/** The whole packet length is a 16-bit field. */
export const HEP_MAX_PACKET = 0xffff;

export interface HepMessage {
  /** udp, tcp or tls (sent as TCP). */
  transport: 'udp' | 'tcp' | 'tls';
  src: { address: string; port: number };
  dst: { address: string; port: number };
  /** Capture time, ms since the epoch (with a fraction for µs). */
  timeMs: number;
  captureId: number;
  authKey?: string;
  correlationId?: string;
  payload: Buffer;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d), as dual-stack sockets report IPv4 peers, as plain IPv4. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** The HEP3 packet for `m`; undefined when it cannot be one (bad addresses, over 64 KiB). */
export function encodeHep3(m: HepMessage): Buffer | undefined {
  const src = ipBytes(unmapped(m.src.address));
  const dst = ipBytes(unmapped(m.dst.address));
  if (!src || !dst || src.length !== dst.length) return undefined;
  const v6 = src.length === 16;
  const auth = m.authKey ? Buffer.from(m.authKey, 'utf8') : undefined;
  const corr = m.correlationId ? Buffer.from(m.correlationId, 'utf8') : undefined;
  const size = 6 + 7 + 7 + 2 * (6 + src.length) + 8 + 8 + 10 + 10 + 7 + 10
    + (auth ? 6 + auth.length : 0) + 6 + m.payload.length + (corr ? 6 + corr.length : 0);
  if (size > HEP_MAX_PACKET) return undefined;
  const b = Buffer.allocUnsafe(size);
  let o = b.write(HEP3_MAGIC, 0, 'latin1');
  o = b.writeUInt16BE(size, o);
  const head = (type: number, len: number): void => {
    o = b.writeUInt16BE(0x0000, o);
    o = b.writeUInt16BE(type, o);
    o = b.writeUInt16BE(6 + len, o);
  };
  const u8 = (type: number, v: number) => { head(type, 1); o = b.writeUInt8(v, o); };
  const u16 = (type: number, v: number) => { head(type, 2); o = b.writeUInt16BE(v, o); };
  const u32 = (type: number, v: number) => { head(type, 4); o = b.writeUInt32BE(v >>> 0, o); };
  const bytes = (type: number, v: Buffer) => { head(type, v.length); o += v.copy(b, o); };
  // Chunks are TLV and any order is valid HEP3, but some receivers (sngrep 1.x) read a fixed
  // layout: the order of the reference agent (hep-c/captagent), with the payload before any
  // chunk they do not know.
  u8(HEP_CHUNK.ipFamily, v6 ? AF_INET6 : AF_INET);
  u8(HEP_CHUNK.ipProtocol, m.transport === 'udp' ? 17 : 6);
  u16(HEP_CHUNK.srcPort, m.src.port);
  u16(HEP_CHUNK.dstPort, m.dst.port);
  const sec = Math.floor(m.timeMs / 1000);
  u32(HEP_CHUNK.timeSec, sec);
  u32(HEP_CHUNK.timeUsec, Math.min(999_999, Math.round((m.timeMs - sec * 1000) * 1000)));
  u8(HEP_CHUNK.protoType, PROTO_SIP);
  u32(HEP_CHUNK.captureId, m.captureId);
  bytes(v6 ? HEP_CHUNK.ipv6Src : HEP_CHUNK.ipv4Src, src);
  bytes(v6 ? HEP_CHUNK.ipv6Dst : HEP_CHUNK.ipv4Dst, dst);
  if (auth) bytes(HEP_CHUNK.authKey, auth);
  bytes(HEP_CHUNK.payload, m.payload);
  if (corr) bytes(HEP_CHUNK.correlationId, corr);
  return b;
}

/**
 * The Call-ID of a raw SIP message (full `Call-ID:` or compact `i:` header, RFC 3261 §7.3.3),
 * scanning only the header block; '' when absent.
 */
export function callIdOf(msg: Buffer): string {
  const end = msg.indexOf('\r\n\r\n');
  const headerEnd = end < 0 ? msg.length : end;
  let lineStart = msg.indexOf('\r\n') + 2;
  while (lineStart > 1 && lineStart < headerEnd) {
    let lineEnd = msg.indexOf('\r\n', lineStart);
    if (lineEnd < 0 || lineEnd > headerEnd) lineEnd = headerEnd;
    const c = msg[lineStart]! | 0x20;
    if (c === 0x63 /* c */ || c === 0x69 /* i */) {
      const colon = msg.indexOf(0x3a, lineStart);
      if (colon > 0 && colon < lineEnd) {
        const name = msg.toString('latin1', lineStart, colon).trim().toLowerCase();
        if (name === 'call-id' || name === 'i') return msg.toString('utf8', colon + 1, lineEnd).trim();
      }
    }
    lineStart = lineEnd + 2;
  }
  return '';
}
