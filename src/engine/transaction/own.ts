// What the engine keeps of a message beyond its handling, copied so that it pins nothing else:
// strings through `own` below, bytes through keepBytes / ownBytes below.
import { flat } from '../../flat-string.js';

/** V8's SlicedString/ConsString minimum length: shorter strings are always flat copies. */
const MIN_SHARED = 13;

/**
 * A copy of `s` that shares no memory with the text it was cut from (src/flat-string.ts says
 * why), as a sequential string of its own: the UTF-8 round trip (same value for any well-formed
 * string, one object, ≈ 0.2–0.5 µs), which flat() now takes too; not well-formed (a lone
 * surrogate): flat()'s slice of a one-longer copy. The engine keeps ≈ 15 such values per call for
 * 32 s (waiting transactions, the core's records, dialogs).
 */
export function own<T extends string | undefined>(s: T): T {
  if (typeof s !== 'string' || s.length < MIN_SHARED) return s;
  return ((s as unknown as WellFormedCheck).isWellFormed() ? Buffer.from(s, 'utf8').toString('utf8') : flat(s)) as T;
}

/** ES2024's String.prototype.isWellFormed (Node ≥ 20), not in the TypeScript lib this repo targets. */
interface WellFormedCheck { isWellFormed(): boolean }

export const ownOpt = own;

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
