// Test media endpoints: plain RTP over UDP on 127.0.0.1, SDES-SRTP with node:crypto
// (RFC 3711: AES-CM-128 with HMAC-SHA1-80/32, key derivation rate 0), and DTLS-SRTP with
// werift-dtls as the DTLS server (rtpengine is the DTLS client when it answers setup:active).
import { createCipheriv, createHmac, randomBytes, timingSafeEqual, createHash, X509Certificate } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createRequire } from 'node:module';

// ---------- RTP ----------

export interface RtpFields { pt: number; seq: number; ts: number; ssrc: number; payload: Buffer; marker?: boolean }

export function rtpPacket(f: RtpFields): Buffer {
  const b = Buffer.alloc(12 + f.payload.length);
  b[0] = 0x80;
  b[1] = (f.marker ? 0x80 : 0) | (f.pt & 0x7f);
  b.writeUInt16BE(f.seq & 0xffff, 2);
  b.writeUInt32BE(f.ts >>> 0, 4);
  b.writeUInt32BE(f.ssrc >>> 0, 8);
  f.payload.copy(b, 12);
  return b;
}

/** Header length including CSRCs and the header extension (RFC 3550 §5.3.1). */
export function rtpHeaderLength(b: Buffer): number {
  if (b.length < 12) throw new Error('short RTP packet');
  let n = 12 + (b[0]! & 0x0f) * 4;
  if (b[0]! & 0x10) n += 4 + b.readUInt16BE(n + 2) * 4;
  return n;
}

export function parseRtp(b: Buffer): RtpFields {
  const h = rtpHeaderLength(b);
  return { pt: b[1]! & 0x7f, marker: (b[1]! & 0x80) !== 0, seq: b.readUInt16BE(2), ts: b.readUInt32BE(4), ssrc: b.readUInt32BE(8), payload: b.subarray(h) };
}

// ---------- SRTP (RFC 3711) ----------

