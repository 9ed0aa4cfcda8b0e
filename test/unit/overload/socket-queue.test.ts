// The UDP receive-queue probe against the real kernel: a socket whose process does not read
// (its event loop blocked in spawnSync while a child sends) fills its queue, then drops.
import { describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { UdpQueueProbe, procKey } from '../../../src/engine/overload/index.js';

function bind(type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type, recvBufferSize: 65536 });
    s.once('error', reject);
    s.bind(0, address, () => resolve(s));
  });
}

/** Send `n` datagrams of `size` bytes from a child process while this process's loop is blocked. */
function flood(address: string, port: number, n: number, size: number): void {
  const script = `const d=require('node:dgram');const s=d.createSocket('${address.includes(':') ? 'udp6' : 'udp4'}');let i=0;const b=Buffer.alloc(${size},65);
    (function go(){for(let k=0;k<50&&i<${n};k++,i++)s.send(b,${port},'${address}');if(i<${n})setImmediate(go);else setTimeout(()=>s.close(),200);})();`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  expect(r.status).toBe(0);
}

describe.skipIf(!existsSync('/proc/net/udp'))('UDP receive-queue probe (/proc/net/udp)', () => {
  it('sees the bytes waiting in an unread socket and the datagrams the kernel dropped', async () => {
    const s = await bind('udp4', '127.0.0.1');
    const other = await bind('udp4', '127.0.0.1');
    try {
      let received = 0;
      s.on('message', () => { received++; });
      const buffer = s.getRecvBufferSize();
      const probe = new UdpQueueProbe([
        { local: { protocol: 'udp', address: '127.0.0.1', port: s.address().port }, bytes: buffer },
        { local: { protocol: 'udp', address: '127.0.0.1', port: other.address().port }, bytes: other.getRecvBufferSize() },
      ]);
      expect(probe.available).toBe(true);
      expect(probe.read()).toEqual({ fill: 0, bytes: 0, drops: 0 });
      flood('127.0.0.1', s.address().port, 2000, 500);
      // Still blocked since the child ran: nothing was read yet.
      const full = probe.read()!;
      expect(received).toBe(0);
      // The fullest listener counts, not an average with the idle one.
      expect(full.fill).toBeGreaterThan(0.5);
      expect(full.fill).toBeLessThanOrEqual(1);
      // Bytes as the kernel charges them: at least the payloads, and the share is of the buffer.
      expect(full.bytes).toBeGreaterThan(500 * 10);
      expect(full.fill).toBeCloseTo(Math.min(1, full.bytes / buffer), 6);
      expect(full.drops).toBeGreaterThan(0);
      // Another socket's queue is not counted.
      expect(new UdpQueueProbe([{ local: { protocol: 'udp', address: '127.0.0.1', port: other.address().port }, bytes: 65536 }]).read()).toEqual({ fill: 0, bytes: 0, drops: 0 });
      // Once the loop reads, the queue empties; the drop counter stays.
      for (let i = 0; i < 50 && probe.read()!.fill > 0; i++) await new Promise((r) => setTimeout(r, 20));
      const after = probe.read()!;
      expect(after.fill).toBe(0);
      expect(after.bytes).toBe(0);
      expect(after.drops).toBe(full.drops);
      expect(received).toBeGreaterThan(0);
    } finally {
      s.close();
      other.close();
    }
  });

  it('finds IPv6 listeners (udp6 table) by the kernel spelling of the address', async () => {
    const s = await bind('udp6', '::1').catch(() => undefined);
    if (!s) return; // no IPv6 loopback here
    try {
      const probe = new UdpQueueProbe([{ local: { protocol: 'udp', address: '::1', port: s.address().port }, bytes: s.getRecvBufferSize() }]);
      flood('::1', s.address().port, 20, 200);
      expect(probe.read()!.fill).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('spells addresses as the kernel prints them', () => {
    expect(procKey({ address: '127.0.0.1', port: 5060 })).toBe('0100007F:13C4');
    expect(procKey({ address: '0.0.0.0', port: 5061 })).toBe('00000000:13C5');
    expect(procKey({ address: '::1', port: 5060 })).toBe('00000000000000000000000001000000:13C4');
    expect(procKey({ address: '::', port: 1 })).toBe('00000000000000000000000000000000:0001');
    expect(procKey({ address: '2001:db8::1', port: 5060 })).toBe('B80D0120000000000000000001000000:13C4');
  });

  it('is off for listeners that are not UDP', () => {
    const probe = new UdpQueueProbe([{ local: { protocol: 'tcp', address: '127.0.0.1', port: 5060 }, bytes: 65536 }]);
    expect(probe.available).toBe(false);
    expect(probe.read()).toBeUndefined();
  });
});
