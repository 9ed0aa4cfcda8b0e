// No session outlives its call, whatever order its messages come in. A scripted caller and a
// scripted callee (raw UDP, test/helpers/raw-ua.ts) drive `peergate start` with its default
// workers through orderings SIPp cannot script: CANCEL before or after any answer, a 2xx never
// ACKed, ACK and BYE in one breath with a delayed offer, a callee that hangs up before its 2xx
// is ACKed, a re-INVITE chased by BYE, BYE twice. All of them run at once. Then every call must
// be ended and counted once, every limits slot free, the engine must hold no dialog, and once
// RFC 3261's timers have run (T1 50 ms here), no transaction; and the callee must hold no
// dialog that was answered and never ended.
// ORDERINGS_ONLY=a,b runs the orderings whose names contain a or b; ORDERINGS_DEBUG=1 prints
// every message both sides received when an ordering fails.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { freePorts, stopProcessNow, waitFor } from '../helpers/procs.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { RawCall, RawUa, cseqOf, hdr, offer, tagOf, token, type RawMsg } from '../helpers/raw-ua.js';

const T1_MS = 50;
const WINDOW_MS = 64 * T1_MS; // Timer B/F/H/J/M
const NO_ANSWER_MS = 1000;
/** How long a scripted side waits for what it expects: no ordering asserts speed, and the
 *  first test group runs this file beside others on a busy machine. */
const RESPONSE_MS = 8000;
const TIMER_D_MS = 32_000; // RFC 3261 §17.1.1.2: at least 32 s over UDP, not scaled with T1

/** How the callee treats an INVITE, chosen by the called number's last digits' prefix. */
const MODES = {
  answer: '10', busy: '11', ring: '12', silent: '13', byefast: '14', byebeforeack: '15',
  /** Two 2xx with two To-tags (a forking proxy behind the callee). */
  fork: '16',
  /** 180, then a CANCEL that crosses the callee's 2xx: 200 to the CANCEL, 200 to the INVITE. */
  cancelrace: '17',
  /** Answers BYE with nothing (a callee gone away mid-call). */
  deadbye: '18',
  /** A 2xx without Contact: no dialog can be formed (RFC 3261 §12.1.2 needs the remote target). */
  nocontact: '19',
  /** After the ACK, a re-INVITE of its own towards the caller. */
  reinvite: '20',
  /** After the ACK, a re-INVITE of its own without SDP (the caller's 2xx offers, our ACK answers). */
  reinviteoffer: '21',
  /** Early media: 183 with SDP, then the 2xx with the same SDP. */
  early: '22',
  /** A reliable 183 (RFC 3262: Require: 100rel, RSeq) with SDP; the 2xx only once it is PRACKed. */
  prack: '23',
} as const;
type Mode = keyof typeof MODES;
const modeOf = (uri: string): Mode | undefined => (Object.keys(MODES) as Mode[]).find((k) => uri.includes(`+1555${MODES[k]}`));

interface CalleeDialog { mode: Mode; invite: RawMsg; tag: string; finalSent: boolean; byeSeq: number; open: Set<string> }

/** The core side: a UA that answers per mode and keeps every dialog (each To-tag) it answered
 *  until a BYE ends it. */
class Callee {
  readonly dialogs = new Map<string, CalleeDialog>();
  constructor(readonly ua: RawUa) {
    ua.onMessage((m) => this.handle(m));
  }

  private answer(d: CalleeDialog, tag = d.tag): void {
    d.finalSent = true;
    d.open.add(tag);
    this.ua.respond(d.invite, 200, 'OK', { toTag: tag, contact: true, body: offer(CORE_IP, 41000) });
  }

