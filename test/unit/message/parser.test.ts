// parseMessage: framing, folding, compact forms, list splitting, limits, failures.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PARSE_LIMITS,
  getHeader,
  getHeaders,
  getHeaderList,
  parseMessage,
  type ParseLimits,
  type ParseResult,
  type SipMessage,
} from '../../../src/engine/message/index.js';

function msg(lines: string[], body = ''): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'utf8');
}

const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@example.com>',
  'From: Alice <sip:alice@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.example.com>',
];

function invite(extra: string[] = [], body = '', start = 'INVITE sip:bob@example.com SIP/2.0'): Buffer {
  const cl = body.length > 0 ? [`Content-Length: ${Buffer.byteLength(body)}`] : [];
  return msg([start, ...BASE, ...extra, ...cl], body);
}

function ok(r: ParseResult): SipMessage {
  if (!r.ok) throw new Error(`expected ok, got ${r.status} ${r.error}`);
  return r.message;
}
function fail(r: ParseResult) {
  if (r.ok) throw new Error('expected failure');
  return r;
}

describe('parseMessage: basics', () => {
  it('parses a request with a body and keeps raw names', () => {
    const m = ok(parseMessage(invite(['Content-Type: application/sdp'], 'v=0\r\n')));
    expect(m.kind).toBe('request');
    if (m.kind !== 'request') return;
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:bob@example.com');
    expect(m.body.toString()).toBe('v=0\r\n');
    expect(m.headers.find((h) => h.name === 'call-id')!.raw).toBe('Call-ID');
  });

  it('parses a response with a multi-word reason', () => {
    const m = ok(parseMessage(msg(['SIP/2.0 486 Busy Here', ...BASE.filter((l) => !l.startsWith('Max'))])));
    expect(m.kind === 'response' && m.status === 486 && m.reason === 'Busy Here').toBe(true);
  });

  it('expands compact forms and lower-cases names', () => {
    const m = ok(
      parseMessage(
        msg([
          'OPTIONS sip:x@example.com SIP/2.0',
          'v: SIP/2.0/UDP h;branch=z9hG4bK1',
          'f: <sip:a@b>;tag=1',
          'T: <sip:c@d>',
          'i: cid',
          'CSEQ: 1 OPTIONS',
          'k: 100rel',
          'o: presence',
          'u: dialog',
          'x: 1800',
          'r: <sip:r@e>',
          'b: <sip:rb@e>',
          'e: gzip',
          's: hi',
          'c: text/plain',
          'l: 0',
        ]),
      ),
    );
    const names = m.headers.map((h) => h.name);
    expect(names).toEqual([
      'via',
      'from',
      'to',
      'call-id',
      'cseq',
      'supported',
      'event',
      'allow-events',
      'session-expires',
      'refer-to',
      'referred-by',
      'content-encoding',
      'subject',
      'content-type',
      'content-length',
    ]);
    expect(m.headers.map((h) => h.raw).slice(0, 3)).toEqual(['v', 'f', 'T']);
  });

  it('unfolds continuation lines (SP and HTAB) into one space', () => {
    const m = ok(parseMessage(invite(['Subject: I know you\'re there,', ' \t pick up the phone', '\tand talk to me!'])));
    expect(getHeader(m, 'subject')).toBe("I know you're there, pick up the phone and talk to me!");
  });

  it('splits list headers respecting quotes, escapes and <>', () => {
    const m = ok(
      parseMessage(
        invite([
          'Route: <sip:p1.example.com;lr>, <sip:a,b@p2.example.com;lr>',
          'Record-Route: <sip:rr1;lr>,<sip:rr2;lr>',
          'Allow: INVITE, ACK,CANCEL , BYE',
          'Contact: "Doe, \\"J\\", Jr" <sip:j@h;p=1,2>;q=0.1, <sip:k@h>',
          'Warning: 301 h "a, b"',
          'Authorization: Digest username="a", realm="b"',
        ]),
      ),
    );
    expect(getHeaders(m, 'route')).toEqual(['<sip:p1.example.com;lr>', '<sip:a,b@p2.example.com;lr>']);
    expect(getHeaders(m, 'record-route')).toEqual(['<sip:rr1;lr>', '<sip:rr2;lr>']);
    // Allow is a list but not split by the parser (kept as received); getHeaderList splits it
    expect(getHeaders(m, 'allow')).toEqual(['INVITE, ACK,CANCEL , BYE']);
    expect(getHeaderList(m, 'allow')).toEqual(['INVITE', 'ACK', 'CANCEL', 'BYE']);
    expect(getHeaders(m, 'contact')).toEqual(['<sip:alice@pc33.example.com>', '"Doe, \\"J\\", Jr" <sip:j@h;p=1,2>;q=0.1', '<sip:k@h>']);
    // not list headers (or not safe to split): kept whole
    expect(getHeaders(m, 'warning')).toEqual(['301 h "a, b"']);
    expect(getHeaders(m, 'authorization')).toEqual(['Digest username="a", realm="b"']);
  });

  it('keeps Contact: * as one value', () => {
    const m = ok(parseMessage(msg(['REGISTER sip:example.com SIP/2.0', ...BASE.slice(0, 5), 'CSeq: 2 REGISTER', 'Contact: *', 'Expires: 0'])));
    expect(getHeaders(m, 'contact')).toEqual(['*']);
  });

  it('accepts IPv6 references in Via, URIs and Request-URI', () => {
    const m = ok(parseMessage(invite(['Via: SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bK2;received=2001:db8::9:255'], '', 'INVITE sip:[2001:db8::10]:5070;transport=tcp SIP/2.0')));
    expect(getHeaders(m, 'via')).toHaveLength(2);
  });

  it('accepts sips: and tel: Request-URIs', () => {
    ok(parseMessage(invite([], '', 'INVITE sips:bob@example.com SIP/2.0')));
    ok(parseMessage(invite([], '', 'INVITE tel:+1-201-555-0123;phone-context=example.com SIP/2.0')));
  });

  it('ignores CRLFs before the start line (RFC 3261 §7.5)', () => {
    const m = ok(parseMessage(Buffer.concat([Buffer.from('\r\n\r\n'), invite()])));
    expect(m.kind).toBe('request');
  });

  it('parses LF-only input in linear time', () => {
    const lines = Array.from({ length: 120 }, (_, i) => `X-H${i}: v`);
    const m = ok(parseMessage(Buffer.from(invite(lines).toString().replace(/\r\n/g, '\n')), { ...DEFAULT_PARSE_LIMITS, maxHeaders: 200 }));
    expect(getHeader(m, 'x-h119')).toBe('v');
  });

  it('tolerates bare LF line endings', () => {
    const m = ok(parseMessage(Buffer.from(invite().toString().replace(/\r\n/g, '\n'))));
    expect(getHeader(m, 'call-id')).toBe('a84b4c76e66710@pc33.example.com');
  });

  it('accepts a missing Max-Forwards (RFC 3261 §16.3 step 3 passes) but rejects one above 255', () => {
    const lines = BASE.filter((l) => !l.startsWith('Max-Forwards'));
    ok(parseMessage(msg(['INVITE sip:bob@example.com SIP/2.0', ...lines])));
    expect(fail(parseMessage(invite(['Max-Forwards: 256']))).error).toMatch(/multiple|Max-Forwards/);
  });
});

