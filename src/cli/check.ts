// `peergate check <file>...`: validate policy files. Prints `<file>: OK` or one
// `file:line:column: keyPath: message` line per error (stderr); exit status 0 when all are valid.
import { loadPolicy, formatError } from '../policy/load.js';

const HELP = `usage: peergate check [--check-files] <policy.yaml>...
  Validates policy files against the schema (unknown keys are errors).
  --check-files   also report certificate/key/CA files that do not exist`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { console.log(HELP); return 0; }
  const checkFiles = argv.includes('--check-files');
  const unknown = argv.filter((a) => a.startsWith('-') && a !== '--check-files');
  if (unknown.length > 0) { console.error(`peergate check: unknown option ${unknown[0]}\n${HELP}`); return 2; }
  const files = argv.filter((a) => !a.startsWith('-'));
  if (files.length === 0) { console.error(HELP); return 2; }
  let failed = false;
  for (const file of files) {
    const r = loadPolicy(file, { checkFiles });
    if (r.ok) {
      console.log(`${file}: OK`);
    } else {
      failed = true;
      for (const e of r.errors) console.error(formatError(e));
    }
  }
  return failed ? 1 : 0;
}
