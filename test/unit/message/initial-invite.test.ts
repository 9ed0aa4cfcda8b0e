// The priority ingress's classifier: initial INVITEs (no To tag) against everything else.
import { describe, expect, it } from 'vitest';
import { isInitialInvite } from '../../../src/engine/message/initial-invite.js';
import { parseMessage } from '../../../src/engine/message/parser.js';
import { getTag } from '../../../src/sip/grammar/index.js';

const msg = (first: string, to: string, extra = '') => Buffer.from(`${first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n` +
  `From: <sip:a@10.0.0.1>;tag=fa\r\n${to}\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n${extra}Content-Length: 0\r\n\r\n`);
const INV = 'INVITE sip:b@10.0.0.2 SIP/2.0';

describe('isInitialInvite', () => {
  it.each([
    ['To without tag', msg(INV, 'To: <sip:b@10.0.0.2>'), true],
    ['To with tag', msg(INV, 'To: <sip:b@10.0.0.2>;tag=xyz'), false],
    ['compact t, upper-case TAG, spaces around =', msg(INV, 't: <sip:b@10.0.0.2> ; TAG = xyz'), false],
    ['TO in upper case, no tag', msg(INV, 'TO : <sip:b@10.0.0.2>'), true],
    ['tag only inside the URI (a URI parameter, not the To tag)', msg(INV, 'To: <sip:b@10.0.0.2;tag=u>'), true],
    ['";tag=" inside a quoted display name', msg(INV, 'To: "x;tag=1 \\" >" <sip:b@10.0.0.2>'), true],
    ['addr-spec form with a tag parameter', msg(INV, 'To: sip:b@10.0.0.2;tag=9'), false],
    ['tag on a folded continuation line', msg(INV, 'To: <sip:b@10.0.0.2>\r\n ;tag=9'), false],
    ['a "Tag-like" other parameter', msg(INV, 'To: <sip:b@10.0.0.2>;tagx=1'), true],
    ['a Toto header is not To', msg(INV, 'To: <sip:b@10.0.0.2>;tag=1', 'Toto: ;tag=2\r\n'), false],
    ['leading CRLF keep-alive bytes', Buffer.concat([Buffer.from('\r\n\r\n'), msg(INV, 'To: <sip:b@10.0.0.2>')]), true],
    ['bare LF line ends', Buffer.from(`${INV}\nTo: <sip:b@10.0.0.2>;tag=1\n\n`), false],
    ['no To header at all (the parser answers 400)', Buffer.from(`${INV}\r\nCall-ID: x\r\n\r\n`), true],
    ['a tag in the body does not count', Buffer.from(`${INV}\r\nTo: <sip:b@x>\r\nContent-Length: 14\r\n\r\nTo: x;tag=1\r\n`), true],
    ['ACK', msg('ACK sip:b@10.0.0.2 SIP/2.0', 'To: <sip:b@10.0.0.2>'), false],
    ['BYE', msg('BYE sip:b@10.0.0.2 SIP/2.0', 'To: <sip:b@10.0.0.2>;tag=1'), false],
    ['CANCEL', msg('CANCEL sip:b@10.0.0.2 SIP/2.0', 'To: <sip:b@10.0.0.2>'), false],
    ['a response to an INVITE', msg('SIP/2.0 200 OK', 'To: <sip:b@10.0.0.2>;tag=1'), false],
    ['a response without a To tag', msg('SIP/2.0 100 Trying', 'To: <sip:b@10.0.0.2>'), false],
    ['INVITEX is no INVITE', msg('INVITEX sip:b@10.0.0.2 SIP/2.0', 'To: <sip:b@10.0.0.2>'), false],
    ['lower-case invite is another method', msg('invite sip:b@10.0.0.2 SIP/2.0', 'To: <sip:b@10.0.0.2>'), false],
    ['empty', Buffer.alloc(0), false],
    ['the method alone', Buffer.from('INVITE '), true],
  ])('%s', (_name, buf, want) => {
    expect(isInitialInvite(buf)).toBe(want);
  });

  it('agrees with the parser on every well-formed case above (To tag present ⇔ not initial)', () => {
    for (const to of ['To: <sip:b@10.0.0.2>', 'To: <sip:b@10.0.0.2>;tag=xyz', 't: <sip:b@10.0.0.2> ; TAG = xyz', 'To: <sip:b@10.0.0.2;tag=u>', 'To: sip:b@10.0.0.2;tag=9', 'To: "x;tag=1" <sip:b@10.0.0.2>']) {
      const b = msg(INV, to);
      const p = parseMessage(b);
      expect(p.ok, to).toBe(true);
      if (!p.ok || p.message.kind !== 'request') continue;
      const toValue = p.message.headers.find((h) => h.name === 'to')!.value;
      expect(isInitialInvite(b), to).toBe(getTag(toValue) === undefined);
    }
  });

  it('never throws on cut or random bytes', () => {
    const whole = msg(INV, 'To: "q\\"x" <sip:b@10.0.0.2>;tag=1');
    for (let n = 0; n <= whole.length; n++) expect(() => isInitialInvite(whole.subarray(0, n))).not.toThrow();
    let seed = 7;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(whole);
      for (let k = 0; k < 8; k++) b[rnd() % b.length] = rnd() & 0xff;
      expect(() => isInitialInvite(b)).not.toThrow();
    }
  });
});