describe('parseMessage: body framing (RFC 3261 §18.3)', () => {
  it('truncates extra datagram bytes after Content-Length', () => {
    const m = ok(parseMessage(Buffer.concat([invite(['Content-Length: 3']), Buffer.from('abcdef')])));
    expect(m.body.toString()).toBe('abc');
  });
  it('takes the rest of the datagram as body without Content-Length', () => {
    const m = ok(parseMessage(Buffer.concat([invite(), Buffer.from('xyz')])));
    expect(m.body.toString()).toBe('xyz');
  });
  it('rejects a Content-Length larger than the bytes present', () => {
    const r = fail(parseMessage(Buffer.concat([invite(['Content-Length: 10']), Buffer.from('short')])));
    expect(r.status).toBe(400);
    expect(r.error).toMatch(/Content-Length 10/);
  });
  it('passes binary bodies through byte for byte', () => {
    const body = Buffer.from([0, 13, 10, 13, 10, 255, 128, 1]);
    const m = ok(parseMessage(Buffer.concat([invite([`Content-Length: ${body.length}`]), body])));
    expect(m.body.equals(body)).toBe(true);
  });
});

describe('parseMessage: limits', () => {
  const small: ParseLimits = { maxMessageBytes: 600, maxHeaders: 12, maxHeaderBytes: 100, maxUriBytes: 40 };
  it('uses the defaults, also for missing or non-numeric fields of a partial limits object', () => {
    expect(DEFAULT_PARSE_LIMITS.maxMessageBytes).toBeGreaterThan(0);
    const partial = { maxHeaders: 3 } as unknown as ParseLimits;
    expect(fail(parseMessage(invite(), partial)).status).toBe(513); // maxHeaders applied
    const junk = { maxMessageBytes: 'big', maxHeaders: NaN, maxHeaderBytes: -1, maxUriBytes: null } as unknown as ParseLimits;
    ok(parseMessage(invite(), junk)); // every field falls back to its default
    expect(fail(parseMessage(Buffer.alloc(DEFAULT_PARSE_LIMITS.maxMessageBytes + 1, 0x41), junk)).status).toBe(513);
  });
  it('513 when the header section exceeds the message limit', () => {
    const r = fail(parseMessage(invite(Array.from({ length: 6 }, (_, i) => `X-Pad${i}: ${'p'.repeat(90)}`)), small));
    expect(r.status).toBe(513);
    expect(r.kind).toBe('request');
    expect(r.headers.some((h) => h.name === 'call-id')).toBe(true);
  });
  it('413 when the body makes the message too big', () => {
    const r = fail(parseMessage(invite([], 'x'.repeat(400)), small));
    expect(r.status).toBe(413);
  });
  it('513 for too many header fields', () => {
    const extra = Array.from({ length: 10 }, (_, i) => `X-H${i}: v`);
    expect(fail(parseMessage(invite(extra), { ...small, maxMessageBytes: 65535 })).status).toBe(513);
  });
  it('513 for an over-long header field, also when folded', () => {
    const big = { ...small, maxMessageBytes: 65535 };
    expect(fail(parseMessage(invite([`Subject: ${'s'.repeat(101)}`]), big)).status).toBe(513);
    expect(fail(parseMessage(invite(['Subject: ' + 's'.repeat(60), ' ' + 't'.repeat(60)]), big)).status).toBe(513);
  });
  it('414 for an over-long Request-URI', () => {
    const r = fail(parseMessage(invite([], '', `INVITE sip:${'u'.repeat(40)}@example.com SIP/2.0`), { ...small, maxMessageBytes: 65535 }));
    expect(r.status).toBe(414);
  });
});

