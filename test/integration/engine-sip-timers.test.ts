// Policy engine.sip_timers (RFC 3261 §17.1.1.1: T1 may be set lower on a network with a known
// smaller round-trip time) reaches the embedded engine in both process modes. An INVITE with
// Max-Forwards: 0 is answered 483 by the B2BUA and never ACKed by this socket, so the engine's
// INVITE server transaction retransmits the 483 on Timer G (T1, doubling up to T2) and gives up
// on Timer H (64*T1): with T1 = 100 ms the first retransmission comes after ~100 ms (not 500) and
// the transaction is gone after ~6.4 s (not 32 s). The RFC defaults themselves are checked with a
// fake clock in test/unit/transaction (Timer B/F/H at 32,000 ms).
import { describe, expect, it, afterAll } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { freePorts, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { startTwoSided } from '../helpers/peergate.js';

afterAll(stopAll);

const T1 = 100;

function invite(port: number, tag: string): Buffer {
  return Buffer.from(`INVITE sip:+15550001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:${port};branch=z9hG4bK-t1-${tag}\r\n` +
    `Max-Forwards: 0\r\nFrom: <sip:t1@127.0.0.2>;tag=${tag}\r\nTo: <sip:+15550001@127.0.0.1>\r\nCall-ID: t1-${tag}@127.0.0.2\r\n` +
    `CSeq: 1 INVITE\r\nContact: <sip:t1@127.0.0.2:${port}>\r\nContent-Length: 0\r\n\r\n`);
}

async function timerGAndH(workers: number): Promise<void> {
  const [uasPort] = await freePorts(1) as [number];
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1']);
  const { pg, peerPort } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, {
    media: { anchoring: false }, workers, engine: { sip_timers: { t1_ms: T1 } },
  });
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.2', () => r()));
  const at: number[] = []; // arrival times of the 483 and its retransmissions
  sock.on('message', (m) => { if (m.toString('latin1').startsWith('SIP/2.0 483')) at.push(Date.now()); });
  try {
    const t0 = Date.now();
    sock.send(invite(sock.address().port, `w${workers}`), peerPort, '127.0.0.1');
    await waitFor(() => at.length >= 3, 5000, 20, 'the 483 and two retransmissions');
    // Timer G: T1, then 2*T1 (at the RFC's 500 ms the first gap alone would be 500 ms).
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(T1 - 20);
    expect(at[1]! - at[0]!).toBeLessThan(400);
    expect(at[2]! - at[1]!).toBeLessThan(700);
    expect(await pg.metric('peergate_engine_server_transactions')).toBe(1);
    // Timer H: gone at 64*T1 = 6.4 s after the 483, well before the default 32 s.
    await waitFor(async () => (await pg.metric('peergate_engine_server_transactions')) === 0, 15_000, 100, 'Timer H');
    const gone = Date.now() - t0;
    expect(gone).toBeGreaterThanOrEqual(64 * T1 - 200);
    expect(gone).toBeLessThan(15_000);
    // Retransmissions stop with Timer H: 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s (G capped at T2 = 4 s).
    const n = at.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(at.length).toBe(n);
    expect(n - 1).toBeGreaterThanOrEqual(5);
    expect(n - 1).toBeLessThanOrEqual(7);
  } finally {
    sock.close();
    await pg.stop();
  }
}

describe('engine.sip_timers: a smaller T1 shortens Timers G and H', () => {
  it('workers: 1 (the B2BUA in the engine\'s process) and workers: 2, side by side', async () => {
    await Promise.all([timerGAndH(1), timerGAndH(2)]);
  }, 60_000);
});
