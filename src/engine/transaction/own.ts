// What the engine keeps of a message beyond its handling, copied so that it pins nothing else:
// strings through `own` below, bytes through keepBytes / ownBytes below.
import { flat } from '../../flat-string.js';

/**
 * A copy of `s` that shares no memory with the text it was cut from, as one sequential string:
 * flat() (src/flat-string.ts says why and how). The engine keeps ≈ 15 such values per call for
 * 32 s (waiting transactions, the core's records, dialogs).
 */
export const own = flat;
export const ownOpt = flat;

/**
 * Bytes kept for retransmission (a final response in Completed, an ACK), in a buffer of their
 * own. Node cuts small Buffers (< 4 KB) out of shared 8 KB pool slabs, so one response kept for
 * 32 s (Timer J) would keep its whole slab, mostly filled with messages long gone: measured in
 * bench/memory.bench.ts (ict-accepted-sdp), ≈ 6 KB of slabs per kept 0.4 KB ACK.
 */
export function ownBytes(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

/**
 * Bytes kept through a whole timer window (a final response for Timer J, an ACK for Timer D):
 * as a one-byte string (latin1 maps each byte to one character, so any bytes round-trip),
 * ≈ 16 B of overhead against ≈ 190 B for a Buffer with an ArrayBuffer of its own. Turned back
 * into a Buffer only when a retransmission needs it (keptBytes).
 */
export function keepBytes(b: Buffer): string {
  return b.toString('latin1');
}

export function keptBytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/**
 * A method name a transaction keeps (up to 64*T1): the same string literal for every
 * transaction when it is an RFC 3261/3262/3311/3428/3515/6086/6665 method, so that 16,000
 * waiting BYEs and INVITEs hold no copy each (≈ 24 B); any other method is copied (own()).
 */
export function methodName(m: string): string {
  switch (m) {
    case 'INVITE': return 'INVITE';
    case 'ACK': return 'ACK';
    case 'BYE': return 'BYE';
    case 'CANCEL': return 'CANCEL';
    case 'OPTIONS': return 'OPTIONS';
    case 'REGISTER': return 'REGISTER';
    case 'PRACK': return 'PRACK';
    case 'UPDATE': return 'UPDATE';
    case 'INFO': return 'INFO';
    case 'MESSAGE': return 'MESSAGE';
    case 'REFER': return 'REFER';
    case 'NOTIFY': return 'NOTIFY';
    case 'SUBSCRIBE': return 'SUBSCRIBE';
    default: return own(m);
  }
}
