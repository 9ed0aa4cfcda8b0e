// How the policy reaches a B2BUA worker: its JSON text on a socket of its own (the fork's fd 4),
// framed as [u32 seq][u32 byte length][UTF-8 text]; the IPC channel's hello and reload carry only
// the seq. Why not the IPC channel itself: node's JSON IPC stringifies every message again (so
// each quote of the policy text is escaped once more) and hands the whole string to the kernel
// before it returns, on the primary's event loop, the one that reads SIP: ≈ 10 ms a worker for a
// policy of 11,000 routes. Here the text is encoded once for all workers; a write costs the event
// loop what the kernel takes at once, and the rest leaves as the worker reads.
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';

/** The fd a worker reads its policy on: fork's stdio is [stdin, stdout, stderr, ipc, this]. */
export const POLICY_FD = 4;
const HEADER = 8;
/** Far above any policy (a carrier's 11,000 routes are under 1 MiB); a length beyond it means
 *  the stream is not what this module wrote. */
const MAX_TEXT = 256 * 1024 * 1024;

/** The primary's side: one text, encoded once, written to any number of workers' sockets. */
export class PolicyText {
  private readonly head: Buffer;
  private readonly body: Buffer;
  constructor(readonly seq: number, text: string) {
    this.body = Buffer.from(text, 'utf8');
    this.head = Buffer.allocUnsafe(HEADER);
    this.head.writeUInt32BE(seq >>> 0, 0);
    this.head.writeUInt32BE(this.body.length, 4);
  }

  /** Queue it on a worker's socket (one writev for head and body); a socket already gone is
   *  ignored: that worker's exit is handled where its process is watched. */
  writeTo(socket: Writable | null | undefined): void {
    if (!socket || socket.destroyed || !socket.writable) return;
    socket.cork();
    socket.write(this.head);
    socket.write(this.body);
    socket.uncork();
  }
}

interface Waiter { resolve(text: string): void; reject(err: Error): void; timer: NodeJS.Timeout }

/**
 * The worker's side: frames as they complete, kept by seq until asked for. Asking for seq n
 * forgets every older frame (a newer policy replaces it); at most a few are kept unasked.
 */
export class PolicyFrames {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly ready = new Map<number, string>();
  /** Asks waiting per frame: the same policy handed over twice asks for its frame twice. */
  private readonly waiting = new Map<number, Waiter[]>();
  private broken: Error | undefined;

  constructor(private readonly waitMs = 10_000) {}

  /** Bytes read from the socket, cut anywhere. Joined once a frame is whole, not per read. */
  push(chunk: Buffer): void {
    if (this.broken) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER) return;
      if (this.chunks[0]!.length < HEADER) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const first = this.chunks[0]!;
      const seq = first.readUInt32BE(0);
      const length = first.readUInt32BE(4);
      if (length > MAX_TEXT) { this.fail(new Error(`policy stream: a frame of ${length} bytes (the stream is corrupt)`)); return; }
      if (this.buffered < HEADER + length) return;
      const all = this.chunks.length === 1 ? first : Buffer.concat(this.chunks, this.buffered);
      const text = all.toString('utf8', HEADER, HEADER + length);
      const rest = all.subarray(HEADER + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.arrived(seq, text);
    }
  }

  /** The text of frame `seq`, once it is here; rejects after the wait, or when the stream broke. */
  take(seq: number): Promise<string> {
    for (const s of this.ready.keys()) if (s < seq) this.ready.delete(s);
    const text = this.ready.get(seq);
    if (text !== undefined) { this.ready.delete(seq); return Promise.resolve(text); }
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(seq) ?? [];
      this.waiting.set(seq, list);
      const w: Waiter = { resolve, reject, timer: setTimeout(() => {
        list.splice(list.indexOf(w), 1);
        if (list.length === 0 && this.waiting.get(seq) === list) this.waiting.delete(seq);
        reject(new Error(`the policy (frame ${seq}) did not arrive from the primary within ${this.waitMs} ms`));
      }, this.waitMs) };
      w.timer.unref();
      list.push(w);
    });
  }

  /** The stream ended or failed: whoever waits is told. */
  fail(err: Error): void {
    this.broken ??= err;
    this.chunks = [];
    this.buffered = 0;
    for (const list of this.waiting.values()) for (const w of list) { clearTimeout(w.timer); w.reject(this.broken); }
    this.waiting.clear();
  }

  private arrived(seq: number, text: string): void {
    const list = this.waiting.get(seq);
    if (list) {
      this.waiting.delete(seq);
      for (const w of list) { clearTimeout(w.timer); w.resolve(text); }
      return;
    }
    this.ready.set(seq, text);
    // Unasked frames are older policies: a few are kept in case their ask is still on its way.
    while (this.ready.size > 4) this.ready.delete(this.ready.keys().next().value!);
  }
}

/** In a worker: read the primary's policy frames from POLICY_FD. */
export function readPolicyFrames(fd = POLICY_FD): PolicyFrames {
  const frames = new PolicyFrames();
  const socket = new Socket({ fd, readable: true, writable: false });
  socket.on('data', (d: Buffer) => frames.push(d));
  socket.on('error', (err) => frames.fail(new Error(`policy stream: ${err.message}`)));
  socket.on('end', () => frames.fail(new Error('policy stream closed by the primary')));
  // The IPC channel decides when a worker lives or goes, not this socket.
  socket.unref();
  return frames;
}