function aesCtr(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const c = createCipheriv(`aes-${key.length * 8}-ctr`, key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}

/** RFC 3711 §4.3.1 key derivation with kdr = 0. */
function derive(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const x = Buffer.from(masterSalt);
  x[7] = x[7]! ^ label;
  const iv = Buffer.concat([x, Buffer.alloc(2)]);
  return aesCtr(masterKey, iv, Buffer.alloc(length));
}

/** One direction of an SRTP stream with AES_CM_128_HMAC_SHA1_80 (tag 10) or _32 (tag 4). */
export class Srtp {
  private readonly encKey: Buffer;
  private readonly authKey: Buffer;
  private readonly salt: Buffer;
  private readonly rtcpEncKey: Buffer;
  private readonly rtcpAuthKey: Buffer;
  private readonly rtcpSalt: Buffer;
  private rtcpIndex = 0;
  constructor(masterKey: Buffer, masterSalt: Buffer, readonly tagLength: 10 | 4 = 10) {
    if (masterKey.length !== 16 || masterSalt.length !== 14) throw new Error('AES_CM_128 needs a 16-byte key and a 14-byte salt');
    this.encKey = derive(masterKey, masterSalt, 0, 16);
    this.authKey = derive(masterKey, masterSalt, 1, 20);
    this.salt = derive(masterKey, masterSalt, 2, 14);
    this.rtcpEncKey = derive(masterKey, masterSalt, 3, 16);
    this.rtcpAuthKey = derive(masterKey, masterSalt, 4, 20);
    this.rtcpSalt = derive(masterKey, masterSalt, 5, 14);
  }

  /** From an SDES `inline:` key (base64 of key || salt), e.g. taken from an a=crypto line. */
  static fromInline(inline: string, suite = 'AES_CM_128_HMAC_SHA1_80'): Srtp {
    const raw = Buffer.from(inline.replace(/^inline:/, '').split('|')[0]!, 'base64');
    if (suite !== 'AES_CM_128_HMAC_SHA1_80' && suite !== 'AES_CM_128_HMAC_SHA1_32') throw new Error(`test SRTP does not implement ${suite}`);
    return new Srtp(raw.subarray(0, 16), raw.subarray(16, 30), suite.endsWith('_32') ? 4 : 10);
  }

  private iv(ssrc: number, index: bigint, salt = this.salt): Buffer {
    const iv = Buffer.concat([salt, Buffer.alloc(2)]);
    const s = Buffer.alloc(4);
    s.writeUInt32BE(ssrc >>> 0);
    for (let i = 0; i < 4; i++) iv[4 + i] = iv[4 + i]! ^ s[i]!;
    const idx = Buffer.alloc(8);
    idx.writeBigUInt64BE(index);
    for (let i = 0; i < 6; i++) iv[8 + i] = iv[8 + i]! ^ idx[2 + i]!;
    return iv;
  }

  private tag(authed: Buffer, roc: number): Buffer {
    const r = Buffer.alloc(4);
    r.writeUInt32BE(roc >>> 0);
    return createHmac('sha1', this.authKey).update(authed).update(r).digest().subarray(0, this.tagLength);
  }

  /** Encrypt and authenticate an RTP packet (rollover counter `roc`, 0 in short tests). */
  protect(rtp: Buffer, roc = 0): Buffer {
    const h = rtpHeaderLength(rtp);
    const ssrc = rtp.readUInt32BE(8);
    const index = (BigInt(roc) << 16n) | BigInt(rtp.readUInt16BE(2));
    const body = aesCtr(this.encKey, this.iv(ssrc, index), rtp.subarray(h));
    const authed = Buffer.concat([rtp.subarray(0, h), body]);
    return Buffer.concat([authed, this.tag(authed, roc)]);
  }

  /** Verify and decrypt; undefined when the authentication tag is wrong. */
  unprotect(srtp: Buffer, roc = 0): Buffer | undefined {
    if (srtp.length < 12 + this.tagLength) return undefined;
    const authed = srtp.subarray(0, srtp.length - this.tagLength);
    const got = srtp.subarray(srtp.length - this.tagLength);
    if (!timingSafeEqual(got, this.tag(authed, roc))) return undefined;
    const h = rtpHeaderLength(authed);
    const index = (BigInt(roc) << 16n) | BigInt(authed.readUInt16BE(2));
    const body = aesCtr(this.encKey, this.iv(authed.readUInt32BE(8), index), authed.subarray(h));
    return Buffer.concat([authed.subarray(0, h), body]);
  }

  /** SRTCP (RFC 3711 §3.4): encrypted, E flag + 31-bit index after the packet, 80-bit tag. */
  protectRtcp(rtcp: Buffer): Buffer {
    this.rtcpIndex = (this.rtcpIndex + 1) & 0x7fffffff;
    const index = this.rtcpIndex;
    const body = aesCtr(this.rtcpEncKey, this.iv(rtcp.readUInt32BE(4), BigInt(index), this.rtcpSalt), rtcp.subarray(8));
    const e = Buffer.alloc(4);
    e.writeUInt32BE((0x80000000 | index) >>> 0);
    const authed = Buffer.concat([rtcp.subarray(0, 8), body, e]);
    return Buffer.concat([authed, createHmac('sha1', this.rtcpAuthKey).update(authed).digest().subarray(0, 10)]);
  }

  /** Verify and (when the E flag says so) decrypt an SRTCP packet; undefined on a bad tag. */
  unprotectRtcp(srtcp: Buffer): SrtcpOpened | undefined {
    if (srtcp.length < 8 + 4 + 10) return undefined;
    const authed = srtcp.subarray(0, srtcp.length - 10);
    const tag = createHmac('sha1', this.rtcpAuthKey).update(authed).digest().subarray(0, 10);
    if (!timingSafeEqual(tag, srtcp.subarray(srtcp.length - 10))) return undefined;
    const eIndex = authed.readUInt32BE(authed.length - 4);
    const encrypted = (eIndex & 0x80000000) !== 0;
    const index = eIndex & 0x7fffffff;
    const payload = authed.subarray(8, authed.length - 4);
    const clear = encrypted ? aesCtr(this.rtcpEncKey, this.iv(authed.readUInt32BE(4), BigInt(index), this.rtcpSalt), payload) : payload;
    return { rtcp: Buffer.concat([authed.subarray(0, 8), clear]), encrypted, index };
  }
}

export interface SrtcpOpened {
  /** The decrypted compound RTCP packet. */
  rtcp: Buffer;
  /** The E flag: the packet was encrypted (RFC 3711 §3.4). */
  encrypted: boolean;
  index: number;
}


/** A receiver report (RFC 3550 §6.4.2) with one report block, and an SDES CNAME. */
export function rtcpReceiverReport(ssrc: number, mediaSsrc: number, cname = 'tester@127.0.0.1'): Buffer {
  const rr = Buffer.alloc(8 + 24);
  rr[0] = 0x81; rr[1] = 201; rr.writeUInt16BE(rr.length / 4 - 1, 2);
  rr.writeUInt32BE(ssrc >>> 0, 4);
  rr.writeUInt32BE(mediaSsrc >>> 0, 8);
  rr.writeUInt32BE(1000, 16); // extended highest sequence number
  const item = Buffer.concat([Buffer.from([1, cname.length]), Buffer.from(cname)]);
  const padded = Buffer.alloc(Math.ceil((4 + 4 + item.length + 1) / 4) * 4);
  padded[0] = 0x81; padded[1] = 202; padded.writeUInt16BE(padded.length / 4 - 1, 2);
  padded.writeUInt32BE(ssrc >>> 0, 4);
  item.copy(padded, 8);
  return Buffer.concat([rr, padded]);
}

/** A fresh SDES inline key: base64(16-byte key || 14-byte salt). */
export function newInlineKey(): string {
  return randomBytes(30).toString('base64');
}

/** The a=crypto lines of an SDP, parsed. */
export function sdpCrypto(sdp: string): { tag: string; suite: string; inline: string; params: string[] }[] {
  const out: { tag: string; suite: string; inline: string; params: string[] }[] = [];
  for (const l of sdp.split(/\r?\n/)) {
    const m = /^a=crypto:(\d+) (\S+) inline:(\S+)(?: (.*))?$/.exec(l);
    if (m) out.push({ tag: m[1]!, suite: m[2]!, inline: m[3]!, params: m[4] ? m[4].split(' ') : [] });
  }
  return out;
}

/** The first m= line's port and the connection address of an SDP. */
export function sdpMediaAddress(sdp: string): { address: string; port: number; proto: string } {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+) (\S+)/m.exec(sdp);
  if (!c || !m) throw new Error(`no audio address in SDP:\n${sdp}`);
  return { address: c[1]!.split('/')[0]!, port: Number(m[1]), proto: m[2]! };
}

