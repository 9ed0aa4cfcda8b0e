// Bounded random fuzzing: mutations of the torture fixtures never make the parser throw or
// hang, failures are well-formed, and anything accepted can be serialized and re-accepted.
import { describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import { mutate, rng } from '../../helpers/message-fuzz.js';
import { parseMessage, serialize, type ParseLimits } from '../../../src/engine/message/index.js';
import { getTag, parseCSeq, parseNameAddr, parseUri, parseVia } from '../../../src/sip/grammar/index.js';

const CASES = 20_000;
// The machine is shared: stop early rather than slow the suite down; a hang still shows as `slowest`.
const TIME_BUDGET_MS = 10_000;

const STATUSES = new Set([400, 413, 414, 505, 513]);
const RECOVERED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

describe('parser fuzz', () => {
  it(`survives ${CASES} mutated messages`, () => {
    const corpus = [...loadTorture('valid').values(), ...loadTorture('invalid').values()];
    const r = rng(0x5eed);
    const limits: ParseLimits = { maxMessageBytes: 8192, maxHeaders: 64, maxHeaderBytes: 2048, maxUriBytes: 512 };
    const started = Date.now();
    let done = 0;
    let accepted = 0;
    let slowest = 0;
    for (; done < CASES && Date.now() - started < TIME_BUDGET_MS; done++) {
      const input = mutate(corpus[Math.floor(r() * corpus.length)]!, corpus, r);
      const withLimits = r() < 0.5;
      const t0 = performance.now();
      const res = withLimits ? parseMessage(input, limits) : parseMessage(input);
      let took = performance.now() - t0;
      if (took > 50) {
        // The host is shared: re-time a slow case to tell a real hang from being descheduled.
        for (let k = 0; k < 3; k++) {
          const t1 = performance.now();
          if (withLimits) parseMessage(input, limits);
          else parseMessage(input);
          took = Math.min(took, performance.now() - t1);
        }
      }
      slowest = Math.max(slowest, took);
      if (res.ok) {
        accepted++;
        const again = parseMessage(serialize(res.message));
        if (!again.ok) throw new Error(`accepted but not re-accepted after serialize: ${again.error}\n${input.toString('latin1')}`);
        for (const h of res.message.headers) {
          // value helpers must not throw on anything the parser lets through
          parseNameAddr(h.value);
          parseVia(h.value);
          parseCSeq(h.value);
          parseUri(h.value);
          getTag(h.value);
        }
      } else {
        if (!STATUSES.has(res.status)) throw new Error(`unexpected status ${res.status}: ${res.error}`);
        if (res.kind !== 'request' && res.kind !== 'response' && res.kind !== 'unknown') throw new Error(`bad kind ${String(res.kind)}`);
        if (typeof res.error !== 'string' || res.error.length === 0) throw new Error('failure without a reason');
        for (const h of res.headers) if (!RECOVERED.has(h.name)) throw new Error(`unexpected recovered header ${h.name}`);
      }
    }
    // Enough cases ran, both outcomes were exercised, and no single parse took long.
    console.log(`fuzz: ${done} cases, ${accepted} accepted, slowest ${slowest.toFixed(2)} ms, ${Date.now() - started} ms`);
    expect(done).toBeGreaterThanOrEqual(2_000);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(done);
    expect(slowest).toBeLessThan(50);
  }, 60_000);

  it('handles pathological inputs quickly', () => {
    const big = 60_000;
    const inputs = [
      Buffer.alloc(big, 0x0a),
      Buffer.alloc(big, 0x20),
      Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + 'Via: ' + ','.repeat(big) + '\r\n\r\n'),
      Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + 'X: ' + '"'.repeat(big) + '\r\n\r\n'),
      Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + 'Contact: ' + '<'.repeat(big) + '\r\n\r\n'),
      Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + ' x\r\n'.repeat(big / 4) + '\r\n'),
      Buffer.from('INVITE sip:a@b SIP/2.0\r\n' + 'A: b\r\n'.repeat(big / 6) + '\r\n'),
      Buffer.from('SIP/2.0 200 ' + 'x'.repeat(big)),
      Buffer.from('INVITE sip:a@b SIP/2.0\n' + 'A: b\n'.repeat(big / 5) + '\n'),
      Buffer.from('INVITE sip:a@b SIP/2.0\n' + 'x\n'.repeat(big / 2) + '\n'),
    ];
    for (const input of inputs) {
      let best = Infinity;
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        const res = parseMessage(input);
        best = Math.min(best, performance.now() - t0);
        expect(res.ok).toBe(false);
      }
      // linear work on 60 KB: far below this even on a loaded host (quadratic would be seconds)
      expect(best).toBeLessThan(100);
    }
  });
});
