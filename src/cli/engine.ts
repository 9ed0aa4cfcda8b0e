// `peergate engine`: the embedded SIP engine alone, a stand-in for drachtio-server that
// accepts its main options. SIGHUP re-reads the TLS files (established connections keep
// their session); runs until SIGINT/SIGTERM, then closes cleanly.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { startEngine, type EngineOptions } from '../engine/engine.js';

const HELP = `usage: peergate engine [options]

Runs the SIP engine alone; drachtio-srf apps connect to it as to drachtio-server.

  --contact <uri>         SIP contact to listen on (repeatable), e.g.
                          sip:127.0.0.1:5060;transport=udp,tcp  or  sips:127.0.0.1:5061;transport=tls
                          (default sip:127.0.0.1:5060;transport=udp,tcp)
  --address <ip>          address of the wire-protocol (admin) listener (default 127.0.0.1)
  --port <n>              port of the wire-protocol listener (default 9022)
  --secret <s>            secret apps authenticate with (default cymru)
  --key-file <path>       TLS private key (PEM)
  --cert-file <path>      TLS certificate (PEM)
  --chain-file <path>     TLS intermediate certificates (PEM)
  --client-ca-file <path> CA bundle trusted for client certificates (repeatable)
  --crl-file <path>       CRL checked for client certificates (repeatable)
  --require-client-cert   refuse TLS clients without a certificate from a trusted CA
  --loglevel <level>      error | warn | info | debug (default info)
  --help                  this text

Signals: SIGHUP re-reads the TLS files for new handshakes; SIGINT/SIGTERM stop.`;

const LEVELS = ['error', 'warn', 'info', 'debug'];

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        contact: { type: 'string', multiple: true },
        address: { type: 'string' },
        port: { type: 'string' },
        secret: { type: 'string' },
        'key-file': { type: 'string' },
        'cert-file': { type: 'string' },
        'chain-file': { type: 'string' },
        'client-ca-file': { type: 'string', multiple: true },
        'crl-file': { type: 'string', multiple: true },
        'require-client-cert': { type: 'boolean' },
        loglevel: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (e) {
    console.error(`peergate engine: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  const level = values.loglevel ?? 'info';
  if (!LEVELS.includes(level)) { console.error(`peergate engine: --loglevel must be one of ${LEVELS.join(', ')}`); return 2; }
  const port = values.port !== undefined ? Number(values.port) : 9022;
  if (!Number.isInteger(port) || port < 0 || port > 65535) { console.error(`peergate engine: --port must be 0–65535, got "${values.port}"`); return 2; }
  const read = (what: string, p: string): string => {
    try { return readFileSync(p, 'utf8'); } catch (e) { throw new Error(`cannot read ${what} "${p}": ${(e as Error).message}`); }
  };
  const tlsFromFiles = (): EngineOptions['tls'] => ({
    key: read('--key-file', values['key-file']!),
    cert: read('--cert-file', values['cert-file']!),
    chain: values['chain-file'] ? read('--chain-file', values['chain-file']) : undefined,
    clientCAs: values['client-ca-file']?.map((f) => read('--client-ca-file', f)),
    crls: values['crl-file']?.map((f) => read('--crl-file', f)),
    requireClientCert: values['require-client-cert'] ?? false,
  });
  const opts: EngineOptions = {
    contacts: values.contact ?? ['sip:127.0.0.1:5060;transport=udp,tcp'],
    wire: { address: values.address ?? '127.0.0.1', port, secret: values.secret ?? 'cymru' },
  };
  try {
    const wantsTls = opts.contacts.some((c) => /^sips:|transport=[^;]*tls/i.test(c));
    if (values['key-file'] || values['cert-file'] || wantsTls) {
      if (!values['key-file'] || !values['cert-file']) throw new Error('TLS needs both --key-file and --cert-file');
      opts.tls = tlsFromFiles()!;
      if (opts.tls.requireClientCert && !opts.tls.clientCAs?.length) throw new Error('--require-client-cert needs --client-ca-file');
    }
  } catch (e) {
    console.error(`peergate engine: ${(e as Error).message}`);
    return 2;
  }
  const log = (lvl: string, msg: string) => {
    if (LEVELS.indexOf(lvl) <= LEVELS.indexOf(level)) console.log(JSON.stringify({ level: lvl, time: new Date().toISOString(), msg }));
  };
  let engine;
  try {
    engine = await startEngine({
      ...opts,
      logger: {
        debug: (o, m) => log('debug', `${m} ${JSON.stringify(o)}`),
        warn: (o, m) => log('warn', `${m} ${JSON.stringify(o)}`),
      },
    });
  } catch (e) {
    console.error(`peergate engine: ${(e as Error).message}`);
    return 1;
  }
  log('info', `engine listening: sip ${engine.hostports}; wire ${engine.wireAddress}:${engine.wirePort}`);
  const running = engine;
  const onHup = () => {
    if (!opts.tls) { log('info', 'SIGHUP: no TLS material to reload'); return; }
    try {
      running.transports.reloadTls(tlsFromFiles()!);
      log('info', 'SIGHUP: TLS material reloaded');
    } catch (e) {
      log('error', `SIGHUP: keeping the running TLS material: ${(e as Error).message}`);
    }
  };
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => { log('info', `${sig}: shutting down`); resolve(); };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.off('SIGHUP', onHup);
  await engine.close();
  log('info', 'engine stopped');
  return 0;
}
