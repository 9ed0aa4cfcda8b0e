// How the call flow reads drachtio-srf messages: the request, response and dialog types it
// handles, header access that never throws, and the RequestView every stage reads (stages.ts).
import type Srf from 'drachtio-srf';
import { splitCommaList } from '../sip/grammar/index.js';
import type { RequestView } from './stages.js';

export type Req = Srf.SrfRequest & { receivedOn?: string; source_port: string | number; canceled?: boolean };
export type Res = Srf.SrfResponse;
export type Dialog = Srf.Dialog;

/** drachtio-srf's Response emits 'end' with the status of the final response it sends. */
export function onFinalResponse(res: Res, cb: (status: number) => void): void {
  (res as unknown as NodeJS.EventEmitter).once('end', (e: { status: number }) => cb(e.status));
}

interface SrfMessage { has(n: string): boolean; get(n: string): string; headers?: unknown }

/** One header of a drachtio-srf message, undefined when absent; never throws. */
export function getHeader(msg: SrfMessage, name: string): string | undefined {
  if (name.includes('%')) return slowHeader(msg, name);
  try {
    const headers = msg.headers as Record<string, string> | undefined;
    if (headers === null || typeof headers !== 'object') return slowHeader(msg, name);
    const lower = name.toLowerCase();
    for (const k in headers) if (k.toLowerCase() === lower) return headers[k];
    return undefined;
  } catch { return undefined; }
}

/**
 * A header reader over one message, for reading many headers of it (a call's INVITE, a B-leg
 * response). drachtio-srf's own `has` + `get` each scan every header name and read
 * `process.env` (its parser's getHeaderName), which made header reads a visible part of
 * peergate's CPU per call; this indexes the names once. Same answers: srf stores names
 * normalised (compact forms expanded, lower case but X-/P- names) and looks them up
 * case-insensitively, and a compact name asked for is never a stored name.
 */
export function headerReader(msg: SrfMessage): (name: string) => string | undefined {
  let index: Map<string, string> | undefined;
  try {
    const headers = msg.headers;
    if (headers !== null && typeof headers === 'object') {
      index = new Map();
      for (const [k, v] of Object.entries(headers as Record<string, string>)) {
        const lower = k.toLowerCase();
        if (!index.has(lower)) index.set(lower, v);
      }
    }
  } catch { index = undefined; }
  if (!index) return (name) => slowHeader(msg, name);
  const found = index;
  // A name with an escape (`%`) is unescaped by srf first: left to srf itself.
  return (name) => (name.includes('%') ? slowHeader(msg, name) : found.get(name.toLowerCase()));
}

function slowHeader(msg: SrfMessage, name: string): string | undefined {
  try { return msg.has(name) ? msg.get(name) : undefined; } catch { return undefined; }
}

export function requestView(req: Req): RequestView {
  const get = headerReader(req);
  return {
    method: req.method,
    uri: req.uri,
    callId: get('Call-ID') ?? '',
    protocol: req.protocol,
    sourceAddress: req.source_address,
    sourcePort: Number(req.source_port),
    get,
    getAll: (n) => splitHeaderValues(get(n)),
    body: req.body ?? '',
  };
}

/** drachtio-srf joins repeated headers with ', '; split them back outside quotes and <>. */
export function splitHeaderValues(v: string | undefined): string[] {
  return v === undefined || v === '' ? [] : splitCommaList(v);
}
