// A policy's JSON text, kept beside the object parsed from it. A reload's parse thread hands the
// policy over as JSON text (parse-thread.ts) and the primary hands the same policy on to its B2BUA
// workers as JSON text (app/workers/policy-pipe.ts): remembering the first saves serialising it
// again on the primary's event loop (≈ 6 ms for 11,000 routes). Keyed weakly by the object: the
// text goes when the policy does.
import type { Policy } from './schema.js';

const texts = new WeakMap<Policy, string>();

/** `text` is exactly JSON.stringify(policy) (the policy was JSON.parse'd from it). */
export function rememberPolicyText(policy: Policy, text: string): void {
  texts.set(policy, text);
}

/** The text the policy was parsed from, when it was (a reload off the event loop); else undefined. */
export function knownPolicyText(policy: Policy): string | undefined {
  return texts.get(policy);
}

/** The policy as JSON text: the remembered one, or serialised now. Handed on once (the worker
 *  pool keeps its own encoding of it), so the remembered text is let go here, not kept twice. */
export function policyText(policy: Policy): string {
  const text = texts.get(policy);
  if (text === undefined) return JSON.stringify(policy);
  texts.delete(policy);
  return text;
}
