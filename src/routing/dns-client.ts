// A stub resolver (RFC 1034 §5.3.1) that asks the policy's recursive resolvers and reports
// what node:dns cannot: the AD bit (RFC 4035 §3.2.3, RFC 6840 §5.7), and whether the
// resolver it came from is one whose AD bit we believe (a loopback one by default).
//
// Contract:
//   query(name, type, {dnssec}) → never throws; a bounded result:
//     { ok: true, rcode: NOERROR|NXDOMAIN, records, authenticated, ttl }  (records: the
//       question's type at the end of the CNAME chain; ttl: the smallest in the chain)
//     { ok: false, error }  (timeout, servfail, refused, malformed, too_large, cname_loop, …)
//   - UDP first, TCP when the answer is truncated (RFC 7766); each exchange has a deadline.
//   - A response counts only if it comes from the resolver asked, with our id and question;
//     anything else on the socket is ignored (RFC 5452 §9.1).
//   - Bounded: 64 KiB per message, MAX_RECORDS records, MAX_CNAME_HOPS names followed.
//   - Every failure increments peergate_dns_errors_total{reason}.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as tcpConnect } from 'node:net';
import { isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import type * as Packet from 'dns-packet';
import { counter } from '../ops/metrics.js';
import { lazyPackage } from '../lazy-package.js';

/** dns-packet is loaded at the first query: a policy whose targets are all addresses never needs it. */
const packet = lazyPackage<typeof Packet>('dns-packet');

export type RecordType = 'A' | 'AAAA' | 'SRV' | 'NAPTR';

export interface SrvRecord { priority: number; weight: number; port: number; target: string }
export interface NaptrRecord { order: number; preference: number; flags: string; services: string; regexp: string; replacement: string }
export type RecordData<T extends RecordType> = T extends 'A' | 'AAAA' ? string : T extends 'SRV' ? SrvRecord : NaptrRecord;

export type DnsErrorKind = 'timeout' | 'servfail' | 'refused' | 'malformed' | 'too_large' | 'cname_loop' | 'network' | 'bad_name';

export type DnsResult<T extends RecordType> =
  | { ok: true; rcode: 'NOERROR' | 'NXDOMAIN'; records: RecordData<T>[]; authenticated: boolean; ttl: number }
  | { ok: false; error: DnsErrorKind };

export interface Resolver { address: string; port: number }

export interface DnsClientOptions {
  resolvers: Resolver[];
  /** Resolvers whose AD bit is believed. */
  trusted: (r: Resolver) => boolean;
  timeoutMs: number;
  attempts: number;
}

const MAX_MESSAGE = 65_535;
export const MAX_RECORDS = 256;
export const MAX_CNAME_HOPS = 8;
// RFC 8020/RFC 1035 names: 253 characters written out; labels 63.
const NAME = /^(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$/;

export const dnsQueriesTotal = counter('peergate_dns_queries_total', 'DNS lookups sent to resolvers by record type and result', ['type', 'result']);
export const dnsErrorsTotal = counter('peergate_dns_errors_total', 'DNS failures by reason', ['reason']);

/** A host name we are willing to ask about or to route to (LDH labels, bounded length). */
export function isDnsName(s: string): boolean {
  return NAME.test(s);
}

/** A resource record as dns-packet decodes it (OPT has no ttl/data; we never read OPT here). */
type Rr = { type: string; name: string; ttl?: number; data?: unknown };

export class DnsClient {
  constructor(private readonly opts: DnsClientOptions) {}

  async query<T extends RecordType>(name: string, type: T, o: { dnssec: boolean }): Promise<DnsResult<T>> {
    const r = await this.lookup(name, type, o.dnssec);
    dnsQueriesTotal.inc({ type, result: r.ok ? r.rcode.toLowerCase() : r.error });
    if (!r.ok) dnsErrorsTotal.inc({ reason: r.error });
    return r;
  }

  private async lookup<T extends RecordType>(name: string, type: T, dnssec: boolean): Promise<DnsResult<T>> {
    if (!isDnsName(name)) return { ok: false, error: 'bad_name' };
    let current = name.replace(/\.$/, '').toLowerCase();
    const m = await this.exchange(current, type, dnssec);
    if ('error' in m) return { ok: false, error: m.error };
    const rcode = m.msg.rcode;
    if (rcode === 'REFUSED') return { ok: false, error: 'refused' };
    if (rcode !== 'NOERROR' && rcode !== 'NXDOMAIN') return { ok: false, error: 'servfail' };
    const answers = (m.msg.answers ?? []) as Rr[];
    // A recursive resolver answers with the whole CNAME chain (RFC 1034 §3.6.2): walk it,
    // refusing a loop or a chain longer than MAX_CNAME_HOPS.
    const seen = new Set<string>([current]);
    let ttl = Number.MAX_SAFE_INTEGER;
    for (;;) {
      const own = answers.filter((a) => a.type === type && a.name.toLowerCase() === current);
      if (own.length > 0) {
        for (const a of own) ttl = Math.min(ttl, a.ttl ?? 0);
        return { ok: true, rcode: 'NOERROR', records: own.map((a) => a.data) as RecordData<T>[], authenticated: m.authenticated, ttl };
      }
      const cname = answers.find((a) => a.type === 'CNAME' && a.name.toLowerCase() === current);
      if (!cname) break;
      const next = String(cname.data).replace(/\.$/, '').toLowerCase();
      if (seen.has(next) || seen.size > MAX_CNAME_HOPS) return { ok: false, error: 'cname_loop' };
      if (!isDnsName(next)) return { ok: false, error: 'malformed' };
      seen.add(next);
      ttl = Math.min(ttl, cname.ttl ?? 0);
      current = next;
    }
    // No such name, or no such record: the negative TTL is the SOA's (RFC 2308 §5).
    const soa = ((m.msg.authorities ?? []) as Rr[]).find((a) => a.type === 'SOA');
    const negTtl = soa ? Math.min(soa.ttl ?? 0, (soa.data as { minimum?: number }).minimum ?? 0) : 0;
    return { ok: true, rcode, records: [], authenticated: m.authenticated, ttl: negTtl };
  }

  /** One question, answered by the first resolver that answers, within attempts × resolvers tries. */
  private async exchange(name: string, type: RecordType, dnssec: boolean): Promise<{ msg: Packet.DecodedPacket & { rcode?: string }; authenticated: boolean } | { error: DnsErrorKind }> {
    let last: DnsErrorKind = 'timeout';
    for (let attempt = 0; attempt < this.opts.attempts; attempt++) {
      for (const resolver of this.opts.resolvers) {
        const id = randomInt(0, 65_536);
        const pk = packet();
        const query = pk.encode({
          type: 'query', id,
          // RD; AD in a query asks for the AD bit in the answer (RFC 6840 §5.7).
          flags: pk.RECURSION_DESIRED | (dnssec ? pk.AUTHENTIC_DATA : 0),
          questions: [{ type, name, class: 'IN' }],
          additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnssec ? pk.DNSSEC_OK : 0 } as Packet.Answer],
        });
        let r = await udpExchange(resolver, query, this.opts.timeoutMs);
        if (r.ok) {
          const checked = checkResponse(r.data, id, name, type);
          if ('error' in checked) { last = checked.error; continue; }
          if (!checked.msg.flag_tc) return { msg: checked.msg, authenticated: checked.msg.flag_ad && this.opts.trusted(resolver) };
          // Truncated: the same question over TCP (RFC 7766 §5).
          r = await tcpExchange(resolver, query, this.opts.timeoutMs);
          if (r.ok) {
            const t = checkResponse(r.data, id, name, type);
            if ('error' in t) { last = t.error; continue; }
            return { msg: t.msg, authenticated: t.msg.flag_ad && this.opts.trusted(resolver) };
          }
        }
        last = r.ok ? last : r.error;
      }
    }
    return { error: last };
  }
}

