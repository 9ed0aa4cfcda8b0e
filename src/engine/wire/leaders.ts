// Leaders of the frames the server sends to apps (spec §4, §5, §6). Token order and trailing
// bars are exactly those drachtio-srf counts on.
import { randomUUID } from 'node:crypto';
import { own } from '../transaction/own.js';

let cachedSecond = -1;
let cachedPrefix = '';
function two(n: number): string { return n < 10 ? `0${n}` : String(n); }

/** `HH:MM:SS.uuuuuu` in UTC (spec §6 `time`). The HH:MM:SS part is cached per second: this
 *  runs for every frame. The clock has millisecond resolution, so the last three digits are 0. */
export function stackTime(ms: number = Date.now()): string {
  const sec = Math.floor(ms / 1000);
  if (sec !== cachedSecond) {
    const d = new Date(sec * 1000);
    cachedSecond = sec;
    cachedPrefix = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.`;
  }
  const micros = Math.floor((ms - sec * 1000) * 1000);
  return cachedPrefix + String(micros).padStart(6, '0');
}

// Wire ids (transaction and message ids, spec §4–§6): ≈ 20 per call. Each is this process's
// random prefix, the first 80 bits of a random UUID (its version and variant digits included),
// and a 48-bit counter: still UUID-shaped, as drachtio-server's are, and unique across restarts
// and processes (74 random bits per process start) without randomUUID() per id, whose text
// also had to be copied flat (≈ 430 ns per id, against ≈ 60 here). Decoded from a Buffer, each
// id is one flat string of its own (the ids of a call's INVITE transactions live as long as its
// dialogs: a concatenation would keep its parts).
const ID = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Ids left before the counter's 12 hex digits run out (then a new prefix). */
const ID_COUNTER_END = 2 ** 48;
let idCounter = ID_COUNTER_END;

/** A transaction or message id, unique across processes and restarts; not secret, not random. */
export function newId(): string {
  if (idCounter >= ID_COUNTER_END) {
    ID.write(randomUUID().slice(0, 24), 0, 'latin1');
    idCounter = 0;
  }
  let x = idCounter++;
  for (let i = 35; i >= 24; i--) {
    ID[i] = HEX[x & 15]!; // & takes the low 32 bits, so the low 4 are exact up to 2^53
    x = Math.floor(x / 16);
  }
  return ID.toString('latin1', 0, 36);
}

/** A Call-ID the engine makes up (a request an app sent without one): random, as RFC 3261
 *  §8.1.1.4 recommends; a counter would tell the network how many calls we make. Flat (own.ts). */
export const newCallId = (): string => own(randomUUID());

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
  return `${sipFrameLeader(meta)}\r\n${sip}`;
}

/** The leader of a `sip` frame, without the CR LF and SIP message that follow it (the message
 *  may go as bytes: AppConnection.sendWith). */
export function sipFrameLeader(meta: FrameMeta): string {
  let leader = `${newId()}|sip|${meta.source}|${meta.bytes}|${meta.protocol}|${meta.address}|${meta.port}|${meta.time}|${meta.txnId}|${meta.dialogId}|`;
  if (meta.receivedOn) leader += `${meta.receivedOn.address}|${meta.receivedOn.port}|`;
  return leader;
}

/** OK echo of a request the app sent (forms b, c, d): its leader; the request as sent follows. */
export function requestSentLeader(msgId: string, m: { bytes: number; protocol: string; address: string; port: number; txnId: string }): string {
  return `${newId()}|response|${msgId}|OK|application|${m.bytes}|${m.protocol}|${m.address}|${m.port}|${stackTime()}|${m.txnId}|Msg sent:|`;
}

/** OK echo of a response the app sent (form a): its leader, dialogId in token 11; the response
 *  as sent follows. */
export function responseSentLeader(msgId: string, m: { bytes: number; protocol: string; address: string; port: number; txnId: string; dialogId: string }): string {
  return `${newId()}|response|${msgId}|OK|application|${m.bytes}|${m.protocol}|${m.address}|${m.port}|${stackTime()}|${m.txnId}|${m.dialogId}||Msg sent:|`;
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
