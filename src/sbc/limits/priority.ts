// Calls that limits must never deny (RFC 6404 §4.9: rate limits can deny legitimate clients):
// emergency calls (numbers the policy lists, RFC 5031 `urn:service:sos` URIs) and calls that
// carry an RFC 4412 Resource-Priority namespace the policy trusts from the sending peer. They
// pass the per-peer call rate and session limits up to a reserved share above them, may be
// exempted from `identity: required`, and the overload shedder must never refuse them
// (isPriority). A Resource-Priority header keeps only the namespaces trusted from its sender.
import { Counter, register } from 'prom-client';
import type { Policy } from '../../policy/schema.js';
import type { RequestView, Side } from '../stages.js';
import { userPart } from '../topology.js';

export type PriorityKind = 'emergency' | 'resource_priority';

export interface PriorityCall {
  policy: Pick<Policy, 'limits'>;
  from: Side;
  req: Pick<RequestView, 'uri' | 'get'>;
}

function counter(name: string, help: string, labelNames: string[]): Counter {
  return (register.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames });
}

export const priorityCalls = counter('peergate_priority_calls_total',
  'Emergency and Resource-Priority calls, by peer, kind and what limits did (admitted, refused) or identity_exempt', ['peer', 'kind', 'result']);
export const resourcePriorityStripped = counter('peergate_resource_priority_stripped_total',
  'Resource-Priority values removed because the sending peer is not trusted for their namespace', ['peer']);

/** `+1 (911)` and `911` name the same number: compare digits, `+`, `*` and `#` only. */
function dialable(s: string): string {
  let out = '';
  for (const ch of s) if ((ch >= '0' && ch <= '9') || ch === '+' || ch === '*' || ch === '#') out += ch;
  return out;
}

/** The RFC 4412 namespace of one r-value (`ets.0` → `ets`), lower-cased. */
function namespaceOf(rValue: string): string {
  const v = rValue.trim().toLowerCase();
  const dot = v.lastIndexOf('.');
  return dot > 0 ? v.slice(0, dot) : v;
}

/** Namespaces the sender may set: a peer's `limits.resource_priority`; the core is our own domain. */
function trusted(from: Side): readonly string[] | 'all' {
  return from.kind === 'core' ? 'all' : from.peer.limits.resource_priority ?? [];
}

/**
 * The Resource-Priority value to send on, keeping only the r-values whose namespace the sender
 * is trusted for; undefined when none is left (the header is then removed).
 */
export function trustedResourcePriority(from: Side, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const allowed = trusted(from);
  const kept: string[] = [];
  for (const part of value.split(',')) {
    const r = part.trim();
    if (!r) continue;
    if (allowed === 'all' || allowed.includes(namespaceOf(r))) kept.push(r);
  }
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/** An emergency Request-URI (RFC 5031 sos URN, or a number the policy lists): needs no peer attribution. */
export function isEmergencyUri(policy: Pick<Policy, 'limits'>, uri: string): boolean {
  if (/^urn:service:sos(?:[.;]|$)/i.test(uri)) return true;
  const numbers = policy.limits.priority.emergency_numbers;
  if (numbers.length === 0) return false;
  const called = dialable(userPart(uri));
  return called !== '' && numbers.some((n) => dialable(n) === called);
}

/** Why a call has priority, or undefined for an ordinary call. */
export function priorityOf(call: PriorityCall): PriorityKind | undefined {
  if (isEmergencyUri(call.policy, call.req.uri)) return 'emergency';
  if (trustedResourcePriority(call.from, call.req.get('Resource-Priority')) !== undefined) return 'resource_priority';
  return undefined;
}

/** For the overload shedder: a call it must never refuse. */
export function isPriority(call: PriorityCall): boolean {
  return priorityOf(call) !== undefined;
}

/** The label a priority call is counted under. */
export function peerLabel(from: Side): string {
  return from.kind === 'peer' ? from.peer.id : 'core';
}

/**
 * Put on the outgoing leg's headers the Resource-Priority the sender is trusted for (RFC 4412
 * §9: an untrusted value must not gain priority downstream): untrusted namespaces are removed,
 * whatever the header allowlist says; trusted ones always cross. Returns `headers`.
 */
export function applyResourcePriority(headers: Record<string, string>, from: Side, received: string | undefined): Record<string, string> {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === 'resource-priority') delete headers[k];
  if (received === undefined) return headers;
  const kept = trustedResourcePriority(from, received);
  if (kept !== undefined) headers['Resource-Priority'] = kept;
  if (kept === undefined || kept.split(',').length < received.split(',').filter((x) => x.trim()).length) resourcePriorityStripped.inc({ peer: peerLabel(from) });
  return headers;
}
