import { describe, it, expect } from 'vitest';
import { StreamFramer, findContentLength, type FrameError } from '../../../src/engine/transport/framer.js';

function req(body = '', clName = 'Content-Length', extra = ''): string {
  return `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK${body.length}\r\n` +
    `Call-ID: ${Math.random()}\r\nCSeq: 1 INVITE\r\n${extra}${clName}: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function resp(body = ''): string {
  return `SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\nl: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function harness(limits = { maxMessageSize: 65_535, maxHeaderSize: 16_384 }) {
  const messages: string[] = [];
  let pings = 0;
  const f = new StreamFramer(limits, (m) => messages.push(m.toString('utf8')), () => { pings++; });
  return { f, messages, pings: () => pings };
}

describe('StreamFramer', () => {
  it('cuts one message with a body', () => {
    const h = harness();
    const m = req('v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n');
    expect(h.f.push(Buffer.from(m))).toBeNull();
    expect(h.messages).toEqual([m]);
    expect(h.f.buffered).toBe(0);
  });

  it('cuts coalesced messages from one read', () => {
    const h = harness();
    const a = req('first body'); const b = resp(); const c = req('third');
    expect(h.f.push(Buffer.from(a + b + c))).toBeNull();
    expect(h.messages).toEqual([a, b, c]);
  });

  it('reassembles a stream split at every byte position', () => {
    const a = req('hello world body'); const b = resp('xyz');
    const all = Buffer.from(a + '\r\n\r\n' + b);
    for (let cut = 1; cut < all.length; cut++) {
      const h = harness();
      expect(h.f.push(all.subarray(0, cut))).toBeNull();
      expect(h.f.push(all.subarray(cut))).toBeNull();
      expect(h.messages).toEqual([a, b]);
      expect(h.pings()).toBe(1);
    }
  });

  it('handles one byte at a time', () => {
    const h = harness();
    const a = req('abc'); const b = req('');
    const all = Buffer.from(a + b);
    for (let i = 0; i < all.length; i++) expect(h.f.push(all.subarray(i, i + 1))).toBeNull();
    expect(h.messages).toEqual([a, b]);
  });

  it('answers CRLF CRLF keep-alives and never passes them up; ignores leading CRLFs', () => {
    const h = harness();
    h.f.push(Buffer.from('\r\n\r\n'));
    expect(h.pings()).toBe(1);
    h.f.push(Buffer.from('\r\n'));
    h.f.push(Buffer.from('\r\n'));
    expect(h.pings()).toBe(2);
    const m = req('body');
    h.f.push(Buffer.from('\r\n' + m));
    expect(h.messages).toEqual([m]);
    expect(h.pings()).toBe(2);
  });

  it('accepts compact l: and odd case / whitespace before the colon', () => {
    for (const name of ['l', 'L', 'content-length', 'CONTENT-LENGTH', 'Content-Length ', 'l\t']) {
      const h = harness();
      const m = req('12345', name);
      expect(h.f.push(Buffer.from(m + m))).toBeNull();
      expect(h.messages).toEqual([m, m]);
    }
  });

  it('does not mistake other headers starting with l or c for Content-Length', () => {
    const h = harness();
    const m = req('abcd', 'Content-Length', 'Content-Type: application/sdp\r\nl-x: 99\r\nContent-Length-Foo: 7\r\n');
    expect(h.f.push(Buffer.from(m))).toBeNull();
    expect(h.messages).toEqual([m]);
  });

  it('uses the body length, not the end of the chunk, for bodies containing CRLF CRLF', () => {
    const h = harness();
    const body = 'a\r\n\r\nb\r\n\r\n';
    const m = req(body);
    h.f.push(Buffer.from(m));
    expect(h.messages).toEqual([m]);
  });

  const fatal: [string, string, FrameError][] = [
    ['missing Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n\r\n', 'no-content-length'],
    ['non-numeric Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: abc\r\n\r\n', 'bad-content-length'],
    ['negative Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n', 'bad-content-length'],
    ['conflicting Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab', 'bad-content-length'],
    ['garbage start line', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'garbage'],
    ['binary garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n', 'garbage'],
  ];
  for (const [name, text, err] of fatal) {
    it(`fails the stream on ${name}`, () => {
      const h = harness();
      expect(h.f.push(Buffer.from(text, 'latin1'))).toBe(err);
      expect(h.messages).toEqual([]);
      // Dead for good: later bytes are not framed.
      expect(h.f.push(Buffer.from(req('x')))).toBe(err);
      expect(h.messages).toEqual([]);
    });
  }

  it('rejects garbage as soon as the first line is complete', () => {
    const h = harness();
    expect(h.f.push(Buffer.from('HELLO THERE\r\n'))).toBe('garbage');
  });

  it('rejects an oversize header block before it ends', () => {
    const h = harness({ maxMessageSize: 4096, maxHeaderSize: 512 });
    let err: FrameError | null = null;
    err = h.f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n'));
    expect(err).toBeNull();
    for (let i = 0; i < 100 && !err; i++) err = h.f.push(Buffer.from(`X-Pad-${i}: ${'p'.repeat(40)}\r\n`));
    expect(err).toBe('header-too-large');
  });

  it('rejects a Content-Length that makes the message too large', () => {
    const h = harness({ maxMessageSize: 1000, maxHeaderSize: 512 });
    expect(h.f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n'))).toBe('message-too-large');
  });

  it('delivers the frame as an exact slice (no trailing bytes of the next message)', () => {
    const h = harness();
    const a = req('AAAA'); const b = req('BBBB');
    h.f.push(Buffer.from(a + b.slice(0, 10)));
    expect(h.messages).toEqual([a]);
    expect(h.f.buffered).toBe(10);
    h.f.push(Buffer.from(b.slice(10)));
    expect(h.messages).toEqual([a, b]);
  });
});

describe('StreamFramer buffering', () => {
  it('delivered messages stay intact while later bytes trickle in (no aliasing of the reassembly buffer)', () => {
    const got: Buffer[] = [];
    const f = new StreamFramer({ maxMessageSize: 65_535, maxHeaderSize: 16_384 }, (m) => got.push(m), () => {});
    const a = req('first'); const b = req('second'); const c = req('third');
    const all = Buffer.from(a + b + c);
    for (let i = 0; i < all.length; i += 7) f.push(all.subarray(i, i + 7));
    expect(got.map((m) => m.toString())).toEqual([a, b, c]);
  });

  it('a header dripped one byte at a time costs linear, not quadratic, copying', () => {
    const got: Buffer[] = [];
    const f = new StreamFramer({ maxMessageSize: 200_000, maxHeaderSize: 100_000 }, (m) => got.push(m), () => {});
    let text = 'OPTIONS sip:a@b SIP/2.0\r\n';
    while (text.length < 90_000) text += `X-Pad: ${'p'.repeat(60)}\r\n`;
    text += 'Content-Length: 0\r\n\r\n';
    const bytes = Buffer.from(text);
    const t0 = performance.now();
    let errors = 0;
    for (let i = 0; i < bytes.length; i++) if (f.push(bytes.subarray(i, i + 1)) !== null) errors++;
    const ms = performance.now() - t0;
    expect(errors).toBe(0);
    expect(got).toHaveLength(1);
    expect(got[0]!.equals(bytes)).toBe(true);
    // Quadratic re-concatenation of 90 KB byte by byte copies ~4 GB (seconds); linear is ~ms.
    expect(ms).toBeLessThan(1500);
  });
});

describe('findContentLength', () => {
  it('reads folded values and ignores continuation lines', () => {
    const text = 'OPTIONS sip:a@b SIP/2.0\r\nSubject: x\r\n l: 9\r\nContent-Length:\r\n 3\r\n\r\n';
    const buf = Buffer.from(text);
    expect(findContentLength(buf, buf.length)).toBe(3);
  });
  it('returns -1 when absent', () => {
    const buf = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n');
    expect(findContentLength(buf, buf.length)).toBe(-1);
  });
});
