// core/fields.ts: the UA core's adapters over the SIP grammar keep the contracts the core's own
// readers had (absent headers, sip/sips URIs to route on, the app's CSeq range, option tags).
import { describe, expect, it } from 'vitest';
import { hasOptionTag, hdrAll, parseCSeq, parseRequestCSeq, sipUriOf, tagOf } from '../../../src/engine/core/fields.js';
import { parseMessage } from '../../../src/engine/message/parser.js';
import type { SipMessage } from '../../../src/engine/message/types.js';

describe('core/fields', () => {
  it('tagOf: undefined for an absent header, an absent tag and an empty one', () => {
    expect(tagOf(undefined)).toBeUndefined();
    expect(tagOf('<sip:a@h>')).toBeUndefined();
    expect(tagOf('<sip:a@h>;tag=')).toBeUndefined();
    expect(tagOf('"x;tag=no" <sip:a@h;tag=uri>;tag=yes')).toBe('yes');
  });

  it('sipUriOf: sip/sips to route on; tel, other schemes, malformed text and port 0 are not', () => {
    expect(sipUriOf('sips:[2001:db8::1]:5061;transport=tcp')).toMatchObject({ scheme: 'sips', host: '[2001:db8::1]', port: 5061 });
    expect(sipUriOf('sip:b@h')?.params.size).toBe(0);
    expect(sipUriOf('tel:+15551230000')).toBeUndefined();
    expect(sipUriOf('http://h/')).toBeUndefined();
    expect(sipUriOf('sip:h:0')).toBeUndefined();
    expect(sipUriOf('sip:h:65536')).toBeUndefined();
    expect(sipUriOf('sip:')).toBeUndefined();
  });

  it('the app CSeq keeps the field range (2^32-1); a network request has the §8.1.1.5 limit', () => {
    expect(parseCSeq('4294967295 INVITE')).toEqual({ seq: 4294967295, method: 'INVITE' });
    expect(parseRequestCSeq('4294967295 INVITE')).toBeNull();
    expect(parseCSeq('1 INVITE extra')).toBeNull();
  });

  it('hasOptionTag reads comma lists, case-insensitively', () => {
    expect(hasOptionTag(['timer, 100REL'], '100rel')).toBe(true);
    expect(hasOptionTag(['timer', 'replaces'], '100rel')).toBe(false);
  });

  it('hdrAll splits a value that still holds a top-level comma, not one inside <> or quotes', () => {
    const r = parseMessage(Buffer.from('OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:x@h>\r\n' +
      'Call-ID: c\r\nCSeq: 1 OPTIONS\r\nRecord-Route: <sip:p1;lr>, "a,b" <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n'));
    if (!r.ok) throw new Error(r.error);
    const msg: SipMessage = r.message;
    expect(hdrAll(msg, 'record-route')).toEqual(['<sip:p1;lr>', '"a,b" <sip:p2;lr>']);
  });
});
