// A HEPv3 decoder for tests, written from the HEP3/EEP specification independently of
// src/engine/capture/hep.ts, plus a UDP collector on loopback that keeps what it receives.
import { createSocket, type Socket } from 'node:dgram';

export interface HepPacket {
  family: number;
  ipProto: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  timeSec: number;
  timeUsec: number;
  protoType: number;
  captureId: number;
  authKey?: string;
  correlationId?: string;
  payload: string;
  /** Every chunk as [vendor, type, value]. */
  chunks: Array<[number, number, Buffer]>;
}

function ip(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** Decode one HEP3 datagram; throws on anything malformed. */
export function decodeHep(buf: Buffer): HepPacket {
  if (buf.length < 6 || buf.toString('ascii', 0, 4) !== 'HEP3') throw new Error('not HEP3');
  const total = buf.readUInt16BE(4);
  if (total !== buf.length) throw new Error(`length field ${total} != datagram ${buf.length}`);
  const chunks: Array<[number, number, Buffer]> = [];
  let o = 6;
  while (o < total) {
    if (o + 6 > total) throw new Error('truncated chunk header');
    const vendor = buf.readUInt16BE(o);
    const type = buf.readUInt16BE(o + 2);
    const len = buf.readUInt16BE(o + 4);
    if (len < 6 || o + len > total) throw new Error(`bad chunk length ${len} at ${o}`);
    chunks.push([vendor, type, buf.subarray(o + 6, o + len)]);
    o += len;
  }
  const get = (t: number) => chunks.find(([v, ty]) => v === 0 && ty === t)?.[2];
  const need = (t: number) => { const v = get(t); if (!v) throw new Error(`chunk ${t} missing`); return v; };
  const family = need(1).readUInt8(0);
  const auth = get(14);
  const corr = get(17);
  return {
    family,
    ipProto: need(2).readUInt8(0),
    src: ip(family === 2 ? need(3) : need(5)),
    dst: ip(family === 2 ? need(4) : need(6)),
    srcPort: need(7).readUInt16BE(0),
    dstPort: need(8).readUInt16BE(0),
    timeSec: need(9).readUInt32BE(0),
    timeUsec: need(10).readUInt32BE(0),
    protoType: need(11).readUInt8(0),
    captureId: need(12).readUInt32BE(0),
    ...(auth ? { authKey: auth.toString('utf8') } : {}),
    ...(corr ? { correlationId: corr.toString('utf8') } : {}),
    payload: need(15).toString('utf8'),
    chunks,
  };
}

export interface HepCollector {
  port: number;
  packets: HepPacket[];
  /** Datagrams that did not decode, with why. */
  errors: string[];
  close(): Promise<void>;
}

export async function startHepCollector(): Promise<HepCollector> {
  const socket: Socket = createSocket('udp4');
  const c: HepCollector = {
    port: 0, packets: [], errors: [],
    close: () => new Promise((r) => socket.close(() => r())),
  };
  socket.on('message', (m) => {
    try { c.packets.push(decodeHep(m)); } catch (err) { c.errors.push((err as Error).message); }
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  c.port = socket.address().port;
  return c;
}
