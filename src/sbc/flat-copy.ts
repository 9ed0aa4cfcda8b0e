// Flat copies of strings the B2BUA keeps for a call's life (ids, tags, URIs, header values).
//
// Why: V8 cuts a substring of 13 characters or more as a *sliced string* that points into (and
// keeps alive) its whole parent, and a concatenation is a *cons string* that keeps both halves:
// a Call-ID kept from a received message keeps that message's text, a string built piece by
// piece keeps every piece. `(' ' + s).slice(1)` makes V8 flatten into a new sequential string
// (measured and explained in src/engine/transaction/own.ts, the engine's twin of this).

/** Cons strings and slices are at least this long (V8's kMinLength): shorter ones are flat. */
const MIN_SHARED = 13;

/** A copy of `s` that shares no memory with the string it was cut or built from. */
export function flat<T extends string | undefined>(s: T): T {
  return (typeof s === 'string' && s.length >= MIN_SHARED ? (' ' + s).slice(1) : s) as T;
}