function checkResponse(data: Buffer, id: number, name: string, type: RecordType): { msg: Packet.DecodedPacket & { rcode?: string } } | { error: DnsErrorKind } {
  let msg: Packet.DecodedPacket & { rcode?: string };
  try { msg = packet().decode(data) as Packet.DecodedPacket & { rcode?: string }; } catch { return { error: 'malformed' }; }
  const q = msg.questions?.[0];
  if (msg.id !== id || !msg.flag_qr || !q || q.type !== type || q.name.toLowerCase() !== name.toLowerCase()) return { error: 'malformed' };
  const count = (msg.answers?.length ?? 0) + (msg.authorities?.length ?? 0) + (msg.additionals?.length ?? 0);
  if (count > MAX_RECORDS) return { error: 'too_large' };
  return { msg };
}

type Exchange = { ok: true; data: Buffer } | { ok: false; error: DnsErrorKind };

function udpExchange(r: Resolver, query: Buffer, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    let sock: UdpSocket;
    try { sock = createSocket(isIP(r.address) === 6 ? 'udp6' : 'udp4'); } catch { resolve({ ok: false, error: 'network' }); return; }
    let done = false;
    const finish = (x: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* already closed */ }
      resolve(x);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    sock.on('error', () => finish({ ok: false, error: 'network' }));
    sock.on('message', (msg, rinfo) => {
      // Only the resolver we asked; checkResponse then matches id and question.
      if (rinfo.address !== r.address || rinfo.port !== r.port) return;
      finish({ ok: true, data: msg });
    });
    sock.send(query, r.port, r.address, (err) => { if (err) finish({ ok: false, error: 'network' }); });
  });
}

function tcpExchange(r: Resolver, query: Buffer, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: r.address, port: r.port });
    const chunks: Buffer[] = [];
    let have = 0;
    let done = false;
    const finish = (x: Exchange) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(x);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    sock.on('error', () => finish({ ok: false, error: 'network' }));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      have += d.length;
      if (have > MAX_MESSAGE + 2) { finish({ ok: false, error: 'too_large' }); return; }
      if (have < 2) return;
      const all = Buffer.concat(chunks);
      const want = all.readUInt16BE(0);
      if (all.length >= want + 2) finish({ ok: true, data: all.subarray(2, want + 2) });
    });
    sock.on('end', () => finish({ ok: false, error: 'malformed' }));
  });
}
