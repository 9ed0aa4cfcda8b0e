// B2BUA call rate with caller identity required (RFC 8224/8588), against the same path with
// identity off, in one run. Kamailio (secsipid) signs every INVITE freshly, since peergate
// refuses replays; an identical Kamailio that does not sign feeds the comparison path.
//
//   npx tsx bench/identity-b2bua.bench.ts [--max 400] [--seconds 5]
import './require-build.js';
import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, scratchDir, startProcess, startSipp, stopAll, waitFor, writeFile } from '../test/helpers/procs.js';
import { startPeergate } from '../test/helpers/peergate.js';
import { kamailioSignerConfig, makeTestPki, startCertServer } from '../test/helpers/identity.js';

const { values } = parseArgs({ options: { max: { type: 'string', default: '400' }, seconds: { type: 'string', default: '5' } } });
const SECONDS = Number(values.seconds);
const RATES = [100, 200, 300, 400, 600].filter((r) => r <= Number(values.max));
const SIGNED_IP = '127.0.0.2';
const PLAIN_IP = '127.0.0.5';

async function main(): Promise<void> {
  const pki = makeTestPki();
  const srv = await startCertServer(pki, { '/stir.pem': { body: readFileSync(pki.sp.cert) } });
  const [peerSip, coreSip, ops, uas, kSigned, kPlain] = await freePorts(6) as number[];
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uas), '-t', 'u1', '-max_socket', '5000']);
  const dir = scratchDir('id-bench-');
  const kamailio = (name: string, listen: string, sign: boolean) => {
    const run = join(dir, name);
    mkdirSync(run);
    let cfg = kamailioSignerConfig({ listen, forwardTo: `127.0.0.1:${peerSip}`, pki, certUrl: srv.url('/stir.pem'), mode: 'shaken' })
      .replace('children=1', 'children=2');
    if (!sign) cfg = cfg.replace(/if \(is_method\("INVITE"\)\) \{[^}]*\}/, '');
    const file = writeFile(dir, `${name}.cfg`, cfg);
    return startProcess('kamailio', ['-f', file, '-DD', '-E', '-Y', run, '-P', join(run, 'k.pid'), '-m', '128', '-M', '16', '-w', run]);
  };
  kamailio('signed', `${SIGNED_IP}:${kSigned}`, true);
  kamailio('plain', `${PLAIN_IP}:${kPlain}`, false);
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerSip },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: coreSip },
    ],
    core: { targets: [`sip:127.0.0.3:${uas}`] },
    media: { anchoring: false },
    ops: { port: ops },
    log: { level: 'error' },
    identity: { trust_anchors: [pki.stiRoot], fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca], timeout_ms: 2000 } },
    peers: [
      { id: 'signed', match: { addresses: [`${SIGNED_IP}/32`] }, identity: { mode: 'required', standards: ['rfc8224'] }, limits: { cps: 100000, burst: 100000 } },
      { id: 'plain', match: { addresses: [`${PLAIN_IP}/32`] }, identity: { mode: 'off' }, limits: { cps: 100000, burst: 100000 } },
    ],
    routes: [{ from: 'peers', to: 'core' }],
  });
  // A caller inside the test SP certificate's TNAuthList (12025550100 + 100).
  const scenario = writeFile(dir, 'uac.xml', readFileSync(join(import.meta.dirname, '..', 'test', 'fixtures', 'sipp-b2bua', 'uac-tn.xml'), 'utf8').replaceAll('+15550001', '+12025550142'));
  try {
    await waitFor(async () => (await runSipp(['-sf', scenario, `${SIGNED_IP}:${kSigned}`, '-i', '127.0.0.9', '-p', '0', '-t', 'u1', '-s', '+14155550123', '-m', '1'], { timeoutS: 10 })).successful === 1, 20_000, 500, 'a first signed call');
    // Every rate for both paths (a stray failure through Kamailio should not end a sweep):
    // the table compares completed calls per rate.
    const rows: string[] = [];
    for (const rate of RATES) {
      const run = (target: string) => runSipp(['-sf', scenario, target, '-i', '127.0.0.9', '-p', '0', '-t', 'u1', '-s', '+14155550123',
        '-r', String(rate), '-m', String(rate * SECONDS), '-l', String(rate * 4), '-max_socket', '5000'], { timeoutS: SECONDS * 4 + 10 });
      const off = await run(`${PLAIN_IP}:${kPlain}`);
      const req = await run(`${SIGNED_IP}:${kSigned}`);
      const pct = (r: { successful: number }) => `${(100 * r.successful / (rate * SECONDS)).toFixed(1)}%`;
      rows.push(`| ${rate} | ${off.successful}/${rate * SECONDS} (${pct(off)}) | ${req.successful}/${rate * SECONDS} (${pct(req)}) |`);
      console.log(rows[rows.length - 1]);
    }
    const verified = await pg.metric('peergate_identity_verifications_total', { result: 'pass' });
    console.log(`\n| offered calls/s | identity off: completed | identity required: completed |\n|---|---|---|\n${rows.join('\n')}`);
    console.log(`\nPASSporTs verified by peergate: ${verified}`);
  } finally {
    await pg.stop();
    await srv.close();
    await stopAll();
  }
}

await main();
