// peergate engine — placeholder until its owner lands it.
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) { console.log('peergate engine: not implemented yet'); return 0; }
  console.error('peergate engine: not implemented yet');
  return 1;
}
