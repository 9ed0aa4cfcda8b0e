// The five fuzz targets of issue #17.6 and their invariants. Seeds live in test/fuzz/seeds/<target>/
// (plus the RFC 4475 torture messages for the SIP parser).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { invariant, type FuzzTarget } from './engine.js';
import { loadTorture } from '../fixtures/torture/decode.js';
import { FAILURE_REASONS, parseMessage, serialize } from '../../src/engine/message/index.js';
import { FrameDecoder, encodeFrame, MAX_LENGTH_DIGITS } from '../../src/engine/wire/framing.js';
import { parseSdp, writeSdp, SdpError, SDP_MAX_BYTES } from '../../src/sbc/media/sdp.js';
import { SdpOrigins } from '../../src/sbc/media/sdp-topology.js';
import { parsePolicy } from '../../src/policy/load.js';
import { parsePassport, PassportError } from '../../src/sbc/identity/passport.js';
import { parseIdentityValue, parseIdentityValueShared, splitIdentityValues, canonicalTn } from '../../src/sbc/identity/sipfields.js';

export const SEEDS_DIR = join(import.meta.dirname, 'seeds');

export function seedsOf(name: string): Buffer[] {
  const dir = join(SEEDS_DIR, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().map((f) => readFileSync(join(dir, f)));
}

const PARSE_STATUSES = new Set([400, 413, 414, 494, 505, 513]);

/** RFC 3261 parser: never throws (its defence-in-depth catch is a finding), failures carry an
 *  answerable status, and an accepted message re-serializes to a fixed point. */
export function sipParserTarget(): FuzzTarget {
  return {
    name: 'sip-parser',
    sources: ['src/engine/message/', 'src/sip/'],
    seeds: [...seedsOf('sip-parser'), ...loadTorture('valid').values(), ...loadTorture('invalid').values()],
    dictionary: ['INVITE ', ' SIP/2.0\r\n', 'SIP/2.0 200 OK\r\n', 'Via: SIP/2.0/UDP ', ';branch=z9hG4bK', 'Content-Length: ', 'Call-ID: ',
      'CSeq: 1 INVITE\r\n', 'From: <sip:a@b>;tag=1\r\n', 'To: ', 'Contact: ', 'v: ', 'l: ', 'm: ', 'sips:', 'tel:', '[::1]', '%00', '\r\n\r\n', '\r\n ', '"\\"'],
    run(input) {
      const r = parseMessage(input);
      if (!r.ok) {
        invariant(!r.error.startsWith('unparseable message ('), `parser threw: ${r.error}`);
        invariant(PARSE_STATUSES.has(r.status), `failure status ${r.status}`);
        invariant(typeof r.error === 'string' && r.error.length > 0, 'failure reason missing');
        // The reason phrase on the wire is fixed wording for the status; the detail (logs,
        // metrics) may quote input, cut short (docs/fuzzing.md F1).
        invariant(r.reason === FAILURE_REASONS[r.status], `failure reason phrase not the fixed wording: ${r.reason.slice(0, 100)}`);
        invariant(r.error.length < 300, 'failure detail reflects unbounded input');
        return `fail:${r.status}:${r.error.replace(/[0-9]+/g, 'N').slice(0, 60)}`;
      }
      const once = serialize(r.message);
      const again = parseMessage(once);
      invariant(again.ok, `serialized message no longer parses: ${again.ok ? '' : again.error}`);
      const twice = serialize(again.message);
      invariant(once.equals(twice), 'parse→serialize→parse→serialize not stable');
      const m = r.message;
      return `ok:${m.kind}:${m.kind === 'request' ? m.method : Math.floor(m.status / 100)}:${m.headers.length > 20 ? 'many' : m.headers.map((h) => h.name[0]).join('')}`;
    },
  };
}

/** drachtio wire framing: frames come out whole in order whatever the chunking, or the decoder
 *  reports a framing error; never throws; an encoded payload always decodes to itself. */
export function framingTarget(): FuzzTarget {
  return {
    name: 'wire-framing',
    sources: ['src/engine/wire/'],
    seeds: seedsOf('wire-framing'),
    dictionary: ['#', '0#', '99999#', '100000#', '\r\n', '|', 'sip|', 'response|', 'authenticate|', '€'],
    run(input) {
      const whole = new FrameDecoder().push(input);
      // The same bytes cut at two points must give the same frames (reassembly).
      const a = input.length >> 1, b = (input.length * 3) >> 2;
      const d = new FrameDecoder();
      const parts = [d.push(input.subarray(0, a)), d.push(input.subarray(a, b)), d.push(input.subarray(b))];
      const split = parts.flatMap((p) => p.frames);
      const splitErr = parts.find((p) => p.error)?.error;
      invariant(Boolean(whole.error) === Boolean(splitErr), `chunking changed the verdict: ${whole.error} vs ${splitErr}`);
      invariant(split.length === whole.frames.length && split.every((f, i) => f === whole.frames[i]), 'chunking changed the frames');
      for (const f of whole.frames) {
        const back = new FrameDecoder().push(encodeFrame(f));
        invariant(!back.error && back.frames.length === 1 && back.frames[0] === f, 'encode→decode not identity');
        invariant(String(Buffer.byteLength(f)).length <= MAX_LENGTH_DIGITS, 'frame longer than the prefix allows');
      }
      return `${whole.error ?? 'ok'}:${Math.min(whole.frames.length, 3)}`;
    },
  };
}

const IDENTITY_LINE = /^[iuep]=|^a=tool:/;

/** SDP reader/writer and the topology rewrite: only SdpError escapes; write→parse is a fixed
 *  point; the rewrite removes every identity line, keeps c=/m=, and is stable on its output. */
export function sdpTarget(): FuzzTarget {
  const origins = new SdpOrigins();
  let n = 0;
  return {
    name: 'sdp',
    sources: ['src/sbc/media/sdp.ts', 'src/sbc/media/sdp-topology.ts'],
    seeds: seedsOf('sdp'),
    dictionary: ['v=0\r\n', 'o=', 's=', 'i=', 'u=', 'e=', 'p=', 'c=IN IP4 ', 'c=IN IP6 ', 'm=audio ', ' RTP/AVP ', ' UDP/TLS/RTP/SAVPF ', 'a=crypto:1 ', 'a=tool:', 't=0 0\r\n', '\n', '\r\n', '65536', '/2'],
    run(input) {
      const text = input.toString('latin1');
      let sdp;
      try {
        sdp = parseSdp(text);
      } catch (e) {
        invariant(e instanceof SdpError, `parseSdp threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
        return `err:${e.message.replace(/[0-9]+/g, 'N')}`;
      }
      const written = writeSdp(sdp);
      invariant(written.length <= SDP_MAX_BYTES + 2 * 2000 + 2, 'writeSdp grew the body beyond its bounds');
      const reparsed = parseSdp(written);
      invariant(writeSdp(reparsed) === written, 'write→parse→write not stable');
      const cm = written.split('\r\n').filter((l) => l.startsWith('c=') || l.startsWith('m='));
      const callId = `c${n++ % 4}`;
      const hidden = origins.hideText(callId, 'A', written);
      const lines = hidden.split('\r\n');
      invariant(!lines.some((l) => IDENTITY_LINE.test(l)), 'identity line survived the rewrite');
      invariant(lines.filter((l) => l.startsWith('s=')).length === 1 && lines.includes('s=-'), 's= not hidden');
      invariant(lines.some((l) => l.startsWith('o=- ')), 'o= username not hidden');
      const cm2 = lines.filter((l) => l.startsWith('c=') || l.startsWith('m='));
      invariant(cm.length === cm2.length && cm.every((l, i) => l === cm2[i]), 'c=/m= changed by the identity rewrite');
      const again = origins.hideText(callId, 'A', hidden);
      invariant(again === hidden, 'rewrite of an unchanged body changed it (sess-version must not move)');
      if (n % 4 === 0) for (let i = 0; i < 4; i++) origins.end(`c${i}`);
      return `ok:${sdp.media.length > 3 ? 'many' : sdp.media.map((m) => m.media).join(',')}:${sdp.session.length > 8 ? 'long' : sdp.session.map((l) => l[0]).join('')}`;
    },
  };
}

/** Policy loader: never throws; an error names a line ≥ 1 and a message; YAML is the input. */
export function policyTarget(): FuzzTarget {
  return {
    name: 'policy',
    sources: ['src/'], // the loader, the schema and every area's sub-schema and refinements
    seeds: seedsOf('policy'),
    dictionary: ['peers:\n', '  - id: ', 'listen:\n', 'routes:\n', 'core:\n', 'media:\n', ': ', '- ', '&a ', '*a', '!!binary ', '{', '}', '[', ']', '<<: *a\n', '0x10', '.inf', '~', '"\\u0000"', '\t'],
    run(input) {
      const r = parsePolicy(input.toString('utf8'), 'fuzz.yaml');
      if (r.ok) return 'ok';
      invariant(r.errors.length > 0, 'failure without errors');
      for (const e of r.errors) {
        invariant(e.file === 'fuzz.yaml' && e.line >= 1 && e.column >= 1 && typeof e.message === 'string' && e.message.length > 0, `bad error ${JSON.stringify(e)}`);
      }
      const e = r.errors[0]!;
      return `err:${e.keyPath.replace(/\[\d+\]/g, '[]').slice(0, 40)}:${e.message.replace(/[0-9]+/g, 'N').slice(0, 40)}`;
    },
  };
}

/** PASSporT (RFC 8225) and Identity header (RFC 8224/4474) parsers: only PassportError escapes
 *  parsePassport; the header splitters never throw; the cached parser equals the plain one. */
export function identityTarget(): FuzzTarget {
  return {
    name: 'identity',
    sources: ['src/sbc/identity/'],
    seeds: seedsOf('identity'),
    dictionary: ['.', '..', ';info=<', '>', ';alg=ES256', ';ppt=shaken', '"', ',', 'eyJ', '=', '+', '/', 'tel:+1', ';user=phone'],
    run(input) {
      const text = input.toString('latin1');
      const values = splitIdentityValues([text]);
      let sig = `v${Math.min(values.length, 3)}`;
      for (const v of values) {
        const plain = parseIdentityValue(v);
        const shared = parseIdentityValueShared(v);
        invariant(plain.token === shared.token, 'cached Identity parse differs (token)');
        invariant(plain.params.size === shared.params.size && [...plain.params].every(([k, x]) => shared.params.get(k) === x), 'cached Identity parse differs (params)');
        try {
          const p = parsePassport(plain.token);
          sig += p.compact ? ':compact' : `:full:${typeof p.header.alg}`;
        } catch (e) {
          invariant(e instanceof PassportError, `parsePassport threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
          sig += `:${e.message.slice(0, 30)}`;
        }
        canonicalTn(plain.params.get('info') ?? v);
      }
      return sig;
    },
  };
}

export const TARGETS: Record<string, () => FuzzTarget> = {
  'sip-parser': sipParserTarget,
  'wire-framing': framingTarget,
  sdp: sdpTarget,
  policy: policyTarget,
  identity: identityTarget,
};
