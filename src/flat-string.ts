// Flat copies of strings kept beyond the handling of one message: the engine's dialogs and
// waiting transactions (src/engine/transaction/own.ts), the B2BUA's calls (src/sbc).
//
// Why: V8 cuts a substring of 13 characters or more as a *sliced string*, a small object that
// points into its parent; a concatenation is a *cons string* that points to both halves. Either
// keeps the parent alive as long as it lives. A Call-ID, tag, From or branch cut from a received
// message therefore keeps that whole message text (0.4–2 KB) alive for as long as a dialog or a
// transaction waiting out its RFC 3261 timers keeps the value (issue #18: ≈ 112,000 transactions
// wait at 500 calls/s). The values kept are copied once, where they are stored.
//
// Measured on Node 20 (V8 11.3; bench in BENCHMARKS.md "Memory"), 2,000 40-character slices of
// 5 KB texts kept, heap after gc per kept value: the slice itself 5,155 B (the text stays);
// `(' ' + s).slice(1)` 126 B, ≈ 100 ns; a Buffer latin1 round trip 90 B but 4× slower and not
// safe beyond Latin-1; JSON round trip 86 B, 6× slower. A template or `+` (cons string), a Map
// key (hashing does not flatten), `''.concat(s)` and `replace` all keep the parent.
// `(' ' + s)` is a cons string; slicing it makes V8 flatten it into a new sequential string, and
// the slice points into that copy, not into the received text.

/** Cons strings and slices are at least this long (V8's ConsString/SlicedString::kMinLength):
 *  anything shorter is already a flat copy. */
const MIN_SHARED = 13;

/**
 * A copy of `s` that shares no memory with the string it was cut or built from (undefined stays),
 * as one sequential string. `(' ' + s).slice(1)` alone is itself a 32 B slice of a one-longer
 * flat copy; a held call keeps ≈ 12 such values per worker for hours, so a well-formed string
 * takes the UTF-8 round trip instead (one object, no slice: ≈ 30 B less per value for
 * ≈ 0.2–0.3 µs more, BENCHMARKS.md "Memory"). A lone surrogate would not survive UTF-8: such a
 * string takes the slice.
 */
export function flat<T extends string | undefined>(s: T): T {
  if (typeof s !== 'string' || s.length < MIN_SHARED) return s;
  return ((s as unknown as WellFormedCheck).isWellFormed() ? Buffer.from(s, 'utf8').toString('utf8') : (' ' + s).slice(1)) as T;
}

/** ES2024's String.prototype.isWellFormed (Node ≥ 20), not in the TypeScript lib this repo targets. */
interface WellFormedCheck { isWellFormed(): boolean }

/**
 * One flat copy per distinct value, for values many long-lived records repeat (a peer's address,
 * our own Contact): each record keeps the shared copy instead of its own. Bounded, since the
 * values come from the network or an app: past `limit` distinct values it starts again.
 */
export function sharedCopies(limit: number): (s: string) => string {
  const kept = new Map<string, string>();
  return (s) => {
    const known = kept.get(s);
    if (known !== undefined) return known;
    if (kept.size >= limit) kept.clear();
    const copy = flat(s);
    kept.set(copy, copy);
    return copy;
  };
}
