// A B2BUA worker is handed the policy the primary validated, over the IPC channel as JSON
// (src/app/workers/hello.ts): the policy the loader returns must survive that unchanged. A
// schema change that put a Date, a Map, a RegExp or an `undefined` value in it would make the
// workers run something other than the primary; this catches it for every shipped policy.
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicy, formatError } from '../../../src/policy/load.js';

const root = join(import.meta.dirname, '../../..');
const files = [
  ...readdirSync(join(root, 'policies')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'policies', f)),
  ...['compose', 'container', 'debian'].map((d) => join(root, 'deploy', d, 'policy.yaml')),
];

describe('the policy as a worker receives it', () => {
  it.each(files)('%s: a JSON round trip gives the same policy', (file) => {
    // The token from the environment where the file does not name a token file.
    let r = loadPolicy(file, { env: {} });
    if (!r.ok) r = loadPolicy(file, { env: { PEERGATE_ADMIN_TOKEN: 'a-token-from-the-environment' } });
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(JSON.parse(JSON.stringify(r.policy))).toStrictEqual(r.policy);
  });

  it('a value JSON would change is caught by the comparison', () => {
    const r = loadPolicy(join(root, 'policies/example.yaml'));
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    const changed = { ...r.policy, extra: undefined, when: new Date(0) };
    expect(JSON.parse(JSON.stringify(changed))).not.toStrictEqual(changed);
  });
});
