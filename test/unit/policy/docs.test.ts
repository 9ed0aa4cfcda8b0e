// docs/policy.md stays in step with the schema: every key the root schema defines (the
// fragments owned by the limits/identity/media stages are documented on their own pages)
// must be mentioned, and every example in policies/ must pass the checker.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicySchema } from '../../../src/policy/schema.js';
import { PeerLimitsSchema, GlobalLimitsSchema } from '../../../src/sbc/limits/schema.js';
import { PeerIdentitySchema, GlobalIdentitySchema } from '../../../src/sbc/identity/schema.js';
import { SideMediaSchema, GlobalMediaSchema } from '../../../src/sbc/media/schema.js';
import { loadPolicy, formatError } from '../../../src/policy/load.js';
import { ensureDevCertificates } from '../../../src/pki/files.js';
import { scratchDir } from '../../helpers/procs.js';

const root = join(import.meta.dirname, '../../..');
const FRAGMENTS = new Set<unknown>([PeerLimitsSchema, GlobalLimitsSchema, PeerIdentitySchema, GlobalIdentitySchema, SideMediaSchema, GlobalMediaSchema]);

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown) => (s as { _zod: { def: Def } })._zod.def;

/** Dotted key paths of every object key reachable in the schema, not descending into fragments. */
function keyPaths(schema: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (FRAGMENTS.has(schema)) return out;
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
        const path = prefix ? `${prefix}.${k}` : k;
        out.add(path);
        keyPaths(v, path, out);
      }
      break;
    case 'optional': case 'default': case 'prefault': case 'nullable': case 'readonly':
      keyPaths(def.innerType, prefix, out); break;
    case 'pipe': keyPaths(def.in, prefix, out); break;
    case 'array': keyPaths(def.element, prefix, out); break;
    case 'union': for (const o of def.options as unknown[]) keyPaths(o, prefix, out); break;
  }
  return out;
}

describe('docs/policy.md', () => {
  const doc = readFileSync(join(root, 'docs/policy.md'), 'utf8');

  it('mentions every key of the root schema', () => {
    const paths = [...keyPaths(PolicySchema)];
    expect(paths).toContain('peers.match.certificate.fingerprints_sha256');
    expect(paths).toContain('store.redis.on_failure');
    const missing = paths.filter((p) => {
      const leaf = p.slice(p.lastIndexOf('.') + 1);
      // `leaf`, or a dotted mention ending in it (`redis.sentinel.name`).
      return !doc.includes(`\`${leaf}\``) && !new RegExp(`\`[\\w.]*\\.${leaf}\``).test(doc);
    });
    expect(missing, `document these keys in docs/policy.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('has a section for every top-level key', () => {
    const top = Object.keys(defOf(defOf(PolicySchema).in).shape as object);
    for (const k of top) expect(doc, `top-level key ${k}`).toMatch(new RegExp(`^\\| \`${k}\` \\|`, 'm'));
  });

  it('every policy under policies/ passes the checker', () => {
    const files = readdirSync(join(root, 'policies')).filter((f) => f.endsWith('.yaml'));
    expect(files).toContain('example.yaml');
    for (const f of files) {
      const r = loadPolicy(join(root, 'policies', f));
      expect(r.ok ? [] : r.errors.map(formatError), f).toEqual([]);
    }
  });
});

describe('policies/example.yaml with the development PKI', () => {
  it('names exactly the files `peergate certs dev` creates (what `peergate start` checks)', () => {
    const dir = scratchDir();
    mkdirSync(join(dir, 'policies'));
    copyFileSync(join(root, 'policies/example.yaml'), join(dir, 'policies/example.yaml'));
    const before = loadPolicy(join(dir, 'policies/example.yaml'), { checkFiles: true });
    expect(before.ok).toBe(false);
    ensureDevCertificates(join(dir, 'certs', 'dev'));
    const r = loadPolicy(join(dir, 'policies/example.yaml'), { checkFiles: true });
    expect(r.ok ? [] : r.errors.map(formatError)).toEqual([]);
  });
});
