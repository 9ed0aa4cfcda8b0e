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

export function getHeader(msg: { has(n: string): boolean; get(n: string): string }, name: string): string | undefined {
  try { return msg.has(name) ? msg.get(name) : undefined; } catch { return undefined; }
}

export function requestView(req: Req): RequestView {
  return {
    method: req.method,
    uri: req.uri,
    callId: getHeader(req, 'Call-ID') ?? '',
    protocol: req.protocol,
    sourceAddress: req.source_address,
    sourcePort: Number(req.source_port),
    get: (n) => getHeader(req, n),
    getAll: (n) => splitHeaderValues(getHeader(req, n)),
    body: req.body ?? '',
  };
}

/** drachtio-srf joins repeated headers with ', '; split them back outside quotes and <>. */
export function splitHeaderValues(v: string | undefined): string[] {
  return v === undefined || v === '' ? [] : splitCommaList(v);
}
