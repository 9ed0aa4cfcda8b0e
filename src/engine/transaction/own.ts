// What the engine keeps of a message beyond its handling, copied so that it pins nothing else:
// strings through src/flat-string.ts (`own`), bytes through ownBytes below.
export { flat as own, flat as ownOpt } from '../../flat-string.js';

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
