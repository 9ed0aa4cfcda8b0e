// `peergate <command>`: each command lives in its own module and is loaded on demand.
// Exit status: 0 success, 1 the command failed (one line on stderr says why), 2 usage error.
import { readFileSync } from 'node:fs';

const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  start: { summary: 'run the whole SBE (engine + B2BUA + ops) from a policy file', load: () => import('./start.js') },
  engine: { summary: 'run the embedded SIP engine alone (drachtio-server stand-in)', load: () => import('./engine.js') },
  check: { summary: 'validate a policy file: prints OK or file:line:column errors', load: () => import('./check.js') },
  certs: { summary: 'create development PKI: federation CA, peer TLS, STI-CA, identity certificates', load: () => import('./certs.js') },
};

function usage(): string {
  const lines = ['usage: peergate <command> [options]', '       peergate --version', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  lines.push('', "'peergate <command> --help' lists a command's options.");
  return lines.join('\n');
}

/** The version in package.json, two levels up from src/cli or dist/cli (also in the packages). */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** One line for the operator; the stack only on request (PEERGATE_DEBUG=1). */
export function describeFailure(command: string | undefined, err: unknown): string {
  if (process.env.PEERGATE_DEBUG && err instanceof Error && err.stack) return err.stack;
  const text = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const oneLine = text.replace(/\s*\n\s*/g, ' ').trim() || 'failed';
  const withCode = typeof code === 'string' && !oneLine.includes(code) ? `${oneLine} (${code})` : oneLine;
  return `peergate${command ? ` ${command}` : ''}: ${withCode}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(usage());
    return 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`peergate ${version()}`);
    return 0;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    // `peergate --help` also lists every command's options, so one call shows them all.
    for (const c of Object.values(commands)) await (await c.load()).run(['--help']);
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`peergate: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await cmd.load()).run(rest);
}

// `peergate --help | head` closes the pipe early: that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); });

const argv = process.argv.slice(2);
main(argv).then(
  (code) => { if (code !== 0) process.exitCode = code; },
  (err: unknown) => {
    console.error(describeFailure(argv[0] !== undefined && argv[0] in commands ? argv[0] : undefined, err));
    // A failed start may leave servers or timers half-open; do not wait for them.
    process.exit(1);
  },
);
