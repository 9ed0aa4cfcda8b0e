// `peergate <command>`: each command lives in its own module and is loaded on demand.
const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  start: { summary: 'run the whole SBE (engine + B2BUA + ops) from a policy file', load: () => import('./start.js') },
  engine: { summary: 'run the embedded SIP engine alone (drachtio-server stand-in)', load: () => import('./engine.js') },
  check: { summary: 'validate a policy file: prints OK or file:line:column errors', load: () => import('./check.js') },
  certs: { summary: 'create development PKI: federation CA, peer TLS, STI-CA, identity certificates', load: () => import('./certs.js') },
};

function usage(): string {
  const lines = ['usage: peergate <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  lines.push('', "'peergate <command> --help' lists a command's options.");
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    if (name) {
      // `peergate --help` also lists every command's options, so one call shows them all.
      for (const c of Object.values(commands)) await (await c.load()).run(['--help']);
    }
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`peergate: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await cmd.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== 0) process.exitCode = code; },
  (err: unknown) => { console.error(err instanceof Error ? err.stack ?? err.message : String(err)); process.exitCode = 1; },
);
