// own() (src/engine/transaction/own.ts): the engine's copy of a value it keeps beyond one message.
import { describe, expect, it } from 'vitest';
import { keepBytes, keptBytes, own } from '../../../src/engine/transaction/own.js';

describe('own', () => {
  it('returns the same value for short, long, sliced, concatenated, non-Latin-1 and not well-formed strings', () => {
    const text = `${'x'.repeat(300)}Call-ID: 7f3a9c2e51d84b06@192.0.2.1\r\nTo: "Zoë 東京" <sip:+4930123@example.com>;tag=é1${'y'.repeat(300)}`;
    const cases = [
      'short', '', text.slice(300, 340), text.slice(text.indexOf('To:'), text.indexOf('é1') + 2), `${text.slice(0, 20)}${text.slice(-20)}`,
      `lone surrogate \ud800 in a long value`, `😀 emoji pair in a long value`,
    ];
    for (const s of cases) expect(own(s)).toBe(s);
    expect(own(undefined)).toBeUndefined();
  });

  it('keepBytes/keptBytes round-trip any bytes (a kept final or ACK)', () => {
    const bytes = Buffer.from([...Array(256).keys()]);
    expect(keptBytes(keepBytes(bytes)).equals(bytes)).toBe(true);
    const utf8 = Buffer.from('SIP/2.0 200 OK\r\nTo: "Zoë 東京" <sip:a@b>\r\n\r\n', 'utf8');
    expect(keptBytes(keepBytes(utf8)).equals(utf8)).toBe(true);
  });
});
