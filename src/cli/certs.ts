// peergate certs — placeholder until its owner lands it.
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help')) { console.log('peergate certs: not implemented yet'); return 0; }
  console.error('peergate certs: not implemented yet');
  return 1;
}
