// The policy in force is deep-frozen wherever it lives (the primary that loaded it, a worker
// that was handed it): a call captures it once and nothing may change it under the call.
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}