  private handle(m: RawMsg): void {
    const callId = hdr(m, 'call-id');
    const d = this.dialogs.get(callId);
    if (m.status > 0) {
      if (d && cseqOf(m).method === 'BYE') d.open.delete(tagOf(hdr(m, 'from')) ?? '');
      if (d && cseqOf(m).method === 'INVITE' && m.status >= 200 && m.status < 300) this.request(d, 'ACK', d.mode === 'reinviteoffer' ? offer(CORE_IP, 41006) : '');
      return;
    }
    switch (m.method) {
      case 'INVITE': {
        if (d && tagOf(hdr(m, 'to'))) { this.ua.respond(m, 200, 'OK', { toTag: d.tag, contact: true, body: offer(CORE_IP, 41000) }); return; }
        if (d) return; // a retransmission: the engine absorbs ours
        const mode = modeOf(m.uri) ?? 'answer';
        const nd: CalleeDialog = { mode, invite: m, tag: token(), finalSent: false, byeSeq: 1, open: new Set() };
        this.dialogs.set(callId, nd);
        if (mode === 'silent') return;
        if (mode === 'busy') { nd.finalSent = true; this.ua.respond(m, 486, 'Busy Here', { toTag: nd.tag }); return; }
        if (mode === 'early' || mode === 'prack') {
          this.ua.respond(m, 183, 'Session Progress', { toTag: nd.tag, contact: true, body: offer(CORE_IP, 41000), ...(mode === 'prack' ? { extra: 'Require: 100rel\r\nRSeq: 1\r\n' } : {}) });
          if (mode === 'early') this.answer(nd);
          return;
        }
        this.ua.respond(m, 180, 'Ringing', { toTag: nd.tag, contact: true });
        if (mode === 'ring' || mode === 'cancelrace') return;
        if (mode === 'nocontact') { nd.finalSent = true; nd.open.add(nd.tag); this.ua.respond(m, 200, 'OK', { toTag: nd.tag, body: offer(CORE_IP, 41000) }); return; }
        this.answer(nd);
        if (mode === 'fork') this.answer(nd, token());
        if (mode === 'byebeforeack') this.bye(nd);
        return;
      }
      case 'ACK':
        if (d === undefined || !d.open.has(d.tag) || cseqOf(m).seq !== cseqOf(d.invite).seq) return;
        if (d.mode === 'byefast') this.bye(d);
        if (d.mode === 'reinvite') this.request(d, 'INVITE', offer(CORE_IP, 41002));
        if (d.mode === 'reinviteoffer') this.request(d, 'INVITE');
        return;
      case 'BYE':
        if (d?.mode !== 'deadbye') this.ua.respond(m, 200, 'OK');
        d?.open.delete(tagOf(hdr(m, 'to')) ?? '');
        return;
      case 'CANCEL':
        this.ua.respond(m, 200, 'OK');
        if (d && !d.finalSent) {
          if (d.mode === 'cancelrace') { this.answer(d); return; }
          d.finalSent = true;
          this.ua.respond(d.invite, 487, 'Request Terminated', { toTag: d.tag });
        }
        return;
      case 'PRACK':
        this.ua.respond(m, 200, 'OK');
        if (d?.mode === 'prack' && !d.finalSent) this.answer(d);
        return;
      case 'UPDATE':
        // An offer gets an answer (RFC 3311 §5.2).
        this.ua.respond(m, 200, 'OK', { contact: true, ...(m.body ? { body: offer(CORE_IP, 41004) } : {}) });
        return;
      default:
        this.ua.respond(m, 200, 'OK');
    }
  }

