// Kamailio as an independent SIP peer that relays what arrives on UDP over mutual TLS to a
// listener of ours (components.md §4.2, §5), started and stopped by PID.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, startProcess, waitForTcp, writeFile, type Proc } from './procs.js';

export interface PemFiles { keyFile: string; certFile: string }

export interface KamailioTlsRelay { proc: Proc; udpPort: number; tlsPort: number }

/**
 * Start kamailio listening on UDP (and TLS, as a server with `server`'s certificate) and relaying
 * every request over TLS to `relayTo` (a `sip:…;transport=tls` URI), presenting `client` as its
 * certificate and trusting `ca`.
 */
export async function startKamailioTlsRelay(o: { dir: string; server: PemFiles; client: PemFiles; ca: { certFile: string }; relayTo: string }): Promise<KamailioTlsRelay> {
  const [udpPort, tlsPort] = await freePorts(2) as [number, number];
  const run = join(o.dir, 'run');
  mkdirSync(run, { recursive: true });
  const tlsCfg = writeFile(o.dir, 'tls.cfg', [
    '[server:default]', 'method = TLSv1.2+', 'verify_certificate = no', 'require_certificate = no',
    `private_key = ${o.server.keyFile}`, `certificate = ${o.server.certFile}`, `ca_list = ${o.ca.certFile}`, '',
    '[client:default]', 'method = TLSv1.2+', 'verify_certificate = yes', 'require_certificate = yes',
    `private_key = ${o.client.keyFile}`, `certificate = ${o.client.certFile}`, `ca_list = ${o.ca.certFile}`, '',
  ].join('\n'));
  const cfg = writeFile(o.dir, 'kamailio.cfg', `#!KAMAILIO
#!define FWD_DST "${o.relayTo}"
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:${udpPort}
listen=tls:127.0.0.1:${tlsPort}
enable_tls=yes
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
modparam("tls", "config", "${tlsCfg}")
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("1511", "7")) { exit; }
    if (is_method("CANCEL") && !t_check_trans()) exit;
    $du = FWD_DST;
    if (!t_relay()) sl_reply_error();
}
`);
  const proc = startProcess('kamailio', ['-f', cfg, '-DD', '-E', '-Y', run, '-P', join(run, 'kamailio.pid'), '-m', '64', '-M', '8', '-w', run]);
  await waitForTcp(tlsPort, 15_000).catch((e: Error) => { throw new Error(`${e.message}\n${proc.output().slice(-2000)}`); });
  return { proc, udpPort, tlsPort };
}
