// Golden-trace replay for the engine: feed the APP->SERVER and NETWORK->SERVER entries of a
// drachtio trace (test/fixtures/drachtio-traces) and compare what the engine sends to the
// app and to the network with the SERVER->APP / SERVER->NETWORK entries, after masking ids,
// tags, branches, server CSeq numbers, RSeq, times, byte counts, versions and ports. Ids the
// engine mints are learned on first sight and must stay consistent (e.g. an ACK must carry the
// INVITE's transaction id exactly where the trace does).
import { readFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { FrameDecoder, encodeFrame } from '../../src/engine/wire/framing.js';
import { startEngine, type Engine } from '../../src/engine/engine.js';
import type { Clock } from '../../src/engine/transport/types.js';
import { freePort } from './procs.js';
import { StreamReader } from './engine-sip.js';

export type Dir = 'APP->SERVER' | 'SERVER->APP' | 'NETWORK->SERVER' | 'SERVER->NETWORK' | 'CLOSED';
export interface Entry { n: number; dir: Dir; raw: boolean; note: string; data: string; section: string }

const MARKER = /^==== #(\d+) (APP->SERVER|SERVER->APP|NETWORK->SERVER|SERVER->NETWORK|CLOSED)(.*?) ====$/;

/** Parse a trace file (it contains CR characters; byte counts are exact). */
export function parseTrace(path: string): Entry[] {
  const buf = readFileSync(path);
  const out: Entry[] = [];
  let pos = 0;
  let section = '';
  while (pos < buf.length) {
    let eol = buf.indexOf(0x0a, pos);
    if (eol < 0) eol = buf.length;
    const line = buf.toString('utf8', pos, eol);
    pos = eol + 1;
    if (line.startsWith('## ')) { section = line.slice(3, 5).replace('.', '').trim(); continue; }
    const m = MARKER.exec(line);
    if (!m) continue;
    const n = Number(m[1]);
    const dir = m[2] as Dir;
    const note = m[3] ?? '';
    const raw = / RAW/.test(note);
    let data = '';
    if (dir === 'CLOSED') {
      data = '';
    } else if (dir === 'NETWORK->SERVER' || dir === 'SERVER->NETWORK') {
      const bytes = Number(/\((\d+) bytes/.exec(note)?.[1]);
      data = buf.toString('utf8', pos, pos + bytes);
      pos += bytes + 1;
    } else if (raw) {
      let e = buf.indexOf(0x0a, pos);
      if (e < 0) e = buf.length;
      data = buf.toString('utf8', pos, e);
      pos = e + 1;
    } else {
      const hash = buf.indexOf(0x23, pos);
      const len = Number(buf.toString('latin1', pos, hash));
      data = buf.toString('utf8', hash + 1, hash + 1 + len);
      pos = hash + 1 + len + 1;
    }
    out.push({ n, dir, raw, note, data, section });
  }
  return out;
}

/** Timers run only when the test advances them; now() moves with them. */
export class FakeClock implements Clock {
  private t = Date.now();
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  /** Fire the earliest timer (and any due with it). False when none is pending. */
  advanceToNext(): boolean {
    let best: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.timers) if (!best || e[1].at < best[1].at || (e[1].at === best[1].at && e[0] < best[0])) best = e;
    if (!best) return false;
    this.t = Math.max(this.t, best[1].at);
    this.timers.delete(best[0]);
    best[1].fn();
    return true;
  }
}

type Kind = 'uuid' | 'branch' | 'tag' | 'cseq' | 'rseq';
const ID_RE = new RegExp([
  '(?<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})',
  '(?<time>\\d\\d:\\d\\d:\\d\\d\\.\\d{6})',
  '(?<branch>z9hG4bK[A-Za-z0-9]{13})(?![A-Za-z0-9])',
  '(?<=tag=)(?<tag>[A-Za-z0-9]{13})(?![A-Za-z0-9])',
  '(?<=CSeq: )(?<cseq>\\d{9})(?= )',
  '(?<=(?:RSeq|RAck): )(?<rseq>\\d+)',
  '(?<version>v0\\.9\\.10-[^|\\r\\n]*)',
  '(?<hostports>(?:(?:tcp|udp|tls)/127\\.0\\.0\\.1:\\d+,?)+)',
].join('|'), 'g');

/** Mask ids; returns the masked text and the ids in order. */
export function mask(s: string): { text: string; ids: Array<[Kind, string]> } {
  const ids: Array<[Kind, string]> = [];
  let text = s.replace(ID_RE, (...args) => {
    const groups = args[args.length - 1] as Record<string, string | undefined>;
    for (const k of ['uuid', 'branch', 'tag', 'cseq', 'rseq'] as const) {
      if (groups[k] !== undefined) { ids.push([k, groups[k]!]); return `<${k}>`; }
    }
    if (groups.time !== undefined) return '<time>';
    if (groups.version !== undefined) return '<version>';
    return '<hostports>';
  });
  // Byte counts in leaders.
  text = text.replace(/^([^\r\n]*?\|sip\|(?:network|application)\|)\d+\|/, '$1<bytes>|')
    .replace(/^([^\r\n]*?\|response\|[^|]*\|OK\|application\|)\d+\|/, '$1<bytes>|');
  return { text, ids };
}

export interface GoldenConfig {
  trace: string;
  /** Sections to replay ('A', 'B', …); default all. */
  sections?: string[];
  /** Entry numbers not replayed (inputs not sent, outputs not expected), with the reason in the test. */
  skip?: number[];
  /** Trace ports of the server's own SIP listener(s). */
  serverPorts: number[];
  /** Trace ports of UDP peers (bound sockets), TCP peers (connect to the engine), closed ports. */
  udpPeers?: number[];
  tcpPeers?: number[];
  closedPorts?: number[];
  /** Routes the pre-authenticated default app connection registers ([] = authenticate only; undefined = no default connection). */
  routes?: string[];
  /** Labelled connections to authenticate before their first entry. */
  preauth?: string[];
  /** TLS-only engine (trace 06): server key/cert, client CA; TLS peers present the client cert. */
  tls?: { key: Buffer; cert: Buffer; ca: Buffer; clientKey: Buffer; clientCert: Buffer };
  tlsPeers?: number[];
}

export interface Mismatch { n: number; dir: Dir; expected: string; actual: string; why: string }

class AppConn {
  frames: string[] = [];
  closed = false;
  private d = new FrameDecoder();
  constructor(readonly sock: Socket) {
    sock.on('data', (b) => this.frames.push(...this.d.push(b).frames));
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Replay one trace; returns the mismatches (empty = identical up to masking). */
export async function replay(cfg: GoldenConfig): Promise<{ mismatches: Mismatch[]; checked: number }> {
  const entries = parseTrace(cfg.trace).filter((e) => (!cfg.sections || cfg.sections.includes(e.section)) && !(cfg.skip ?? []).includes(e.n));
  const clock = new FakeClock();
  const sipPort = await freePort();
  const engine: Engine = await startEngine({
    contacts: [cfg.tls ? `sips:127.0.0.1:${sipPort};transport=tls` : `sip:127.0.0.1:${sipPort};transport=udp,tcp`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: 'cymru' },
    clock,
    ...(cfg.tls ? { tls: { key: cfg.tls.key, cert: cfg.tls.cert, clientCAs: [cfg.tls.ca], requireClientCert: true } } : {}),
  });
  const ports = new Map<number, number>(); // trace → actual
  for (const p of cfg.serverPorts) ports.set(p, sipPort);
  const netQueue: Array<{ text: string; from: number }> = [];
  const udp = new Map<number, UdpSocket>();
  const tcp = new Map<number, StreamReader>();
  const conns = new Map<string, AppConn>();
  const ids = new Map<string, string>(); // expected → actual
  const mismatches: Mismatch[] = [];
  let checked = 0;
  let lastPeer: number | undefined; // trace port of the peer that last received from the engine
  try {
    for (const tp of cfg.udpPeers ?? []) {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      const ap = s.address().port;
      s.on('message', (m) => { netQueue.push({ text: m.toString('utf8'), from: tp }); });
      udp.set(tp, s);
      ports.set(tp, ap);
    }
    for (const tp of cfg.closedPorts ?? []) ports.set(tp, await freePort());
    for (const tp of [...(cfg.tcpPeers ?? []), ...(cfg.tlsPeers ?? [])]) {
      const t = cfg.tls;
      const s = (cfg.tlsPeers ?? []).includes(tp) && t
        ? tlsConnect({ host: '127.0.0.1', port: sipPort, ca: t.ca, key: t.clientKey, cert: t.clientCert, checkServerIdentity: () => undefined })
        : connect({ host: '127.0.0.1', port: sipPort });
      await new Promise((r) => s.once(s instanceof Socket && !('encrypted' in s) ? 'connect' : 'secureConnect', r));
      const reader = new StreamReader(s);
      tcp.set(tp, reader);
      ports.set(tp, s.localPort!);
      // Move messages from the reader into the shared network queue as they arrive.
      const pump = setInterval(() => { while (reader.messages.length) netQueue.push({ text: reader.messages.shift()!, from: tp }); }, 5);
      s.once('close', () => clearInterval(pump));
    }
    const toActual = (s: string): string => {
      for (const [e, a] of ids) s = s.split(e).join(a);
      for (const [t, a] of ports) s = s.replace(new RegExp(`\\b${t}\\b`, 'g'), String(a));
      return s;
    };
    /** Our ports back to trace ports; the server port becomes `serverPort` (traces use two). */
    const toTrace = (s: string, serverPort: number): string => {
      for (const [t, a] of ports) {
        if (a === sipPort) continue;
        s = s.replace(new RegExp(`\\b${a}\\b`, 'g'), String(t));
      }
      return s.replace(new RegExp(`\\b${sipPort}\\b`, 'g'), String(serverPort));
    };
    // drachtio omits the port 5060 in its Via; our test port is never 5060.
    const via5060 = (s: string) => (cfg.serverPorts.includes(5060) ? s.replace(/(SIP\/2\.0\/UDP 127\.0\.0\.1);rport/g, '$1:5060;rport') : s);
    const openConn = async (label: string, auth: boolean, routes: string[] = []) => {
      const s = connect({ host: '127.0.0.1', port: engine.wirePort });
      await new Promise((r) => s.once('connect', r));
      const c = new AppConn(s);
      conns.set(label, c);
      if (auth) {
        s.write(encodeFrame('pre-auth|authenticate|cymru|'));
        for (const r of routes) s.write(encodeFrame(`pre-route-${r}|route|${r}`));
        const want = 1 + routes.length;
        for (let i = 0; i < 200 && c.frames.length < want; i++) await sleep(5);
        c.frames.splice(0, want);
      }
      return c;
    };
    let current = 'default';
    if (cfg.routes) await openConn('default', true, cfg.routes);
    const connFor = async (e: Entry): Promise<AppConn> => {
      const m = /\(connection (\w+)/.exec(e.note);
      if (m) current = m[1]!;
      return conns.get(current) ?? openConn(current, (cfg.preauth ?? []).includes(current));
    };
    /** Wait for an item; after a quiet spell, let the fake clock run its next timer. */
    const await1 = async <T>(take: () => T | undefined): Promise<T | undefined> => {
      for (let i = 0; i < 400; i++) {
        const v = take();
        if (v !== undefined) return v;
        await sleep(10);
        if (i % 15 === 14 && !clock.advanceToNext() && i > 150) break;
      }
      return undefined;
    };
    const compare = (e: Entry, actualRaw: string) => {
      checked++;
      // The engine adds the TLS identity header for verified clients; drachtio-server has none.
      actualRaw = actualRaw.replace(/\r\nX-Peergate-TLS-Identity: [^\r]*/, '');
      const me = mask(via5060(e.data));
      let ma = mask(toTrace(actualRaw, cfg.serverPorts[0]!));
      for (const sp of cfg.serverPorts.slice(1)) {
        if (me.text === ma.text) break;
        ma = mask(toTrace(actualRaw, sp));
      }
      if (me.text !== ma.text) { mismatches.push({ n: e.n, dir: e.dir, expected: me.text, actual: ma.text, why: 'text differs' }); return; }
      for (let i = 0; i < me.ids.length; i++) {
        const [kind, ev] = me.ids[i]!;
        // drachtio's CSeq counter repeats values across requests (trace 04 #22/#25): mask only.
        if (kind === 'cseq') continue;
        const [, av] = ma.ids[i]!;
        const known = ids.get(ev);
        if (known === undefined) {
          // A trace id seen the first time is bound to ours; two different trace ids may not share one of ours.
          if ([...ids.values()].includes(av) && !ids.has(ev)) {
            mismatches.push({ n: e.n, dir: e.dir, expected: ev, actual: av, why: 'one engine id stands for two trace ids' });
            return;
          }
          ids.set(ev, av);
        } else if (known !== av) {
          mismatches.push({ n: e.n, dir: e.dir, expected: `${ev} (= ${known})`, actual: av, why: 'id not consistent with earlier use' });
          return;
        }
      }
    };

    const uncaptured = new Set<string>();
    const fedCallIds = new Set<string>();
    for (const e of entries) {
      const callIdOf = (x: string) => /^(?:Call-ID|i):\s*(.*)$/im.exec(x)?.[1]?.trim() ?? '';
      if (e.dir === 'NETWORK->SERVER') fedCallIds.add(callIdOf(e.data));
      if (e.dir === 'SERVER->APP' && !fedCallIds.has(callIdOf(e.data)) && /^[^|]*\|sip\|network\|(?:[^|]*\|){8}\d+\|\r\n/.test(e.data)) {
        // The network side was not captured (trace 02 B): send the request as received, i.e.
        // the frame's SIP message with the engine's rport stamp taken off again.
        const sip = e.data.slice(e.data.indexOf('\r\n') + 2).replace(/;rport=\d+/, ';rport');
        const peer = Number(/^Via: SIP\/2\.0\/\w+ [^:;\s]+:(\d+)/m.exec(sip)?.[1]);
        const sock = udp.get(peer);
        if (!sock) throw new Error(`entry #${e.n}: no UDP peer for trace port ${peer}`);
        await new Promise<void>((r) => sock.send(Buffer.from(toActual(sip), 'utf8'), sipPort, '127.0.0.1', () => r()));
        // Its responses were not captured either: keep them out of the comparison.
        uncaptured.add(/^Call-ID:\s*(.*)$/m.exec(sip)?.[1]?.trim() ?? '');
      }
      if (e.dir === 'APP->SERVER') {
        const c = await connFor(e);
        const data = toActual(e.data);
        c.sock.write(e.raw ? Buffer.from(data, 'utf8') : encodeFrame(data));
        await sleep(e.raw ? 60 : 15);
      } else if (e.dir === 'SERVER->APP') {
        const c = await connFor(e);
        const f = await await1(() => c.frames.shift());
        if (f === undefined) { mismatches.push({ n: e.n, dir: e.dir, expected: e.data, actual: '(nothing)', why: 'missing frame' }); continue; }
        compare(e, f);
      } else if (e.dir === 'CLOSED') {
        const c = await connFor(e);
        for (let i = 0; i < 200 && !c.closed; i++) await sleep(10);
        checked++;
        if (!c.closed) mismatches.push({ n: e.n, dir: e.dir, expected: 'closed', actual: 'open', why: 'connection not closed' });
        if (c.frames.length) mismatches.push({ n: e.n, dir: e.dir, expected: '(no more frames)', actual: c.frames.join(' || '), why: 'extra frames before close' });
      } else if (e.dir === 'NETWORK->SERVER') {
        const isResponse = e.data.startsWith('SIP/2.0 ');
        const via = /^Via: SIP\/2\.0\/(\w+) [^:;\s]+:(\d+)/m.exec(e.data);
        const peer = isResponse ? lastPeer : Number(via?.[2]);
        const data = toActual(via5060(e.data));
        if (peer !== undefined && tcp.has(peer)) tcp.get(peer)!.write(data);
        else if (peer !== undefined && udp.has(peer)) await new Promise<void>((r) => udp.get(peer)!.send(Buffer.from(data, 'utf8'), sipPort, '127.0.0.1', () => r()));
        else throw new Error(`entry #${e.n}: no peer socket for trace port ${peer}`);
        await sleep(20);
      } else {
        const m = await await1(() => {
          for (;;) {
            const x = netQueue.shift();
            if (!x || !uncaptured.has(/^Call-ID:\s*(.*)$/m.exec(x.text)?.[1]?.trim() ?? '')) return x;
          }
        });
        if (m === undefined) { mismatches.push({ n: e.n, dir: e.dir, expected: e.data, actual: '(nothing)', why: 'missing network message' }); continue; }
        lastPeer = m.from;
        compare(e, m.text);
      }
    }
  } finally {
    for (const c of conns.values()) c.sock.destroy();
    for (const s of udp.values()) s.close();
    for (const r of tcp.values()) r.sock.destroy();
    await engine.close();
  }
  return { mismatches, checked };
}
