// The grammar's fast paths (issue #14) against the general readers they stand in for, on the
// RFC 4475 torture values, the sip-parser fuzz seeds and seeded mutations of both:
// - parseVia: VIA_FAST + indexOf slices + plainParams vs scanVia + parseParams. A leading SP
//   (which the grammar skips) sends any value down the general path, so parseVia(' ' + v) is
//   the general reader's answer for v.
// - parseCSeq: the one-pass `digits SP method` read vs the general one (leading SP likewise).
// - getTag: tagAfter's indexOf reading vs paramValue (the general parameter reader) from the
//   same start, i.e. the tag reader as it was before the fast path.
// - the parser's control-character checks (issue #17), which any faster scan must keep: nothing
//   it accepts holds a control character outside a quoted-pair, in any header or Reason-Phrase.
import { describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import { seedsOf } from '../../fuzz/targets.js';
import { mutate, rng } from '../../helpers/message-fuzz.js';
import { parseMessage } from '../../../src/engine/message/index.js';
import {
  MAX_CSEQ, MAX_REQUEST_CSEQ, controlCharIn, getTag, hasControlChar, headerParamsStart, paramValue, parseCSeq, parseVia,
} from '../../../src/sip/grammar/index.js';

const MUTANTS_PER_VALUE = 40;

/** Header values of every torture message and seed (start lines too), one string each. */
function corpusValues(): string[] {
  const out: string[] = [];
  const buffers = [...loadTorture('valid').values(), ...loadTorture('invalid').values(), ...seedsOf('sip-parser')];
  for (const b of buffers) {
    const text = b.toString('latin1');
    const head = text.split(/\r?\n\r?\n/, 1)[0]!;
    for (const line of head.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      out.push(colon > 0 ? line.slice(colon + 1).trim() : line);
    }
  }
  return out;
}

/** Usual shapes (the ones the fast paths take) with random tokens, hosts, ports and params. */
function usualValues(r: () => number, n: number): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const tok = () => pick(['z9hG4bK', 'abc', 'X-1', 'a.b', '4f2a8c1e', "t!%*_+`'~", '']) + Math.floor(r() * 1e6).toString(36);
  const host = () => pick(['198.51.100.10', 'peer.example.net', 'H', '10.0.0.1', 'a-b.c_d']);
  const port = () => pick(['', ':5060', ':0', ':65535', ':65536', ':007', ':']);
  const param = () => pick([`;branch=${tok()}`, ';rport', `;received=${host()}`, `;maddr=[2001:db8::1]`, `;x="q;tag=no"`, `;TAG=${tok()}`, `;tag=${tok()}`, ';tag', ';tag=', `; tag = ${tok()}`, `;Tag=${tok()}`, ';ttl=1']);
  const params = () => Array.from({ length: Math.floor(r() * 4) }, param).join('');
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(`SIP/2.0/${pick(['UDP', 'TCP', 'TLS', 'WS', 'udp'])} ${host()}${port()}${params()}`);
    out.push(`${pick(['', '"Alice Example" ', 'Bob ', '"a\\"b" ', '"x>y;tag=q" '])}<sip:${tok()}@${host()}${port()};user=phone>${params()}`);
    out.push(`sip:${tok()}@${host()}${params()}`);
    out.push(`${Math.floor(r() * 3e9)}${pick([' ', '  ', '\t', ''])}${pick(['INVITE', 'ACK', 'BYE', 'x y', 'OPTIONS '])}`);
  }
  return out;
}

/** The values above and seeded byte mutations of each (the message fuzzer's mutations). */
function values(): string[] {
  const r = rng(0x14_14);
  const base = [...corpusValues(), ...usualValues(r, 400)];
  const out = [...base];
  for (const v of base) {
    const b = Buffer.from(v, 'latin1');
    for (let k = 0; k < MUTANTS_PER_VALUE / 10; k++) out.push(mutate(b, [b], r).toString('latin1').slice(0, 400));
  }
  for (let k = 0; k < base.length * 3; k++) out.push(base[Math.floor(r() * base.length)]!.replace(/ /g, () => (r() < 0.5 ? '' : ' ')));
  return out;
}

describe('grammar fast paths give the general readers\' answers', () => {
  const all = values();

  it('parseVia: fast path = scanVia + parseParams', () => {
    let accepted = 0;
    for (const v of all) {
      const fast = parseVia(v);
      expect(fast, JSON.stringify(v)).toEqual(parseVia(` ${v}`));
      if (fast !== null) accepted++;
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it('parseCSeq: the one-pass read = the general one, for the field, the request range and a smaller one', () => {
    let accepted = 0;
    for (const v of all) {
      for (const max of [MAX_CSEQ, MAX_REQUEST_CSEQ, 999]) {
        const fast = parseCSeq(v, max);
        expect(fast, JSON.stringify(v)).toEqual(parseCSeq(` ${v}`, max));
        if (fast !== null) accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(300);
  });

  it('getTag: tagAfter = paramValue from the same start (the reader before the fast path)', () => {
    let tags = 0;
    for (const v of all) {
      const gt = v.indexOf('"') < 0 ? v.lastIndexOf('>') : -1;
      const general = paramValue(v, gt >= 0 ? gt + 1 : headerParamsStart(v), 'tag') || undefined;
      expect(getTag(v), JSON.stringify(v)).toBe(general);
      if (general !== undefined) tags++;
    }
    expect(tags).toBeGreaterThan(300);
  });
});

describe('control characters in what the parser accepts', () => {
  it('accepts nothing that holds a control character outside a quoted-pair', () => {
    const corpus = [...loadTorture('valid').values(), ...seedsOf('sip-parser')];
    const r = rng(0x17);
    const ctls = [0, 1, 7, 8, 11, 12, 14, 27, 31, 127];
    let accepted = 0;
    let refused = 0;
    for (let k = 0; k < 4000; k++) {
      const src = corpus[Math.floor(r() * corpus.length)]!;
      const b = Buffer.from(src);
      // A control character somewhere in the header section (or the start line), maybe escaped.
      const headEnd = Math.max(1, b.indexOf('\r\n\r\n') < 0 ? b.length : b.indexOf('\r\n\r\n'));
      const at = Math.floor(r() * headEnd);
      const ins = Buffer.from([...(r() < 0.2 ? [92] : []), ctls[Math.floor(r() * ctls.length)]!]);
      const input = r() < 0.9 ? Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]) : b;
      const res = parseMessage(input);
      if (!res.ok) {
        refused++;
        continue;
      }
      accepted++;
      if (res.message.kind === 'response') expect(hasControlChar(res.message.reason)).toBe(false);
      for (const h of res.message.headers) expect(controlCharIn(h.value), `${h.raw}: ${JSON.stringify(h.value)}`).toBe(-1);
    }
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(1000);
  });
});
