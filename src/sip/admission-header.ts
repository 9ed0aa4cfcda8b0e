// The X-Peergate-Admission header (docs/engine.md "Pre-admission"): the embedded engine's
// limits decision on a new INVITE, made in the primary before the INVITE goes to a B2BUA worker
// (src/app/preadmit.ts), read by the worker's limits stage (src/sbc/limits/index.ts). The engine
// removes every copy a sender put on the wire (src/engine/message/app-view.ts), and the B2BUA
// relays no X- header it does not list (src/sbc/topology.ts), so this one never leaves.
//
// Value, a list of params (RFC 3261 §25.1 generic-param, all tokens):
//   admitted: `s=<session id>;peer=<peer id>;prio=0|1` (a call from the core: `core` for `peer=…`)
//   refused:  `refused=cps|sessions|global_sessions;retry-after=<s>;peer=<peer id>;prio=0|1`

/** The header's name as written on the wire. */
export const ADMISSION_HEADER = 'X-Peergate-Admission';
/** The header's canonical (lower-case) name, as parsed header fields carry it. */
export const ADMISSION_NAME = 'x-peergate-admission';

export type PreAdmittedReason = 'cps' | 'sessions' | 'global_sessions';

/** Whom the engine attributed the call to (undefined peer: the core) and whether it had priority. */
interface Attributed { peer: string | undefined; priority: boolean }
export type PreAdmission =
  | (Attributed & { admitted: true; sessionId: string })
  | (Attributed & { admitted: false; reason: PreAdmittedReason; retryAfterS: number });

const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const REASONS: ReadonlySet<string> = new Set(['cps', 'sessions', 'global_sessions']);

export function formatAdmission(a: PreAdmission): string {
  const who = `${a.peer === undefined ? 'core' : `peer=${a.peer}`};prio=${a.priority ? 1 : 0}`;
  return a.admitted ? `s=${a.sessionId};${who}` : `refused=${a.reason};retry-after=${a.retryAfterS};${who}`;
}

/** Parse a header value; null for anything not exactly as formatAdmission writes it. */
export function parseAdmission(value: string | undefined): PreAdmission | null {
  if (value === undefined || value.length > 512) return null;
  let s: string | undefined, refused: string | undefined, retry: string | undefined, peer: string | undefined, prio: string | undefined;
  let core = false;
  for (const part of value.split(';')) {
    const p = part.trim();
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? undefined : p.slice(eq + 1);
    if (name === 'core' && v === undefined) core = true;
    else if (v === undefined || !TOKEN.test(v)) return null;
    else if (name === 's') s = v;
    else if (name === 'refused') refused = v;
    else if (name === 'retry-after') retry = v;
    else if (name === 'peer') peer = v;
    else if (name === 'prio') prio = v;
    else return null;
  }
  if (core === (peer !== undefined) || (prio !== '0' && prio !== '1')) return null;
  const who = { peer, priority: prio === '1' };
  if (s !== undefined) return refused === undefined && retry === undefined ? { ...who, admitted: true, sessionId: s } : null;
  if (refused === undefined || !REASONS.has(refused) || retry === undefined || !/^\d{1,6}$/.test(retry)) return null;
  return { ...who, admitted: false, reason: refused as PreAdmittedReason, retryAfterS: Number(retry) };
}

/** Whether a header name (any case) is the admission header. */
export function isAdmissionName(name: string): boolean {
  return name.toLowerCase() === ADMISSION_NAME; // an X- name has no compact form
}
