// Run the fuzz targets:
//   npx tsx test/fuzz/run.ts [--mode guided|plain|observed] [--runs N] [--seconds S] [--seed N]
//                            [--corpus-out DIR] [--corpus-in DIR] [--batch N] [--files] [target …]
// Modes (docs/fuzzing.md): `guided` (default) keeps inputs that reach new V8 blocks or hit-count
// buckets; `plain` is the mutation fuzzer with behaviour feedback only (fastest: the long runs);
// `observed` is `plain` with coverage measured but not used, to compare the two fairly.
// Default: every target, 1,000,000 inputs each. Findings are written to
// test/fuzz/findings/<target>-<n>.bin (git-ignored) and make the exit status 1.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import { coverageOf, loadTargets, REPO_ROOT } from './load.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string', default: 'guided' },
    runs: { type: 'string', default: '1000000' },
    seconds: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'corpus-out': { type: 'string' },
    'corpus-in': { type: 'string' },
    files: { type: 'boolean', default: false },
    batch: { type: 'string' },
  },
});
const mode = values.mode;
if (mode !== 'guided' && mode !== 'plain' && mode !== 'observed') {
  console.error(`unknown mode ${mode}; known: guided, plain, observed`);
  process.exit(2);
}
const TARGETS = await loadTargets(mode !== 'plain');
const names = positionals.length ? positionals : Object.keys(TARGETS);
let failed = false;
for (const name of names) {
  const make = TARGETS[name];
  if (!make) { console.error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`); process.exit(2); }
  const made = make();
  // --corpus-in DIR: DIR/<target>/* join the seeds (resume from a saved corpus, or measure its
  // coverage with `--mode observed --runs 0`).
  const inDir = values['corpus-in'] ? join(values['corpus-in'], name) : undefined;
  const t = inDir && existsSync(inDir)
    ? { ...made, seeds: [...made.seeds, ...readdirSync(inDir).sort().map((f) => readFileSync(join(inDir, f)))] }
    : made;
  const cpu0 = process.cpuUsage();
  const r = fuzz(t, {
    runs: Number(values.runs), seed: Number(values.seed), root: REPO_ROOT,
    ...(mode !== 'plain' ? { coverage: coverageOf(t), guided: mode === 'guided' } : {}),
    ...(values.seconds ? { maxMs: Number(values.seconds) * 1000 } : {}),
    ...(values.batch ? { batch: Number(values.batch) } : {}),
  });
  const cpu = process.cpuUsage(cpu0);
  const c = r.coverage;
  console.log(`${name} [${mode}]: ${r.runs} inputs in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.runs / (r.ms / 1000))}/s, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s), ` +
    `${r.signatures} outcome signatures, corpus ${r.corpus}` +
    (c ? `, blocks ${c.blocks} of ${c.known} known (seeds ${r.seedBlocks}), features ${c.features}, replays ${r.replays}, takes ${c.takes} (${(c.takeMs / 1000).toFixed(1)} s)` : '') +
    `, findings ${r.findings.length}${Object.keys(r.known).length ? `, known ${JSON.stringify(r.known)}` : ''}`);
  if (c && values.files) for (const [f, v] of Object.entries(c.files)) console.log(`  ${f}: ${v.covered}/${v.known}`);
  if (values['corpus-out']) {
    const dir = join(values['corpus-out'], name);
    mkdirSync(dir, { recursive: true });
    r.inputs.forEach((b, i) => writeFileSync(join(dir, `${String(i).padStart(5, '0')}.bin`), b));
  }
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
