// Run the fuzz targets: `npx tsx test/fuzz/run.ts [--runs N] [--seconds S] [--seed N] [target …]`.
// Default: every target, 1,000,000 inputs each (the long run of docs/fuzzing.md). Findings are
// written to test/fuzz/findings/<target>-<n>.bin (git-ignored) and make the exit status 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import { TARGETS } from './targets.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string', default: '1000000' }, seconds: { type: 'string' }, seed: { type: 'string', default: '1' } },
});
const names = positionals.length ? positionals : Object.keys(TARGETS);
let failed = false;
for (const name of names) {
  const make = TARGETS[name];
  if (!make) { console.error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`); process.exit(2); }
  const r = fuzz(make(), {
    runs: Number(values.runs), seed: Number(values.seed),
    ...(values.seconds ? { maxMs: Number(values.seconds) * 1000 } : {}),
  });
  console.log(`${name}: ${r.runs} inputs in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.runs / (r.ms / 1000))}/s), ${r.signatures} outcome signatures, corpus ${r.corpus}, findings ${r.findings.length}${Object.keys(r.known).length ? `, known ${JSON.stringify(r.known)}` : ''}`);
  if (r.findings.length) {
    failed = true;
    const dir = join(import.meta.dirname, 'findings');
    mkdirSync(dir, { recursive: true });
    r.findings.forEach((f, i) => {
      writeFileSync(join(dir, `${name}-${i}.bin`), f.input);
      console.log(`  finding ${i}: ${f.error.split('\n')[0]} (input in test/fuzz/findings/${name}-${i}.bin)`);
    });
  }
}
process.exit(failed ? 1 : 0);
