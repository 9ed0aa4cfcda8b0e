// peergate start — placeholder until its owner lands it.
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) { console.log('peergate start: not implemented yet'); return 0; }
  console.error('peergate start: not implemented yet');
  return 1;
}
