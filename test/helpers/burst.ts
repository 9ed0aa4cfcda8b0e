// A UDP socket on 127.0.0.2 that sends bursts of raw SIP to peergate and records the answers by
// status and Call-ID: the overload tests' load source where SIPp cannot send while the node is
// stopped (SIGSTOP) or cannot send faster than its rate.
import { createSocket, type Socket } from 'node:dgram';
import { heldCalls, waitFor, type SippResult } from './procs.js';
import type { RunningPeergate } from './peergate.js';

/** Overload policy keys that keep the node's own lag, the app's backlog (setups pending) and the
 *  workers' delay from ever setting the loss (high marks out of reach, or off): a test spreads
 *  this and names the one signal under test. */
export const LAG_BACKLOG_SIGNALS_OFF = Object.freeze({
  lag_high_ms: 10_000, lag_low_ms: 5_000, pending_high: 1_000_000, pending_low: 1_000_000, worker_lag_high_ms: 0, worker_lag_low_ms: 0,
});
/** The receive-queue law off as well. */
export const RECEIVE_QUEUE_OFF = Object.freeze({ queue_high_kib: 0, queue_low_kib: 0 });

/** An INVITE outside any dialog with Max-Forwards 0: one the gate admits is answered 483 by the B2BUA, no B-leg. */
export function burstInvite(name: string, i: number, port: number): Buffer {
  return Buffer.from(`INVITE sip:+15550001@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:${port};branch=z9hG4bK-${name}-${i}\r\n` +
    `Max-Forwards: 0\r\nFrom: <sip:${name}@127.0.0.2>;tag=b${i}\r\nTo: <sip:+15550001@127.0.0.1>\r\nCall-ID: ${name}-${i}@127.0.0.2\r\n` +
    `CSeq: 1 INVITE\r\nContact: <sip:${name}@127.0.0.2:${port}>\r\nContent-Length: 0\r\n\r\n`);
}

/** `peergate_shed_total{reason}` from a /metrics text (NaN when absent). */
export function shedCount(metrics: string, reason: string): number {
  return Number(new RegExp(`^peergate_shed_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
}

export interface Burst {
  readonly socket: Socket;
  readonly port: number;
  /** Call-IDs answered, by status (final responses of never-ACKed INVITEs are retransmitted: counted once). */
  answered(status: number): number;
  /** Call-IDs whose 503 carried Retry-After. */
  readonly retryAfter: Set<string>;
  send(messages: readonly Buffer[], peerPort: number): Promise<void>;
  close(): void;
}

/** `onFirst(status, callId)`: each status's first answer for a Call-ID, as it arrives. */
export async function openBurst(onFirst?: (status: number, callId: string) => void): Promise<Burst> {
  // The gate's 503s are stateless (RFC 3261 §8.2.7): one lost here is never resent, and this
  // client does not retransmit its INVITEs (Timer A) as a real UAC would. A buffer the whole
  // burst's answers fit in (≈ 1.3 KB of kernel charge each; the kernel doubles what is asked,
  // capped by net.core.rmem_max).
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.2', () => r()));
  const answers = new Map<number, Set<string>>();
  const retryAfter = new Set<string>();
  socket.on('message', (m) => {
    const text = m.toString('latin1');
    const status = Number(text.slice(8, 11));
    const callId = /\r\nCall-ID: (\S+)\r\n/i.exec(text)?.[1] ?? '';
    if (!answers.has(status)) answers.set(status, new Set());
    const seen = answers.get(status)!;
    if (!seen.has(callId)) onFirst?.(status, callId);
    seen.add(callId);
    if (status === 503 && /\r\nRetry-After: \d+\r\n/i.test(text)) retryAfter.add(callId);
  });
  return {
    socket, port: socket.address().port, retryAfter,
    answered: (status) => answers.get(status)?.size ?? 0,
    send: async (messages, peerPort) => {
      await Promise.all(messages.map((b) => new Promise<void>((r) => socket.send(b, peerPort, '127.0.0.1', () => r()))));
    },
    close: () => socket.close(),
  };
}

/**
 * Five calls held 3 s through `target`; once they are up, peergate is stopped (SIGSTOP) while each
 * batch of `batches` goes to its listener and the held calls' BYEs leave SIPp 3 s later, behind
 * them in the receive queue; then it runs again (SIGCONT, after `onResume`). Resolves with the
 * held calls' SIPp run once it ends.
 */
export async function burstBehindHeldCalls(pg: RunningPeergate, target: string, burst: Burst, peerPort: number,
  batches: readonly (readonly Buffer[])[], onResume?: () => void): Promise<SippResult> {
  const held = heldCalls(target, '127.0.0.2', 5, 3000);
  await waitFor(async () => (await pg.metric('peergate_active_calls')) === 5, 10_000, 50, 'five calls up');
  process.kill(pg.proc.pid, 'SIGSTOP');
  try {
    for (const batch of batches) await burst.send(batch, peerPort);
    await new Promise((r) => setTimeout(r, 3000)); // the held calls' BYEs join the queue, behind the burst
  } finally {
    onResume?.();
    process.kill(pg.proc.pid, 'SIGCONT');
  }
  return held;
}

/** What a burst must not leave behind once RFC 3261's timers ran. */
const LEFT = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_limit_sessions_local', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions'];

/**
 * Calls, dialogs, limit slots and transactions back to zero within Timer H (64·T1: the burst never
 * ACKs its 483-answered INVITEs; the refused ones left no transaction) and some slack; the counts
 * as they are at the end.
 */
export async function countsLeft(pg: RunningPeergate, t1Ms: number): Promise<Record<string, number>> {
  const counts = async () => Object.fromEntries(await Promise.all(LEFT.map(async (n) => [n, await pg.metric(n)] as const)));
  await waitFor(async () => Object.values(await counts()).every((v) => v === 0), 64 * t1Ms + 13_000, 250, 'every count back to zero').catch(() => undefined);
  return counts();
}

export const NOTHING_LEFT: Readonly<Record<string, number>> = Object.freeze(Object.fromEntries(LEFT.map((n) => [n, 0])));
