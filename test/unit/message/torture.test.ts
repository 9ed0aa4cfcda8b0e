// RFC 4475 torture tests: every valid message parses (with checks on what was parsed), every
// invalid one is rejected with the right kind and status.
import { describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import {
  getHeader,
  getHeaders,
  getHeaderList,
  parseMessage,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from '../../../src/engine/message/index.js';
import {
  getTag,
  parseCSeq,
  parseNameAddr,
  parseUri,
  parseVia,
} from '../../../src/sip/grammar/index.js';

const valid = loadTorture('valid');
const invalid = loadTorture('invalid');

function parsed(name: string): SipMessage {
  const buf = valid.get(name);
  if (buf === undefined) throw new Error(`no fixture ${name}`);
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(`${name}: ${r.error}`);
  return r.message;
}
const req = (name: string): SipRequest => parsed(name) as SipRequest;
const res = (name: string): SipResponse => parsed(name) as SipResponse;

// Assertions on a few parsed fields of each valid message.
const checks: Record<string, (m: SipMessage) => void> = {
  wsinv: (m) => {
    const r = m as SipRequest;
    expect(r.method).toBe('INVITE');
    expect(r.uri).toBe('sip:vivekg@chair-dnrc.example.com;unknownparam');
    expect(getTag(getHeader(m, 'to')!)).toBe('1918181833n');
    const from = parseNameAddr(getHeader(m, 'From')!)!;
    expect(from.displayName).toBe('J Rosenberg \\"');
    expect(from.uri).toBe('sip:jdrosen@example.com');
    expect(from.params.get('tag')).toBe('98asjd8');
    expect(getHeader(m, 'max-forwards')).toBe('0068');
    expect(parseCSeq(getHeader(m, 'CSeq')!)).toEqual({ seq: 9, method: 'INVITE' });
    const vias = getHeaders(m, 'v').map((v) => parseVia(v)!);
    expect(vias.map((v) => [v.transport, v.host, v.params.get('branch')])).toEqual([
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    expect(getHeader(m, 'subject')).toBe('');
    expect(getHeader(m, 'newfangledheader')).toBe('newfangled value continued newfangled value');
    expect(getHeader(m, 'UnknownHeaderWithUnusualValue')).toBe(';;,,;;,;');
    expect(getHeaders(m, 'route')).toEqual(['<sip:services.example.com;lr;unknownwith=value;unknown-no-value>']);
    const contact = parseNameAddr(getHeader(m, 'm')!)!;
    expect(contact.displayName).toBe('Quoted string ""');
    expect([...contact.params]).toEqual([
      ['newparam', 'newvalue'],
      ['secondparam', ''],
      ['q', '0.33'],
    ]);
    expect(m.body.length).toBe(150);
    expect(m.body.toString().startsWith('v=0\r\n')).toBe(true);
  },
  intmeth: (m) => {
    const r = m as SipRequest;
    expect(r.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    const uri = parseUri(r.uri)!;
    expect(uri.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(uri.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    expect(uri.host).toBe('example.com');
    expect(parseNameAddr(getHeader(m, 'to')!)!.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
    const from = parseNameAddr(getHeader(m, 'from')!)!;
    expect(from.displayName).toBe("token1~` token2'+_ token3*%!.-");
    expect(from.params.get("fromparam''~+*_!.-%")).toBe('"работающий"');
    expect(from.params.get('tag')).toBe("_token~1'+`*%!-.");
    expect(getHeader(m, 'call-id')).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    expect(getHeader(m, "extensionHeader-!.%*+_`'~")).toBe('\ufeff大停電');
  },
  esc01: (m) => {
    const uri = parseUri((m as SipRequest).uri)!;
    expect(uri.user).toBe('sips%3Auser%40example.com');
    expect(uri.host).toBe('example.net');
    expect(getHeader(m, 'content-type')).toBe('application/sdp');
    const contact = parseUri(parseNameAddr(getHeader(m, 'contact')!)!.uri)!;
    expect(contact.params.get('%6c%72')).toBe('');
    expect(contact.params.get('n%61me')).toBe('v%61lue%25%34%31');
  },
  escnull: (m) => {
    expect(getHeaders(m, 'contact')).toEqual(['<sip:%00@host5.example.com>', '<sip:%00%00@host5.example.com>']);
    expect(parseUri(parseNameAddr(getHeader(m, 'to')!)!.uri)!.user).toBe('null-%00-null');
  },
  esc02: (m) => {
    expect((m as SipRequest).method).toBe('RE%47IST%45R');
    expect(getHeaders(m, 'contact')).toHaveLength(2); // C%6Fntact is another header
    expect(getHeader(m, 'C%6Fntact')).toBe('<sip:alias2@host2.example.com>');
    expect(parseNameAddr(getHeader(m, 'to')!)!.displayName).toBe('%Z%45');
  },
  lwsdisp: (m) => {
    const from = parseNameAddr(getHeader(m, 'from')!)!;
    expect(from.displayName).toBe('caller');
    expect(from.uri).toBe('sip:caller@example.com');
  },
  longreq: (m) => {
    expect(getHeaders(m, 'via')).toHaveLength(34);
    expect(getHeader(m, 'call-id')).toBe(`longreq.one${'really'.repeat(20)}longcallid`);
    expect(getTag(getHeader(m, 'from')!)).toBe(`12${'982'.repeat(50)}424`);
    expect(parseVia(getHeaders(m, 'via')[33]!)!.params.get('branch')).toBe(`very${'long'.repeat(50)}branchvalue`);
    expect(parseUri(parseNameAddr(getHeader(m, 'to')!)!.uri)!.port).toBe(6000);
  },
  dblreq: (m) => {
    expect((m as SipRequest).method).toBe('REGISTER');
    expect(m.body.length).toBe(0);
    expect(getHeader(m, 'call-id')).toBe('dblreq.0ha0isndaksdj99sdfafnl3lk233412');
  },
  semiuri: (m) => {
    expect(parseUri((m as SipRequest).uri)!.user).toBe('user;par=u%40example.net');
    expect(getHeaders(m, 'accept')).toHaveLength(1); // kept as received
    expect(getHeaderList(m, 'accept')).toEqual([
      'application/sdp',
      'application/pkcs7-mime',
      'multipart/mixed',
      'multipart/signed',
      'message/sip',
      'message/sipfrag',
    ]);
  },
  transports: (m) => {
    expect(getHeaders(m, 'via').map((v) => parseVia(v)!.transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
    expect(getHeader(m, 'call-id')).toBe('transports.kijh4akdnaqjkwendsasfdj');
  },
  mpart01: (m) => {
    expect(m.body.length).toBe(553);
    expect(getHeader(m, 'content-type')).toBe('multipart/mixed;boundary=7a9cbec02ceef655');
    expect(m.body.subarray(0, 20).toString()).toBe('--7a9cbec02ceef655\r\n');
    expect(m.body.subarray(187, 191)).toEqual(Buffer.from([0x30, 0x82, 0x01, 0x52]));
  },
  unreason: (m) => {
    expect((m as SipResponse).status).toBe(200);
    expect((m as SipResponse).reason).toBe('= 2**3 * 5**2 но сто девяносто девять - простое');
    expect(m.body.length).toBe(154);
  },
  noreason: (m) => {
    expect((m as SipResponse).status).toBe(100);
    expect((m as SipResponse).reason).toBe('');
  },
  badbranch: (m) => expect(parseVia(getHeader(m, 'via')!)!.params.get('branch')).toBe('z9hG4bK'),
  unkscm: (m) => expect((m as SipRequest).uri).toBe('nobodyKnowsThisScheme:totallyopaquecontent'),
  novelsc: (m) => expect((m as SipRequest).uri).toBe('soap.beep://192.0.2.103:3002'),
  unksm2: (m) => {
    expect(parseNameAddr(getHeader(m, 'to')!)!.uri).toBe('isbn:2983792873');
    expect(parseNameAddr(getHeader(m, 'contact')!)!.uri).toBe('name:John_Smith');
  },
  bext01: (m) => {
    expect(getHeaderList(m, 'require')).toEqual(['nothingSupportsThis', 'nothingSupportsThisEither']);
    expect(getHeaderList(m, 'proxy-require')).toEqual(['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
  },
  invut: (m) => {
    expect(getHeader(m, 'content-type')).toBe('application/unknownformat');
    expect(m.body.toString()).toBe('<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n');
  },
  regaut01: (m) => expect(getHeader(m, 'authorization')).toBe('NoOneKnowsThisScheme opaque-data=here'),
  zeromf: (m) => expect(getHeader(m, 'max-forwards')).toBe('0'),
  cparam01: (m) => {
    // addr-spec form: ;unknownparam is a header parameter, not a URI parameter
    const c = parseNameAddr(getHeader(m, 'contact')!)!;
    expect(c.uri).toBe('sip:+19725552222@gw1.example.net');
    expect(c.params.has('unknownparam')).toBe(true);
  },
  cparam02: (m) => {
    const c = parseNameAddr(getHeader(m, 'contact')!)!;
    expect(parseUri(c.uri)!.params.has('unknownparam')).toBe(true);
    expect(c.params.size).toBe(0);
  },
  regescrt: (m) => {
    const c = parseUri(parseNameAddr(getHeader(m, 'contact')!)!.uri)!;
    expect(c.headers.get('Route')).toBe('%3Csip:sip.example.com%3E');
  },
  sdp01: (m) => expect(getHeader(m, 'accept')).toBe('text/nobodyKnowsThis'),
  bcast: (m) => {
    expect((m as SipResponse).status).toBe(200);
    expect(parseVia(getHeaders(m, 'via')[1]!)!.host).toBe('255.255.255.255');
  },
  inv2543: (m) => {
    // no Content-Length over a datagram: the body is the rest of the datagram
    expect(m.body.toString().endsWith('m=audio 49217 RTP/AVP 0\r\n')).toBe(true);
    expect(getTag(getHeader(m, 'from')!)).toBeUndefined();
    expect(parseVia(getHeader(m, 'via')!)!.params.size).toBe(0);
  },
};

describe('RFC 4475 valid messages', () => {
  it('has every valid fixture covered by a check', () => {
    expect([...valid.keys()].sort()).toEqual(Object.keys(checks).sort());
  });
  for (const name of valid.keys()) {
    it(`parses ${name}`, () => {
      const m = parsed(name);
      checks[name]!(m);
    });
  }
  it('keeps request/response kinds apart', () => {
    expect(req('wsinv').kind).toBe('request');
    expect(res('bcast').kind).toBe('response');
  });
});

// What each invalid message must produce: kind, status, and a word of the reason.
const expected: Record<string, { kind: 'request' | 'response'; status: number; error: RegExp }> = {
  badinv01: { kind: 'request', status: 400, error: /Via/ },
  clerr: { kind: 'request', status: 400, error: /Content-Length 9999/ },
  ncl: { kind: 'request', status: 400, error: /Content-Length/ },
  scalar02: { kind: 'request', status: 400, error: /Max-Forwards|CSeq/ },
  scalarlg: { kind: 'response', status: 400, error: /CSeq/ },
  quotbal: { kind: 'request', status: 400, error: /To/ },
  ltgtruri: { kind: 'request', status: 400, error: /Request-URI/ },
  lwsruri: { kind: 'request', status: 400, error: /Request-Line/ },
  lwsstart: { kind: 'request', status: 400, error: /Request-Line/ },
  trws: { kind: 'request', status: 400, error: /Request-Line/ },
  escruri: { kind: 'request', status: 400, error: /headers/ },
  baddate: { kind: 'request', status: 400, error: /Date/ },
  regbadct: { kind: 'request', status: 400, error: /Contact/ },
  badaspec: { kind: 'request', status: 400, error: /To/ },
  baddn: { kind: 'request', status: 400, error: /From/ },
  badvers: { kind: 'request', status: 505, error: /version/ },
  mismatch01: { kind: 'request', status: 400, error: /CSeq method/ },
  mismatch02: { kind: 'request', status: 400, error: /CSeq method/ },
  bigcode: { kind: 'response', status: 400, error: /Status-Code/ },
  insuf: { kind: 'request', status: 400, error: /missing (From|To|Call-ID)/ },
  multi01: { kind: 'request', status: 400, error: /multiple/ },
  mcl01: { kind: 'request', status: 400, error: /multiple Content-Length/ },
};

describe('RFC 4475 invalid messages', () => {
  it('has every invalid fixture covered', () => {
    expect([...invalid.keys()].sort()).toEqual(Object.keys(expected).sort());
  });
  for (const [name, buf] of invalid) {
    it(`rejects ${name}`, () => {
      const r = parseMessage(buf);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      const want = expected[name]!;
      expect(r.kind).toBe(want.kind);
      expect(r.status).toBe(want.status);
      expect(r.error).toMatch(want.error);
      // Enough recovered to answer with 400 (RFC 3261 §8.2.6.2): Via and CSeq at least.
      expect(r.headers.some((h) => h.name === 'via')).toBe(true);
      expect(r.headers.some((h) => h.name === 'cseq')).toBe(true);
      expect(r.headers.every((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.name))).toBe(true);
    });
  }
});