export interface AudioSdpOptions {
  port: number;
  proto?: string;
  address?: string;
  origin?: string;
  /** Extra media-level lines, without line ends. */
  lines?: string[];
  formats?: number[];
}

/** A one-stream audio SDP (PCMU + telephone-event) for test endpoints. */
export function audioSdp(o: AudioSdpOptions): string {
  const fmts = o.formats ?? [0, 101];
  const lines = [
    'v=0',
    `o=${o.origin ?? 'tester 4242 1 IN IP4 127.0.0.1'}`,
    's=-',
    `c=IN IP4 ${o.address ?? '127.0.0.1'}`,
    't=0 0',
    `m=audio ${o.port} ${o.proto ?? 'RTP/AVP'} ${fmts.join(' ')}`,
    ...(fmts.includes(0) ? ['a=rtpmap:0 PCMU/8000'] : []),
    ...(fmts.includes(8) ? ['a=rtpmap:8 PCMA/8000'] : []),
    ...(fmts.includes(101) ? ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16'] : []),
    ...(o.lines ?? []),
    'a=sendrecv',
  ];
  return lines.join('\r\n') + '\r\n';
}

// ---------- UDP endpoints ----------

export interface Received { data: Buffer; address: string; port: number; at: number }

/** A UDP socket on 127.0.0.1 that records what it receives. */
export class RtpEndpoint {
  readonly received: Received[] = [];
  /** Packets not taken by `intercept` (e.g. DTLS records) land in `received`. */
  intercept: ((data: Buffer, address: string, port: number) => boolean) | undefined;
  private constructor(readonly socket: Socket, readonly port: number) {
    socket.on('message', (data, rinfo) => {
      if (this.intercept?.(data, rinfo.address, rinfo.port)) return;
      this.received.push({ data, address: rinfo.address, port: rinfo.port, at: Date.now() });
    });
  }

  /** An even RTP port and the RTCP port above it (RFC 3550 §11), both bound; bounded attempts. */
  static async openPair(): Promise<{ rtp: RtpEndpoint; rtcp: RtpEndpoint }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const rtp = await RtpEndpoint.open();
      const s = createSocket('udp4');
      const ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.bind(rtp.port + 1, '127.0.0.1', () => resolve(true));
      });
      if (ok) return { rtp, rtcp: new RtpEndpoint(s, rtp.port + 1) };
      s.close();
      await rtp.close();
    }
    throw new Error('could not bind an RTP/RTCP port pair');
  }

  /** Bind an even port (RTP), so RTCP's port+1 convention holds; bounded attempts. */
  static async open(): Promise<RtpEndpoint> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const s = createSocket('udp4');
      const port = await new Promise<number>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, '127.0.0.1', () => resolve(s.address().port));
      }).catch(() => -1);
      if (port > 0 && port % 2 === 0) return new RtpEndpoint(s, port);
      s.close();
    }
    throw new Error('could not bind an even UDP port');
  }

  send(data: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, address, (e) => (e ? reject(e) : resolve())));
  }

  /** Wait until at least `n` packets arrived (bounded); returns what arrived. */
  async waitFor(n: number, timeoutMs = 2000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.received;
  }

  /** Let in-flight packets arrive, then return everything received since `from`. */
  async settle(ms = 300, from = 0): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.received.slice(from);
  }

  close(): Promise<void> {
    return new Promise((resolve) => { try { this.socket.close(() => resolve()); } catch { resolve(); } });
  }
}

