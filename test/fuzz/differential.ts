// Differential check (issue #17.6): peergate's SIP parser and drachtio-srf's
// (node_modules/drachtio-srf/lib/sip-parser/parser.js) on the same corpus — the RFC 4475
// torture messages and the sip-parser seeds. `npx tsx test/fuzz/differential.ts` prints every
// disagreement; test/unit/fuzz/differential.test.ts pins them to the list in docs/fuzzing.md.
import { createRequire } from 'node:module';
import { parseMessage } from '../../src/engine/message/index.js';
import { loadTorture } from '../fixtures/torture/decode.js';
import { seedsOf, SEEDS_DIR } from './targets.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const srfParser = require('drachtio-srf/lib/sip-parser/parser.js') as { parseSipMessage(s: string, lazy?: boolean): unknown };

export interface Verdict { name: string; peergate: boolean; srf: boolean; peergateError?: string; srfError?: string }

/** drachtio-srf's verdict: it parses a message (not lazily: every header it knows) without throwing. */
function srfAccepts(buf: Buffer): { ok: boolean; error?: string } {
  try {
    const m = srfParser.parseSipMessage(buf.toString('utf8'), false);
    return m ? { ok: true } : { ok: false, error: 'no start line' };
  } catch (e) {
    return { ok: false, error: (e as Error)?.message ?? String(e) };
  }
}

export function corpus(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [n, b] of loadTorture('valid')) out.set(`torture/valid/${n}`, b);
  for (const [n, b] of loadTorture('invalid')) out.set(`torture/invalid/${n}`, b);
  const names = readdirSync(join(SEEDS_DIR, 'sip-parser')).sort();
  seedsOf('sip-parser').forEach((b, i) => out.set(`seeds/${names[i]}`, b));
  return out;
}

export function compare(): { verdicts: Verdict[]; disagreements: Verdict[] } {
  const verdicts: Verdict[] = [];
  for (const [name, buf] of corpus()) {
    const p = parseMessage(buf);
    const s = srfAccepts(buf);
    verdicts.push({ name, peergate: p.ok, srf: s.ok, ...(p.ok ? {} : { peergateError: p.error.slice(0, 100) }), ...(s.error ? { srfError: s.error.slice(0, 100) } : {}) });
  }
  return { verdicts, disagreements: verdicts.filter((v) => v.peergate !== v.srf) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { verdicts, disagreements } = compare();
  console.log(`${verdicts.length} messages; both accept ${verdicts.filter((v) => v.peergate && v.srf).length}, both reject ${verdicts.filter((v) => !v.peergate && !v.srf).length}, disagree ${disagreements.length}`);
  for (const d of disagreements) console.log(`${d.name}: peergate ${d.peergate ? 'accepts' : `rejects (${d.peergateError})`}; drachtio-srf ${d.srf ? 'accepts' : `rejects (${d.srfError})`}`);
}