  /** A request of the callee's inside dialog `d`, to the Contact of peergate's INVITE, in the
   *  callee's own CSeq space. */
  private request(d: CalleeDialog, method: string, body = ''): void {
    const target = /<([^>]+)>/.exec(hdr(d.invite, 'contact'))![1]!;
    const port = Number(/:(\d+)(?:;|$)/.exec(target)![1]);
    const seq = method === 'ACK' ? d.byeSeq : ++d.byeSeq;
    this.ua.send(`${method} ${target} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.ua.ip}:${this.ua.port};branch=z9hG4bK${token()}\r\nMax-Forwards: 70\r\n`
      + `From: ${hdr(d.invite, 'to')};tag=${d.tag}\r\nTo: ${hdr(d.invite, 'from')}\r\nCall-ID: ${hdr(d.invite, 'call-id')}\r\nCSeq: ${seq} ${method}\r\n`
      + (method === 'INVITE' ? `Contact: <sip:ua@${this.ua.ip}:${this.ua.port}>\r\n` : '')
      + `${body ? 'Content-Type: application/sdp\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, port, d.invite.from.address);
  }

  /** The callee hangs up. */
  private bye(d: CalleeDialog): void { this.request(d, 'BYE'); }

  /** Dialogs (Call-ID and To-tag) the callee answered that no BYE ended. */
  leftOpen(): string[] {
    return [...this.dialogs.entries()].flatMap(([id, d]) => [...d.open].map((t) => `${id};tag=${t} (${d.mode})`));
  }
}

const ok = (s: number) => s >= 200 && s < 300;
const final = (s: number) => s >= 200;

/** One peergate with its scripted caller and callee. */
interface Run {
  pg: RunningPeergate;
  caller: RawUa;
  callee: Callee;
  call(mode: Mode): RawCall;
  rtpe?: TestRtpengine;
  redis?: TestRedis;
}

const REDIS_PREFIX = 'pgorder:';

/** `anchored`: media through a real rtpengine and limits in a real Redis, so that their state
 *  is checked too. */
async function startRun(anchored: boolean): Promise<Run> {
  const [udp, core, ops] = await freePorts(3) as [number, number, number];
  const [rtpe, redis] = anchored ? await Promise.all([startRtpengine({ portSpan: 400 }), startRedis()]) : [undefined, undefined];
  const caller = await RawUa.open(PEER_IP);
  const callee = new Callee(await RawUa.open(CORE_IP));
  const pg = await startPeergate({
    listen: [listener('peer-udp', udp), listener('core-udp', core)],
    core: { targets: [`sip:${CORE_IP}:${callee.ua.port}`] }, ops: { port: ops },
    media: rtpe ? { rtpengine: [{ address: rtpe.address }] } : { anchoring: false },
    ...(redis ? { store: { redis: { url: redis.url, key_prefix: REDIS_PREFIX } } } : {}),
    engine: { sip_timers: { t1_ms: T1_MS, t2_ms: 4000, t4_ms: 5000 } },
    failover: { no_answer_ms: NO_ANSWER_MS },
    peers: [{ id: 'carrier', match: { addresses: [`${PEER_IP}/32`] }, limits: { sessions: 100 } }], routes: [{ from: 'peers', to: 'core' }],
  });
  // Each call's number is unique in its run: the callee's dialog of a call is found by it, and
  // two random numbers alike (1 in 10,000 per pair) would have a test wait on another call's dialog.
  let seq = 0;
  const call = (mode: Mode) => new RawCall(caller, `sip:+1555${MODES[mode]}${String(++seq).padStart(4, '0')}@127.0.0.1:${udp}`, { port: udp, address: '127.0.0.1' });
  return { pg, caller, callee, call, ...(rtpe ? { rtpe } : {}), ...(redis ? { redis } : {}) };
}

async function stopRun(x: Run | undefined): Promise<void> {
  if (!x) return;
  x.caller.close();
  x.callee.ua.close();
  await x.pg.stop();
  await Promise.all([x.rtpe?.stop(), x.redis?.stop()]);
}

/** INVITE with an offer, its 2xx, our ACK: a call up, callee in `mode`. */
async function established(x: Run, mode: Mode): Promise<RawCall> {
  const c = x.call(mode);
  c.invite(offer(PEER_IP));
  c.learn(await c.response('INVITE', ok, RESPONSE_MS));
  c.ack();
  return c;
}

/** The caller hangs up and gets 200. */
async function hangUp(c: RawCall): Promise<void> {
  c.request('BYE');
  await c.response('BYE', ok, RESPONSE_MS);
}

/** The INVITE's final answer is `status`; the caller ACKs it. */
async function failsWith(c: RawCall, status: number, timeoutMs = RESPONSE_MS): Promise<void> {
  const r = await c.response('INVITE', final, timeoutMs);
  expect(r.status).toBe(status);
  c.ackFailure(r);
}

/** The caller's side of each ordering; each resolves once its call is over for the x.caller. */
const ORDERINGS: Record<string, (x: Run) => Promise<void>> = {
  async normal(x) {
    const c = await established(x, 'answer');
    await hangUp(c);
  },
  async 'delayed offer, ACK with the answer'(x) {
    // The callee's 2xx carries the offer and the caller's ACK the answer: both cross the media
    // stage (rtpengine's address when anchored; as they were, identity fields aside, when not).
    const c = x.call('answer');
    const via = x.rtpe ? 'c=IN IP4 127.0.0.1' : undefined;
    c.invite();
    const r = await c.response('INVITE', ok, RESPONSE_MS);
    expect(r.body).toContain('m=audio');
    expect(r.body).toContain(via ?? `c=IN IP4 ${CORE_IP}`);
    c.learn(r);
    c.ack(offer(PEER_IP, 40002));
    const user = /sip:([^@]+)@/.exec(c.uri)![1]!;
    const bCallId = [...x.callee.dialogs].find(([, d]) => d.invite.uri.includes(user))![0];
    const ack = await x.callee.ua.wait((m) => m.method === 'ACK' && hdr(m, 'call-id') === bCallId, RESPONSE_MS, 'the ACK with the answer at the callee');
    expect(ack.body).toContain(via ?? 'm=audio 40002');
    if (via) expect(ack.body).not.toContain(PEER_IP);
    expect(ack.body).not.toContain('o=- 1 1 '); // the caller's own origin (offer()) does not cross
    await hangUp(c);
  },
  async 'delayed offer, ACK and BYE in one breath'(x) {
    const c = x.call('answer');
    c.invite();
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    c.ack(offer(PEER_IP, 40004));
    await hangUp(c);
  },
  async 'CANCEL before any response'(x) {
    const c = x.call('ring');
    c.invite(offer(PEER_IP));
    c.cancel();
    await c.response('CANCEL', ok, RESPONSE_MS);
    await failsWith(c, 487);
  },
  async 'CANCEL while ringing'(x) {
    const c = x.call('ring');
    c.invite(offer(PEER_IP));
    await c.response('INVITE', (s) => s === 180, RESPONSE_MS);
    c.cancel();
    await failsWith(c, 487);
  },
  async 'CANCEL and BYE at once while ringing'(x) {
    const c = x.call('ring');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', (s) => s === 180, RESPONSE_MS));
    c.cancel();
    c.request('BYE');
    const r = await c.response('INVITE', final, RESPONSE_MS);
    c.ackFailure(r);
    expect(r.status).toBe(487);
    await c.response('BYE', final, RESPONSE_MS);
  },
  async 'CANCEL after the 2xx'(x) {
    // Too late to cancel (RFC 3261 §9.2); like drachtio-server, the engine answers 481 and, the
    // 2xx not yet ACKed, ends the call with BYE (docs/wire-protocol.md, CANCEL).
    const c = x.call('answer');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    c.cancel();
    expect((await c.response('CANCEL', final, RESPONSE_MS)).status).toBe(481);
    c.ack();
    await c.answerIncoming('BYE', RESPONSE_MS);
  },
  async 'busy callee'(x) {
    const c = x.call('busy');
    c.invite(offer(PEER_IP));
    await failsWith(c, 486);
  },
  async 'silent callee'(x) {
    const c = x.call('silent');
    c.invite(offer(PEER_IP));
    const r = await c.response('INVITE', final, NO_ANSWER_MS + RESPONSE_MS);
    expect(r.status).toBeGreaterThanOrEqual(400);
    c.ackFailure(r);
  },
  async 'BYE without ACK'(x) {
    const c = x.call('answer');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    await hangUp(c);
  },
  async 'a 2xx never ACKed'(x) {
    const c = x.call('answer');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    // RFC 3261 §13.3.1.4: no ACK within 64×T1 and the UAS ends the dialog with BYE.
    await c.answerIncoming('BYE', WINDOW_MS + RESPONSE_MS);
  },
  async 'the callee hangs up after the ACK'(x) {
    const c = await established(x, 'byefast');
    await c.answerIncoming('BYE', RESPONSE_MS);
  },
  async 'the callee hangs up before its 2xx is ACKed'(x) {
    const c = await established(x, 'byebeforeack');
    await c.answerIncoming('BYE', RESPONSE_MS);
  },
  async 'the INVITE sent three times'(x) {
    const c = x.call('answer');
    for (let i = 0; i < 3; i++) c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    c.ack();
    c.request('BYE');
    await c.response('BYE', ok, RESPONSE_MS);
    const tags = new Set(x.caller.received.filter((m) => hdr(m, 'call-id') === c.callId && m.status === 200 && cseqOf(m).method === 'INVITE').map((m) => tagOf(hdr(m, 'to'))));
    expect(tags.size).toBe(1);
  },
  async 're-INVITE chased by BYE'(x) {
    const c = await established(x, 'answer');
    c.request('INVITE', offer(PEER_IP, 40006));
    c.request('BYE');
    await c.response('BYE', final, RESPONSE_MS);
    const re = await c.response('INVITE', (s) => final(s) && c.has('INVITE', ok), RESPONSE_MS).catch(() => undefined);
    if (re && re.status === 200 && cseqOf(re).seq === 2) c.ack('', 2);
  },
  async 'a forked answer: two 2xx with two To-tags'(x) {
    const c = await established(x, 'fork');
    await hangUp(c);
  },
  async 'CANCEL crossing the callee\'s 2xx'(x) {
    const c = x.call('cancelrace');
    c.invite(offer(PEER_IP));
    await c.response('INVITE', (s) => s === 180, RESPONSE_MS);
    c.cancel();
    await failsWith(c, 487);
  },
  async 'a callee that never answers the BYE'(x) {
    const c = await established(x, 'deadbye');
    await hangUp(c);
  },
  async 'a caller that never answers the callee\'s BYE'(x) {
    const c = await established(x, 'byefast');
    await x.caller.wait((m) => m.method === 'BYE' && hdr(m, 'call-id') === c.callId, RESPONSE_MS, 'BYE to a caller that stays silent');
  },
  async 'INFO in the middle of a call'(x) {
    const c = await established(x, 'answer');
    c.request('INFO');
    await c.response('INFO', final, RESPONSE_MS);
    await hangUp(c);
  },
  async 'a 2xx without Contact'(x) {
    // The target's leg is up all the same: peergate hangs it up (the callee's dialog check
    // below) and refuses the call in its own words, not drachtio-srf's.
    const c = x.call('nocontact');
    c.invite(offer(PEER_IP));
    const r = await c.response('INVITE', final, RESPONSE_MS);
    expect(r.raw.split('\r\n')[0]).toBe('SIP/2.0 502 Bad Gateway');
    expect(r.raw).not.toMatch(/no contact header/i);
    c.ackFailure(r);
  },
  async 'the callee re-INVITEs the caller'(x) {
    const c = await established(x, 'reinvite');
    const re = await x.caller.wait((m) => m.method === 'INVITE' && hdr(m, 'call-id') === c.callId, RESPONSE_MS, 're-INVITE towards the caller');
    x.caller.respond(re, 200, 'OK', { contact: true, body: offer(PEER_IP, 40008) });
    await x.caller.wait((m) => m.method === 'ACK' && hdr(m, 'call-id') === c.callId && cseqOf(m).seq === cseqOf(re).seq, RESPONSE_MS, 'ACK of the re-INVITE');
    await hangUp(c);
  },
  async 'the callee re-INVITEs the caller without SDP'(x) {
    const c = await established(x, 'reinviteoffer');
    const re = await x.caller.wait((m) => m.method === 'INVITE' && hdr(m, 'call-id') === c.callId, RESPONSE_MS, 're-INVITE towards the caller');
    x.caller.respond(re, 200, 'OK', { contact: true, body: offer(PEER_IP, 40012) });
    expect(re.body).toBe('');
    const ack = await x.caller.wait((m) => m.method === 'ACK' && hdr(m, 'call-id') === c.callId && cseqOf(m).seq === cseqOf(re).seq, RESPONSE_MS, 'ACK of the re-INVITE');
    // The callee's answer, through rtpengine when anchored.
    expect(ack.body).toContain(x.rtpe ? 'c=IN IP4 127.0.0.1' : 'm=audio 41006');
    await hangUp(c);
  },
  async 'a re-INVITE without SDP from the caller'(x) {
    const c = await established(x, 'answer');
    c.request('INVITE');
    // The callee's 2xx offers (through rtpengine when anchored); our ACK answers (RFC 3261 §14.1).
    const r = await x.caller.wait((m) => m.status === 200 && hdr(m, 'call-id') === c.callId && cseqOf(m).seq === 2, RESPONSE_MS, '2xx to the re-INVITE');
    expect(r.body).toContain(x.rtpe ? 'c=IN IP4 127.0.0.1' : `c=IN IP4 ${CORE_IP}`);
    c.ack(offer(PEER_IP, 40014), 2);
    const user = /sip:([^@]+)@/.exec(c.uri)![1]!;
    const bCallId = [...x.callee.dialogs].find(([, d]) => d.invite.uri.includes(user))![0];
    const ack = await x.callee.ua.wait((m) => m.method === 'ACK' && hdr(m, 'call-id') === bCallId && m.body !== '', RESPONSE_MS, 'the caller\'s answer in the ACK at the callee');
    expect(ack.body).toContain(x.rtpe ? 'c=IN IP4 127.0.0.1' : 'm=audio 40014');
    await hangUp(c);
  },
  async 'UPDATE with an offer in the middle of a call'(x) {
    const c = await established(x, 'answer');
    c.request('UPDATE', offer(PEER_IP, 40016));
    const u = await c.response('UPDATE', final, RESPONSE_MS);
    expect(u.status).toBe(200);
    // Offer and answer both cross the media stage, as a re-INVITE's do (RFC 3311).
    expect(u.body).toContain(x.rtpe ? 'c=IN IP4 127.0.0.1' : 'm=audio 41004');
    const user = /sip:([^@]+)@/.exec(c.uri)![1]!;
    const bCallId = [...x.callee.dialogs].find(([, d]) => d.invite.uri.includes(user))![0];
    const upd = x.callee.ua.received.find((m) => m.method === 'UPDATE' && hdr(m, 'call-id') === bCallId)!;
    expect(upd.body).toContain(x.rtpe ? 'c=IN IP4 127.0.0.1' : 'm=audio 40016');
    expect(upd.body).not.toContain('o=- 1 1 ');
    await hangUp(c);
  },
  async 'early media, then the answer'(x) {
    const c = x.call('early');
    c.invite(offer(PEER_IP));
    const early = await c.response('INVITE', (st) => st === 183, RESPONSE_MS);
    expect(early.body).toContain('m=audio');
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    c.ack();
    await hangUp(c);
  },
  async 'a reliable 183 from the callee (100rel): PRACKed, then answered'(x) {
    const c = x.call('prack');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', ok, RESPONSE_MS));
    c.ack();
    await hangUp(c);
  },
  async 'UPDATE while ringing, then CANCEL'(x) {
    const c = x.call('ring');
    c.invite(offer(PEER_IP));
    c.learn(await c.response('INVITE', (s) => s === 180, RESPONSE_MS));
    c.request('UPDATE', offer(PEER_IP, 40010));
    await c.response('UPDATE', final, RESPONSE_MS);
    c.cancel();
    await failsWith(c, 487);
  },
  async 'BYE twice'(x) {
    const c = await established(x, 'answer');
    c.request('BYE');
    await hangUp(c);
  },
};

/** Every ordering at once on `x`, then everything it kept must be gone. */
async function allOrderings(x: Run): Promise<void> {
  const { pg, caller, callee } = x;
  const callsBefore = await pg.metric('peergate_calls_total');
  const names = Object.keys(ORDERINGS).filter((n) => !process.env.ORDERINGS_ONLY || process.env.ORDERINGS_ONLY.split(',').some((o) => n.includes(o)));
  const results = await Promise.allSettled(names.map((n) => ORDERINGS[n]!(x)));
  const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`${names[i]}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []);
  if (failed.length) {
    // What peergate warned of goes with every failure (a rare one may not come back); every
    // message both sides received only when asked (ORDERINGS_DEBUG=1): it runs to hundreds of lines.
    if (process.env.ORDERINGS_DEBUG) for (const m of [...caller.received, ...callee.ua.received]) console.log(`${m.from.address}:${m.from.port} ${m.raw.split('\r\n').slice(0, 9).join(' | ')}`);
    console.log(pg.proc.output().split('\n').filter((l) => /"level":(40|50)|failed/.test(l)).join('\n'));
  }
  expect(failed).toEqual([]);

  // Every call ended and was counted exactly once. A delayed-offer call whose ACK drachtio-srf
  // never heard ends after 64×T1 + 2 s (b-leg.ts).
  await waitFor(async () => (await pg.metric('peergate_calls_total')) - callsBefore >= names.length, WINDOW_MS + RESPONSE_MS, 50, 'every call counted');
  await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, RESPONSE_MS, 50, 'no active call');
  await waitFor(async () => (await pg.metric('peergate_limit_sessions_local')) === 0, RESPONSE_MS, 50, 'every slot free');
  await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 0, RESPONSE_MS, 50, 'no engine dialog');
  expect(callee.leftOpen()).toEqual([]);
  if (x.rtpe) {
    const rtpe = x.rtpe;
    await waitFor(async () => (await pg.metric('peergate_media_sessions')) === 0, RESPONSE_MS, 50, 'no media session').catch(async (err: unknown) => {
      if (process.env.ORDERINGS_DEBUG) {
        const left = await rtpe.calls();
        console.log('MEDIA LEFT', left, pg.proc.output().split('\n').filter((l) => left.some((id) => l.includes(id))).join('\n'));
      }
      throw err;
    });
    expect(await x.rtpe.calls()).toEqual([]);
  }
  if (x.redis) {
    const keys = execFileSync('redis-cli', ['-p', String(x.redis.port), '--scan', '--pattern', `${REDIS_PREFIX}*sid*`]).toString().trim();
    expect(keys).toBe('');
  }
  // RFC 3261's windows pass (Timer H/J/K/L/M: 64×T1 or T4; Timer D: 32 s whatever T1, for
  // the ACKs of the 486 and 487s), and nothing is kept.
  await waitFor(async () => (await pg.metric('peergate_engine_server_transactions')) + (await pg.metric('peergate_engine_client_transactions')) === 0, TIMER_D_MS + 8000, 250, 'no transaction');
  expect((await pg.metric('peergate_calls_total')) - callsBefore).toBe(names.length);
  expect(pg.proc.output().split('\n').filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
}