/** `count` RTP packets with 160-byte random payloads (PCMU, 20 ms), sequence from `seq0`. */
export function makeStream(count: number, ssrc: number, seq0 = 1000): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(rtpPacket({ pt: 0, seq: seq0 + i, ts: 160 * i, ssrc, payload: randomBytes(160) }));
  return out;
}

/** Send packets with a small gap (rtpengine is userspace; avoid bursts on a shared machine). */
export async function sendAll(ep: RtpEndpoint, packets: Buffer[], port: number, gapMs = 5): Promise<void> {
  for (const p of packets) {
    await ep.send(p, port);
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

// ---------- DTLS-SRTP (werift-dtls) ----------

// werift-dtls 0.5.8's package main does not exist; load the implementation file directly.
const require = createRequire(import.meta.url);
const dtls = require('werift-dtls/lib/dtls/src/index.js') as {
  DtlsServer: new (o: Record<string, unknown>) => DtlsSocketLike;
  CipherContext: { createSelfSignedCertificateWithKey(sh: { hash: number; signature: number }, curve: number): Promise<{ certPem: string; keyPem: string; signatureHash: { hash: number; signature: number } }> };
};
interface DtlsSocketLike {
  onConnect: { subscribe(cb: () => void): void };
  onError: { subscribe(cb: (e: Error) => void): void };
  extractSessionKeys(keyLength: number, saltLength: number): { localKey: Buffer; localSalt: Buffer; remoteKey: Buffer; remoteSalt: Buffer };
  srtp: { srtpProfile?: number };
  close(): void;
}

/**
 * A DTLS-SRTP endpoint on an RtpEndpoint: DTLS records (first byte 20–63, RFC 7983) go to a
 * werift DtlsServer, everything else is recorded as media. After the handshake, `tx`/`rx`
 * hold the SRTP contexts derived from the DTLS exporter (RFC 5764 §4.2).
 */
export class DtlsSrtpPeer {
  tx: Srtp | undefined;
  rx: Srtp | undefined;
  readonly connected: Promise<void>;
  private server: DtlsSocketLike | undefined;
  private constructor(readonly ep: RtpEndpoint, readonly fingerprint: string, certPem: string, keyPem: string, signatureHash: unknown) {
    let remote: [string, number] | undefined;
    const transport = {
      type: 'udp',
      closed: false,
      get address() { return { address: '127.0.0.1', port: ep.port, family: 'IPv4' }; },
      onData: (_d: Buffer, _a: readonly [string, number]) => undefined as void,
      send: (data: Buffer, addr?: readonly [string, number]) => {
        const to = addr ?? remote;
        if (!to) return Promise.resolve();
        return ep.send(data, to[1], to[0]);
      },
      close: () => Promise.resolve(),
    };
    ep.intercept = (data, address, port) => {
      const b = data[0]!;
      if (b < 20 || b > 63) return false;
      remote = [address, port];
      transport.onData(data, [address, port]);
      return true;
    };
    this.server = new dtls.DtlsServer({ transport, cert: certPem, key: keyPem, signatureHash, srtpProfiles: [1], certificateRequest: true });
    this.connected = new Promise<void>((resolve, reject) => {
      this.server!.onConnect.subscribe(() => {
        const k = this.server!.extractSessionKeys(16, 14);
        this.tx = new Srtp(k.localKey, k.localSalt);
        this.rx = new Srtp(k.remoteKey, k.remoteSalt);
        resolve();
      });
      this.server!.onError.subscribe((e) => reject(e));
    });
    this.connected.catch(() => undefined);
  }

  static async open(): Promise<DtlsSrtpPeer> {
    const ep = await RtpEndpoint.open();
    // ECDSA P-256 (hash sha256 = 4, signature ecdsa = 3, curve secp256r1 = 23).
    const { certPem, keyPem, signatureHash } = await dtls.CipherContext.createSelfSignedCertificateWithKey({ hash: 4, signature: 3 }, 23);
    const der = new X509Certificate(certPem).raw;
    const fp = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
    return new DtlsSrtpPeer(ep, fp, certPem, keyPem, signatureHash);
  }

  /** SDP lines announcing this endpoint as DTLS-SRTP, letting the other side pick the role. */
  sdpLines(setup = 'actpass'): string[] {
    return [`a=setup:${setup}`, `a=fingerprint:sha-256 ${this.fingerprint}`];
  }

  get srtpProfile(): number | undefined { return this.server?.srtp.srtpProfile; }

  async close(): Promise<void> {
    try { this.server?.close(); } catch { /* already closed */ }
    this.server = undefined;
    await this.ep.close();
  }
}
