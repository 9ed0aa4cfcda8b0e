// peergate check — placeholder until its owner lands it.
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) { console.log('peergate check: not implemented yet'); return 0; }
  console.error('peergate check: not implemented yet');
  return 1;
}