describe('parseMessage: failures', () => {
  it('never throws on non-Buffer input', () => {
    expect(fail(parseMessage('INVITE' as unknown as Buffer)).kind).toBe('unknown');
    expect(fail(parseMessage(undefined as unknown as Buffer)).status).toBe(400);
  });
  it('rejects empty and keep-alive-only input', () => {
    expect(fail(parseMessage(Buffer.alloc(0))).error).toMatch(/empty/);
    expect(fail(parseMessage(Buffer.from('\r\n\r\n'))).error).toMatch(/empty/);
  });
  it('rejects a header section without the empty line, still recovering headers', () => {
    const r = fail(parseMessage(Buffer.from(invite().toString().replace(/\r\n\r\n$/, '\r\n'))));
    expect(r.error).toMatch(/empty line/);
    expect(r.headers.map((h) => h.name)).toEqual(['via', 'to', 'from', 'call-id', 'cseq']);
  });
  it('rejects garbage start lines as unknown', () => {
    expect(fail(parseMessage(msg(['\x00\x01\x02 garbage', ...BASE]))).kind).toBe('unknown');
    expect(fail(parseMessage(msg(['HTTP/1.1 200 OK', ...BASE]))).kind).toBe('unknown');
  });
  it('rejects malformed header lines and continuation before the first header', () => {
    expect(fail(parseMessage(invite(['No colon here']))).error).toMatch(/malformed header line/);
    expect(fail(parseMessage(invite(['Bad Name: x']))).error).toMatch(/malformed header line/);
    expect(fail(parseMessage(msg(['INVITE sip:bob@example.com SIP/2.0', ' folded', ...BASE]))).error).toMatch(/continuation/);
  });
  it('rejects a bare CR inside the header section', () => {
    expect(fail(parseMessage(invite(['Subject: a\rInjected: b']))).error).toMatch(/bare CR/);
    expect(fail(parseMessage(invite([], '', 'INVITE sip:bob@example.com SIP/2.0\rX'))).error).toMatch(/bare CR/);
    const resp = fail(parseMessage(msg(['SIP/2.0 200 OK\rInjected: 1', ...BASE])));
    expect(resp.kind).toBe('response');
  });
  it('rejects missing mandatory headers one by one', () => {
    for (const [name, re] of [
      ['Via', /missing Via/],
      ['To', /missing To/],
      ['From', /missing From/],
      ['Call-ID', /missing Call-ID/],
      ['CSeq', /missing CSeq/],
    ] as const) {
      const lines = BASE.filter((l) => !l.startsWith(`${name}:`));
      expect(fail(parseMessage(msg(['INVITE sip:bob@example.com SIP/2.0', ...lines]))).error).toMatch(re);
    }
  });
  it('rejects a CSeq number of 2**31 or more and malformed CSeq', () => {
    const at = (v: string) => fail(parseMessage(msg(['INVITE sip:bob@example.com SIP/2.0', ...BASE.filter((l) => !l.startsWith('CSeq')), `CSeq: ${v}`])));
    expect(at('2147483648 INVITE').error).toMatch(/CSeq/);
    expect(at('INVITE').error).toMatch(/CSeq/);
    expect(at('1INVITE').error).toMatch(/CSeq/);
    ok(parseMessage(msg(['INVITE sip:bob@example.com SIP/2.0', ...BASE.filter((l) => !l.startsWith('CSeq')), 'CSeq: 2147483647 INVITE'])));
  });
  it('responses: status outside 100..699 or not 3 digits are rejected', () => {
    const lines = BASE.filter((l) => !l.startsWith('Max'));
    expect(fail(parseMessage(msg(['SIP/2.0 099 Low', ...lines]))).kind).toBe('response');
    expect(fail(parseMessage(msg(['SIP/2.0 700 High', ...lines]))).kind).toBe('response');
    expect(fail(parseMessage(msg(['SIP/2.0 20 Short', ...lines]))).kind).toBe('response');
    expect(fail(parseMessage(msg(['SIP/3.0 200 OK', ...lines]))).kind).toBe('response');
  });
  it('505 for another SIP version in a request, 400 for a non-version', () => {
    expect(fail(parseMessage(invite([], '', 'INVITE sip:bob@example.com SIP/2.1'))).status).toBe(505);
    expect(fail(parseMessage(invite([], '', 'INVITE sip:bob@example.com HTTP/1.1'))).status).toBe(400);
  });
  it('rejects malformed sip Request-URIs', () => {
    for (const uri of ['sip:', 'sip:@host', 'sip:bob@', 'sip:bob@ho st', 'sip:bob@[::1', 'sip:bob@host:99999', 'sip:bob@host;;lr', 'noscheme']) {
      expect(fail(parseMessage(invite([], '', `INVITE ${uri} SIP/2.0`))).error, uri).toMatch(/Request|Request-Line/);
    }
  });
});

