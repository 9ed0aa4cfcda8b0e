// parse → serialize → parse gives the same message; serializing twice gives the same bytes.
import { describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import { parseMessage, serialize, type SipMessage } from '../../../src/engine/message/index.js';

function summary(m: SipMessage) {
  return {
    start: m.kind === 'request' ? [m.method, m.uri] : [m.status, m.reason],
    headers: m.headers.filter((h) => h.name !== 'content-length').map((h) => [h.name, h.raw, h.value]),
    body: m.body.toString('hex'),
  };
}

describe('round trip', () => {
  for (const [name, buf] of loadTorture('valid')) {
    it(`round-trips ${name}`, () => {
      const first = parseMessage(buf);
      if (!first.ok) throw new Error(first.error);
      const bytes = serialize(first.message);
      const second = parseMessage(bytes);
      if (!second.ok) throw new Error(`${name} re-parse: ${second.error}`);
      expect(summary(second.message)).toEqual(summary(first.message));
      expect(serialize(second.message).equals(bytes)).toBe(true);
    });
  }
});