describe('call orderings: nothing outlives its call', () => {
  it.concurrent('media not anchored, memory store: no call, slot, engine dialog, transaction or callee dialog is left', async () => {
    const x = await startRun(false);
    try { await allOrderings(x); } finally { await stopRun(x); }
  }, 120_000);

  it.concurrent('media anchored on rtpengine, limits in Redis: the same, and no media session or Redis session entry', async () => {
    const x = await startRun(true);
    try { await allOrderings(x); } finally { await stopRun(x); }
  }, 120_000);

  it.concurrent('a CANCEL read while rtpengine holds the offer: no B-leg goes out, the call ends canceled, nothing is left', async () => {
    // rtpengine stopped (SIGSTOP) for 400 ms, within the media stage's 1 s timeout: the offer
    // waits, the CANCEL is read meanwhile. drachtio-srf would still send the B-leg INVITE and,
    // having missed the CANCEL, never cancel it: the callee would ring for ever.
    const x = await startRun(true);
    try {
      const c = x.call('ring');
      const before = await x.pg.metric('peergate_calls_total', { result: 'canceled' });
      await stopProcessNow(x.rtpe!.proc.pid);
      try {
        c.invite(offer(PEER_IP));
        await new Promise((r) => setTimeout(r, 100));
        c.cancel();
        await c.response('CANCEL', ok, RESPONSE_MS);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        process.kill(x.rtpe!.proc.pid, 'SIGCONT');
      }
      const r = await c.response('INVITE', final, RESPONSE_MS);
      expect(r.status).toBe(487);
      c.ackFailure(r);
      await waitFor(async () => (await x.pg.metric('peergate_calls_total', { result: 'canceled' })) - before === 1, RESPONSE_MS, 50, 'the call ended canceled');
      await waitFor(async () => (await x.pg.metric('peergate_media_sessions')) === 0, RESPONSE_MS, 50, 'no media session');
      expect(await x.rtpe!.calls()).toEqual([]);
      expect(await x.pg.metric('peergate_limit_sessions_local')).toBe(0);
      // Either no INVITE reached the callee, or the one that did was canceled.
      expect(x.callee.leftOpen()).toEqual([]);
      const invited = [...x.callee.dialogs.values()];
      for (const d of invited) expect(d.finalSent).toBe(true);
    } finally { await stopRun(x); }
  }, 60_000);
});