describe('failure reason phrases (docs/fuzzing.md F1)', () => {
  const long = '0'.repeat(1000);
  it('a 1,000-byte method with another CSeq method: fixed 400 wording, a bounded detail', () => {
    const r = fail(parseMessage(invite([], '', `${long} sip:bob@example.com SIP/2.0`)));
    expect(r.status).toBe(400);
    expect(r.reason).toBe('Bad Request');
    expect(r.error).toMatch(/^CSeq method INVITE does not match request method 0+\.\.\.$/);
    expect(r.error.length).toBeLessThan(200);
  });

  it('every failure status has its own fixed phrase, with nothing of the input in it', () => {
    const cases: Array<[Buffer, ParseLimits | undefined, number, string]> = [
      [invite([], '', `INVITE sip:bob@example.com SIP/${long}.0`), undefined, 505, 'Version Not Supported'],
      [invite([], '', `INVITE sip:bob@example.com;x=${long.repeat(3)} SIP/2.0`), undefined, 414, 'Request-URI Too Long'],
      [invite([`X-${long}: ${long.repeat(9)}`]), undefined, 513, 'Message Too Large'],
      [invite([], 'x'.repeat(300)), { ...DEFAULT_PARSE_LIMITS, maxMessageBytes: 600 }, 413, 'Request Entity Too Large'],
      [invite([`X-${long}: a\u0001b`]), undefined, 400, 'Bad Request'],
    ];
    for (const [buf, limits, status, reason] of cases) {
      const r = fail(parseMessage(buf, limits));
      expect([r.status, r.reason]).toEqual([status, reason]);
      expect(r.error.length).toBeLessThan(300);
    }
  });
});
