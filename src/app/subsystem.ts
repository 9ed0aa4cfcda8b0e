// The contract every part of the SBE offers the composition root (app.ts): start, a two-step
// reconfigure (check, then apply) so a policy is applied whole or not at all, readiness and
// close. Subsystems never read each other's fields; the app passes what one needs from
// another as a narrow function or interface.
import type { Policy } from '../policy/schema.js';

/** A key (path in the policy) the running subsystem cannot take without a restart. */
export type Reconfigured = { applied: true } | { restartNeeded: string[] };

/** Something `next` asks for that cannot be done; the policy is refused. */
export interface PolicyProblem {
  keyPath: (string | number)[];
  message: string;
}

export interface Subsystem {
  readonly name: string;
  start(): Promise<void>;
  /**
   * Check what `next` needs (read certificates and CRLs, build TLS contexts) without changing
   * anything. Problems refuse the whole policy. What was read is kept for reconfigure().
   */
  prepare?(next: Policy, previous: Policy): PolicyProblem[];
  /** Apply `next` (already prepared); cannot fail. `previous` is what calls in progress use. */
  reconfigure(next: Policy, previous: Policy): Reconfigured;
  /** true, or why this subsystem cannot take calls. */
  ready(): true | string;
  close(): Promise<void>;
}

export const APPLIED: Reconfigured = { applied: true };

/** Keys whose value differs between `started` (the policy the process started with) and `next`. */
export function changedKeys(started: Policy, next: Policy, keys: string[]): string[] {
  return keys.filter((k) => JSON.stringify(pick(started, k)) !== JSON.stringify(pick(next, k)));
}

function pick(policy: unknown, dotted: string): unknown {
  let v: unknown = policy;
  for (const part of dotted.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[part];
  return v;
}

export function restartOrApplied(keys: string[]): Reconfigured {
  return keys.length > 0 ? { restartNeeded: keys } : APPLIED;
}
