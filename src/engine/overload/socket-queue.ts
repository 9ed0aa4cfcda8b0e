// The kernel's receive queues of the UDP listeners: the backlog the event-loop lag cannot see.
//
// Why: at capacity the loop keeps running timers between reads, so its lag stays modest while
// datagrams wait in the socket's receive buffer for seconds (measured: an INVITE answered 100
// Trying 4.8 s after it arrived, at 50 ms lag) and then overflow it. A full buffer drops ACKs and
// BYEs as readily as INVITEs: a caller's lost BYE leaves its call up until a timer ends it.
//
// Contract: `UdpQueueProbe.read()` reports, over the sockets bound to the given local endpoints,
// the fullest receive queue (`rx_queue`, kernel-charged bytes, and its share of that socket's
// buffer: one busy listener must not hide behind idle ones) and the datagrams the kernel has dropped for
// want of room (`drops`, summed), from Linux's /proc/net/udp and udp6 (the caller's network
// namespace). Elsewhere, or when /proc cannot be read, `available` is false
// and read() returns undefined: the signal is then simply off.
import { readFileSync } from 'node:fs';
import { ipBytes } from '../transport/ip-bytes.js';
import { endianness } from 'node:os';
import type { Endpoint } from '../transport/types.js';

export interface UdpQueueSample {
  /** The fullest listener's share of its receive buffer in use now (0–1). */
  fill: number;
  /** The most bytes waiting in one listener's receive queue now (as the kernel charges them:
   *  ≈ 2.3 KB for a 900-byte INVITE over loopback, 1.3 KB for an ACK). */
  bytes: number;
  /** Datagrams dropped by the kernel so far, all listeners (a counter). */
  drops: number;
}

/** A listener and its socket's receive buffer size (bytes as the kernel charges them). */
export interface UdpListenerBuffer { local: Endpoint; bytes: number }

const FILES = ['/proc/net/udp', '/proc/net/udp6'] as const;

export class UdpQueueProbe {
  /** `ADDR:PORT` in /proc's spelling of each UDP listener (IPv4 and IPv6 tables) → its buffer size. */
  private readonly keys: Map<string, number>;
  readonly available: boolean;

  constructor(listeners: readonly UdpListenerBuffer[]) {
    this.keys = new Map(listeners.filter((l) => l.local.protocol === 'udp').map((l) => [procKey(l.local), l.bytes]));
    this.available = this.keys.size > 0 && this.readTables() !== undefined;
  }

  read(): UdpQueueSample | undefined {
    if (!this.available) return undefined;
    const tables = this.readTables();
    if (tables === undefined) return undefined;
    let fill = 0;
    let bytes = 0;
    let drops = 0;
    for (const text of tables) {
      // A line: `sl: LOCAL REMOTE st TX:RX tr tm->when retrnsmt uid timeout inode ref pointer drops`.
      // Only our sockets' lines are split (the table lists every UDP socket of the namespace).
      for (const [key, buffer] of this.keys) {
        for (let at = text.indexOf(` ${key} `); at >= 0; at = text.indexOf(` ${key} `, at + 1)) {
          // The local address is the field after `sl:` (a connected socket's remote one may match too).
          const start = text.lastIndexOf('\n', at) + 1;
          if (text.slice(start, at).trim().slice(-1) !== ':') continue;
          const end = text.indexOf('\n', at);
          const f = text.slice(at, end < 0 ? text.length : end).trim().split(/\s+/);
          if (f.length < 12) continue;
          const queued = parseInt(f[3]!.split(':')[1] ?? '0', 16) || 0;
          bytes = Math.max(bytes, queued);
          if (buffer > 0) fill = Math.max(fill, Math.min(1, queued / buffer));
          drops += Number(f[f.length - 1]) || 0;
        }
      }
    }
    return { fill, bytes, drops };
  }

  private readTables(): string[] | undefined {
    const out: string[] = [];
    for (const f of FILES) {
      try { out.push(readFileSync(f, 'latin1')); } catch { /* no IPv6 table, or not Linux */ }
    }
    return out.length > 0 ? out : undefined;
  }
}

/** /proc/net/udp spelling of a local endpoint: the address as the kernel stores it (32-bit
 *  words in host order) then the port, both in upper-case hex. */
export function procKey(e: Pick<Endpoint, 'address' | 'port'>): string {
  const port = e.port.toString(16).toUpperCase().padStart(4, '0');
  const bytes = ipBytes(e.address) ?? Buffer.alloc(4);
  let words = '';
  // The kernel prints each 32-bit word in host order: on a little-endian machine its first
  // byte ends up last.
  for (let w = 0; w < bytes.length; w += 4) {
    const word = bytes.subarray(w, w + 4);
    words += (LITTLE_ENDIAN ? Buffer.from(word).reverse() : word).toString('hex').toUpperCase();
  }
  return `${words}:${port}`;
}

const LITTLE_ENDIAN = endianness() === 'LE';
