// drachtio wire framing (spec §2): `<length>#<payload>`, length = decimal byte count of the
// UTF-8 payload. A TCP read may hold several frames or part of one; the decoder reassembles.

/** App → server frames: 1–5 length digits (largest payload 99 999 bytes), as drachtio-server. */
export const MAX_LENGTH_DIGITS = 5;

const HASH = 0x23;

export type DecodeResult = { frames: string[]; error?: string };

/** Incremental decoder for one connection. On a framing violation it reports an error and
 *  must not be fed again (the caller closes the connection). */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;

  push(chunk: Buffer): DecodeResult {
    const frames: string[] = [];
    if (this.failed) return { frames, error: 'decoder already failed' };
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    for (;;) {
      const avail = this.buf.length - off;
      if (avail === 0) break;
      // Read the length prefix digit by digit so that a bad prefix is caught without waiting
      // for a '#' that may never come.
      let len = 0;
      let i = 0;
      let sawHash = false;
      for (; i < avail && i <= MAX_LENGTH_DIGITS; i++) {
        const c = this.buf[off + i]!;
        if (c === HASH) { sawHash = true; break; }
        if (c < 0x30 || c > 0x39) return this.fail(frames, 'non-digit in length prefix');
        len = len * 10 + (c - 0x30);
      }
      if (!sawHash) {
        if (i > MAX_LENGTH_DIGITS) return this.fail(frames, 'length prefix longer than 5 digits');
        break; // need more bytes for the prefix
      }
      if (i === 0) return this.fail(frames, 'empty length prefix');
      if (len === 0) return this.fail(frames, 'zero length');
      const start = off + i + 1;
      if (this.buf.length - start < len) break;
      frames.push(this.buf.toString('utf8', start, start + len));
      off = start + len;
    }
    this.buf = off === 0 ? this.buf : this.buf.subarray(off);
    // Keep the unread tail compact so that a long-lived connection does not pin big buffers.
    if (off > 0 && this.buf.length > 0 && this.buf.byteOffset > 65536) this.buf = Buffer.from(this.buf);
    return { frames };
  }

  private fail(frames: string[], error: string): DecodeResult {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    return { frames, error };
  }
}

/** `<byteLength>#<payload>` ready for the socket. */
export function encodeFrame(payload: string): Buffer {
  const len = Buffer.byteLength(payload, 'utf8');
  const prefix = `${len}#`;
  const out = Buffer.allocUnsafe(prefix.length + len);
  out.write(prefix, 0, 'latin1');
  out.write(payload, prefix.length, 'utf8');
  return out;
}

/**
 * `<byteLength>#<leader>\r\n<sip>` with the SIP message as the bytes it is on the network: not
 * decoded to a string to be joined to the leader, flattened and encoded back (≈ 9 of a call's
 * ≈ 12 frames carry a message the engine has as bytes).
 */
export function encodeFrameWith(leader: string, sip: Buffer): Buffer {
  const leaderBytes = Buffer.byteLength(leader, 'utf8');
  const len = leaderBytes + 2 + sip.length;
  const prefix = `${len}#`;
  const out = Buffer.allocUnsafe(prefix.length + len);
  let at = out.write(prefix, 0, 'latin1');
  at += out.write(leader, at, leaderBytes, 'utf8');
  out[at++] = 0x0d;
  out[at++] = 0x0a;
  sip.copy(out, at);
  return out;
}

/** Split a frame payload into its leader tokens and the SIP message after the first CR LF. */
export function splitFrame(payload: string): { tokens: string[]; sip: string } {
  const pos = payload.indexOf('\r\n');
  const leader = pos === -1 ? payload : payload.slice(0, pos);
  return { tokens: leader.split('|'), sip: pos === -1 ? '' : payload.slice(pos + 2) };
}
