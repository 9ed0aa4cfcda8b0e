// TwoXxRetransmitter, message builders and the header scanners of the transaction layer.
import { describe, expect, it } from 'vitest';
import {
  TwoXxRetransmitter,
  buildCancel,
  buildResponse,
  newBranch,
  parseCSeq,
  parseVia,
  tagOf,
} from '../../../src/engine/transaction/index.js';
import { FakeClock, request } from './support.js';

describe('TwoXxRetransmitter (RFC 3261 §13.3.1.4)', () => {
  it('retransmits at T1 doubling to T2 and gives up at 64*T1', () => {
    const clock = new FakeClock();
    const at: number[] = [];
    let gaveUp = -1;
    const r = new TwoXxRetransmitter({ clock, retransmit: () => at.push(clock.now()), giveUp: () => (gaveUp = clock.now()) });
    r.start();
    clock.advance(60_000);
    expect(at).toEqual([500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(gaveUp).toBe(32_000);
    expect(r.running).toBe(false);
    expect(r.count).toBe(10);
    expect(clock.pending).toBe(0);
  });

  it('stop() on ACK ends retransmissions without giving up', () => {
    const clock = new FakeClock();
    let n = 0;
    let gaveUp = false;
    const r = new TwoXxRetransmitter({ clock, retransmit: () => n++, giveUp: () => (gaveUp = true) });
    r.start();
    clock.advance(2_000);
    r.stop();
    clock.advance(60_000);
    expect(n).toBe(2);
    expect(gaveUp).toBe(false);
  });

  it('T2: Infinity gives RFC 3262 reliable-provisional spacing (doubling without cap)', () => {
    const clock = new FakeClock();
    const at: number[] = [];
    new TwoXxRetransmitter({ clock, T2: Infinity, retransmit: () => at.push(clock.now()), giveUp: () => {} }).start();
    clock.advance(40_000);
    expect(at).toEqual([500, 1500, 3500, 7500, 15500, 31500]);
  });

  it('honours T1/T2 and noRetransmit', () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const r = new TwoXxRetransmitter({ clock, T1: 100, T2: 300, retransmit: () => at.push(clock.now()), giveUp: () => at.push(-clock.now()) });
    r.start();
    clock.advance(7_000);
    expect(at.slice(0, 4)).toEqual([100, 300, 600, 900]);
    expect(at[at.length - 1]).toBe(-6_400);
    const quiet: number[] = [];
    new TwoXxRetransmitter({ clock, noRetransmit: true, retransmit: () => quiet.push(1), giveUp: () => quiet.push(2) }).start();
    clock.advance(40_000);
    expect(quiet).toEqual([2]);
  });
});

describe('builders', () => {
  it('buildResponse copies Via/From/To/Call-ID/CSeq, adds the To tag only when missing and never on 100', () => {
    const req = request('INVITE', { lowerVias: ['SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKlower'], extra: [{ name: 'timestamp', raw: 'Timestamp', value: '7' }] });
    const r180 = buildResponse(req, 180, 'Ringing', { toTag: 'T1' });
    expect(r180.headers.filter((h) => h.name === 'via')).toHaveLength(2);
    expect(r180.headers.find((h) => h.name === 'to')!.value).toBe('<sip:bob@biloxi.example>;tag=T1');
    expect(r180.headers.some((h) => h.name === 'timestamp')).toBe(false);
    expect(r180.headers.some((h) => h.name === 'max-forwards')).toBe(false);
    const r100 = buildResponse(req, 100, 'Trying', { toTag: 'T1' });
    expect(r100.headers.find((h) => h.name === 'to')!.value).toBe('<sip:bob@biloxi.example>');
    expect(r100.headers.find((h) => h.name === 'timestamp')!.value).toBe('7');
    const tagged = request('BYE', { toTag: 'existing' });
    expect(buildResponse(tagged, 200, 'OK', { toTag: 'new' }).headers.find((h) => h.name === 'to')!.value).toBe('<sip:bob@biloxi.example>;tag=existing');
  });

  it('buildCancel: same URI, Call-ID, From, To, CSeq number; a single Via with the same branch (§9.1)', () => {
    const inv = request('INVITE', { branch: 'z9hG4bKc', cseq: 42, lowerVias: ['SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKlower'], uri: 'sip:x@y' });
    const c = buildCancel(inv);
    expect(c.method).toBe('CANCEL');
    expect(c.uri).toBe('sip:x@y');
    const vias = c.headers.filter((h) => h.name === 'via').map((h) => h.value);
    expect(vias).toEqual(['SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKc']);
    expect(c.headers.find((h) => h.name === 'cseq')!.value).toBe('42 CANCEL');
    for (const n of ['from', 'to', 'call-id']) {
      expect(c.headers.find((h) => h.name === n)!.value).toBe(inv.headers.find((h) => h.name === n)!.value);
    }
  });

  it('newBranch is RFC 3261 style and unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(newBranch());
    expect(seen.size).toBe(10_000);
    for (const b of [...seen].slice(0, 5)) expect(b.startsWith('z9hG4bK')).toBe(true);
  });
});

describe('header scanners', () => {
  const via = (value: string) => parseVia({ name: 'via', raw: 'Via', value });

  it('parseVia: transport, sent-by, branch; LWS, case and odd parameters', () => {
    expect(via('SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds')).toMatchObject({ transport: 'UDP', sentBy: 'pc33.atlanta.com', branch: 'z9hG4bK776asdhds' });
    expect(via('SIP / 2.0 / tcp  [2001:DB8::9]:5061 ; received=1.2.3.4 ;BRANCH = z9hG4bKx ;rport')).toMatchObject({ transport: 'TCP', sentBy: '[2001:db8::9]:5061', branch: 'z9hG4bKx' });
    expect(via('SIP/2.0/UDP h:5060;foo="a;branch=evil";branch=z9hG4bKreal')!.branch).toBe('z9hG4bKreal');
    expect(via('SIP/2.0/UDP h:5060;rport')!.branch).toBe('');
    expect(via('garbage')).toBeUndefined();
    expect(via('SIP/2.0/UDP ;branch=x')).toBeUndefined();
  });

  it('tagOf: name-addr, quoted display names with < and ;, addr-spec', () => {
    expect(tagOf('"A <;tag=no>" <sip:a@b;tag=uriparam>;tag=yes')).toBe('yes');
    expect(tagOf('<sip:a@b;tag=uriparam>')).toBeUndefined();
    expect(tagOf('sip:a@b;TAG=bare')).toBe('bare');
    expect(tagOf('sip:a@b')).toBeUndefined();
  });

  it('parseCSeq: valid, out of range and garbled', () => {
    expect(parseCSeq(' 4711  INVITE ')).toEqual({ seq: 4711, method: 'INVITE' });
    expect(parseCSeq('2147483648 INVITE')).toBeUndefined();
    expect(parseCSeq('INVITE')).toBeUndefined();
    expect(parseCSeq('1')).toBeUndefined();
    expect(parseCSeq('1 IN VITE')).toBeUndefined();
  });
});
