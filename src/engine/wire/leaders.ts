// Leaders of the frames the server sends to apps (spec §4, §5, §6). Token order and trailing
// bars are exactly those drachtio-srf counts on.
import { randomUUID } from 'node:crypto';

/** `HH:MM:SS.uuuuuu` in UTC (spec §6 `time`). */
export function stackTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const p2 = (n: number) => (n < 10 ? '0' : '') + n;
  const micros = d.getUTCMilliseconds() * 1000 + Math.floor(Math.random() * 1000);
  return `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${String(micros).padStart(6, '0')}`;
}

export const newId = (): string => randomUUID();

/** Meta block fields of a `sip` frame (spec §6). */
export interface FrameMeta {
  source: 'network' | 'application';
  bytes: number;
  protocol: string;
  address: string;
  port: number | string;
  time: string;
  txnId: string;
  dialogId: string;
  /** Only for a new request from the network: the server address it arrived on. */
  receivedOn?: { address: string; port: number };
}

/** Server → app `sip` frame payload (spec §5.2): 13 tokens for new requests, 11 otherwise. */
export function sipFramePayload(meta: FrameMeta, sip: string): string {
  let leader = `${newId()}|sip|${meta.source}|${meta.bytes}|${meta.protocol}|${meta.address}|${meta.port}|${meta.time}|${meta.txnId}|${meta.dialogId}|`;
  if (meta.receivedOn) leader += `${meta.receivedOn.address}|${meta.receivedOn.port}|`;
  return `${leader}\r\n${sip}`;
}

/** OK echo of a request the app sent (forms b, c, d). */
export function requestSentPayload(msgId: string, m: { bytes: number; protocol: string; address: string; port: number; txnId: string }, sip: string): string {
  return `${newId()}|response|${msgId}|OK|application|${m.bytes}|${m.protocol}|${m.address}|${m.port}|${stackTime()}|${m.txnId}|Msg sent:|\r\n${sip}`;
}

/** OK echo of a response the app sent (form a): dialogId in token 11. */
export function responseSentPayload(msgId: string, m: { bytes: number; protocol: string; address: string; port: number; txnId: string; dialogId: string }, sip: string): string {
  return `${newId()}|response|${msgId}|OK|application|${m.bytes}|${m.protocol}|${m.address}|${m.port}|${stackTime()}|${m.txnId}|${m.dialogId}||Msg sent:|\r\n${sip}`;
}

export function nokPayload(msgId: string, reason: string): string {
  return `${newId()}|response|${msgId}|NOK|${reason}`;
}

export function okPayload(msgId: string, ...fields: string[]): string {
  return fields.length === 0 ? `${newId()}|response|${msgId}|OK` : `${newId()}|response|${msgId}|OK|${fields.join('|')}`;
}

export function noPayload(msgId: string, reason: string): string {
  return `${newId()}|response|${msgId}|NO|${reason}`;
}

export function cdrPayload(kind: 'attempt' | 'start' | 'stop', source: 'network' | 'application', extra: string | undefined, sip: string): string {
  const tail = kind === 'attempt' ? '' : `|${extra ?? ''}`;
  return `${newId()}|cdr:${kind}|${source}|${stackTime()}${tail}\r\n${sip}`;
}
