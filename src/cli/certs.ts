// `peergate certs <subcommand> --out DIR ...`: development and test PKI (src/pki).
import { parseArgs } from 'node:util';
import {
  createFederationCa, createPeerCertificate, createRfc4474Certificate, createSpCertificate, createStiCa,
  ensureDevCertificates, parseTnAuthSpec, type Written,
} from '../pki/files.js';

const HELP = `peergate certs <subcommand> [--out DIR] [options]   (DIR defaults to certs/dev)

  dev                          federation CA, SBE TLS cert (localhost, 127.0.0.1), peer client cert,
                               STI-CA root+intermediate, a SHAKEN SP cert and an RFC 4474 cert;
                               keeps files that already exist
  federation-ca [--cn NAME]    root CA for mutual TLS                  -> federation-ca.pem/.key
  peer --cn CN [--san A,B] [--name N] [--issuer federation-ca]
                               TLS server+client certificate            -> N.pem/.key
  sti-ca                       STI-CA root + intermediate (EC P-256)    -> sti-ca-root, sti-ca-intermediate
  sp --tn-auth-list SPC:709J,TN:12025550100,RANGE:12025550100+100 [--name N] [--issuer sti-ca-intermediate]
                               SHAKEN signing cert with TNAuthList      -> N.pem (leaf+intermediate)/.key
  rfc4474 --domain D [--name N] [--issuer CA]
                               RSA-2048 cert for RFC 4474 signing       -> N.pem/.key (self-signed without --issuer)
common: --days N   --skip-existing`;

function print(list: Written[]): void {
  for (const w of list) console.log(`${w.created ? 'created' : 'kept   '} ${w.certPath}  ${w.keyPath}`);
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { console.log(HELP); return 0; }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        out: { type: 'string' }, cn: { type: 'string' }, san: { type: 'string' }, name: { type: 'string' },
        issuer: { type: 'string' }, 'tn-auth-list': { type: 'string' }, domain: { type: 'string' },
        days: { type: 'string' }, 'skip-existing': { type: 'boolean' },
      },
    });
  } catch (e) {
    console.error(`peergate certs: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const sub = positionals[0];
  const dir = v.out ?? 'certs/dev';
  const days = v.days !== undefined ? Number(v.days) : undefined;
  if (days !== undefined && (!Number.isInteger(days) || days <= 0)) { console.error('peergate certs: --days must be a positive integer'); return 2; }
  const common = { skipExisting: v['skip-existing'] ?? false, ...(days ? { days } : {}) };
  const issuer = v.issuer ? { issuer: v.issuer } : {};
  try {
    switch (sub) {
      case 'dev': {
        const d = ensureDevCertificates(dir);
        print([d.federationCa, d.server, d.peer, d.stiRoot, d.stiIntermediate, d.sp, d.rfc4474]);
        return 0;
      }
      case 'federation-ca': print([createFederationCa(dir, { ...common, ...(v.cn ? { cn: v.cn } : {}) })]); return 0;
      case 'peer': {
        if (!v.cn) throw new Error('peer needs --cn');
        const san = v.san ? v.san.split(',').map((s) => s.trim()).filter(Boolean) : [v.cn];
        print([createPeerCertificate(dir, v.name ?? v.cn, { ...common, ...issuer, cn: v.cn, san })]);
        return 0;
      }
      case 'sti-ca': print(createStiCa(dir, common)); return 0;
      case 'sp': {
        if (!v['tn-auth-list']) throw new Error('sp needs --tn-auth-list');
        print([createSpCertificate(dir, v.name ?? 'sp', { ...common, ...issuer, tnAuthList: parseTnAuthSpec(v['tn-auth-list']) })]);
        return 0;
      }
      case 'rfc4474': {
        if (!v.domain) throw new Error('rfc4474 needs --domain');
        print([createRfc4474Certificate(dir, v.name ?? `rfc4474-${v.domain}`, { ...common, ...issuer, domain: v.domain })]);
        return 0;
      }
      default:
        console.error(`peergate certs: ${sub ? `unknown subcommand '${sub}'` : 'missing subcommand'}\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    console.error(`peergate certs ${sub}: ${(e as Error).message}`);
    return 1;
  }
}
