// `peergate start`: parse the arguments, load the policy, hand everything else to the
// application (src/app/app.ts), and map signals to its lifecycle.
import { parseArgs } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { PolicyHolder, PolicyLoadError } from '../policy/reload.js';
import { createLogger } from '../log.js';
import { App } from '../app/app.js';
import { applyHeapGrowth, missingPrimaryNodeFlags } from '../app/heap.js';
import { keepRunningOnStrayRejections } from '../app/stray.js';
import { snapshotEnvironment } from '../app/env-snapshot.js';
import { checkWorkerNodeFlags, workerHangTimeoutMs, workerStartTimeoutMs } from '../app/workers/node-flags.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_POLICY = join(ROOT, 'policies', 'example.yaml');

const HELP = `usage: peergate start [--policy <file>] [--node-id <id>]
  Runs the SBE: embedded SIP engine, B2BUA, limits, identity, media relay, ops server.
  --policy <file>   policy YAML (default: policies/example.yaml; development
                    certificates are created under certs/dev/ when it is used)
  --node-id <id>    this node's id in a pool of SBEs, stable across restarts (default:
                    $PEERGATE_NODE_ID, else <hostname>:<ops port>)
  $PEERGATE_HEAP_GROWING_PERCENT: V8's old-generation growth step for this process
                    (default 50; 0 leaves V8's own sizing)
  $PEERGATE_WORKER_NODE_FLAGS: node/V8 options of the B2BUA worker processes, replacing
                    the default "--max-semi-space-size=2 --heap-growing-percent=50
                    --no-memory-reducer" (empty: none)
  $PEERGATE_WORKER_START_TIMEOUT_S: how long a B2BUA worker has to start before it is
                    killed and forked again (default 30)
  $PEERGATE_WORKER_HANG_TIMEOUT_S: how long a serving B2BUA worker may be silent (its
                    event loop stuck) before it is killed and forked again (default 20;
                    0: never)
  Signals: SIGHUP reloads the policy and the TLS material (so does editing those files);
  SIGTERM drains (no new calls; exits 0 when the last call ends or at
  lifecycle.drain_timeout_s, ending the rest with BYE); a second SIGTERM, or SIGINT,
  ends every call with BYE and exits at once.`;

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { policy: { type: 'string' }, 'node-id': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  } catch (err) {
    console.error(`peergate start: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.values.help) { console.log(HELP); return 0; }
  try {
    applyHeapGrowth();
    checkWorkerNodeFlags();
    workerStartTimeoutMs();
    workerHangTimeoutMs();
  } catch (err) {
    console.error(`peergate start: ${(err as Error).message}`);
    return 2;
  }
  const policyPath = resolve(args.values.policy ?? DEFAULT_POLICY);
  // The certificate tooling (node-forge) is loaded only for the example policy's dev certificates.
  if (policyPath === DEFAULT_POLICY || !args.values.policy) (await import('../pki/files.js')).ensureDevCertificates(join(ROOT, 'certs', 'dev'));

  let holder: PolicyHolder;
  try {
    holder = PolicyHolder.load(policyPath, { checkFiles: true });
  } catch (err) {
    if (err instanceof PolicyLoadError) { console.error(err.message); return 1; }
    throw err;
  }
  const policy = holder.current;
  const log = createLogger({ level: policy.log.level, name: 'peergate' });
  keepRunningOnStrayRejections(log);
  const missing = missingPrimaryNodeFlags();
  if (missing.length > 0) log.info({ missing }, "node was started without the primary's options (the systemd unit, the container and make start give them): without --max-semi-space-size=8 RSS under load is ≈ 20 MiB larger, and with V8's memory reducer the first seconds of load after an idle spell are slower");
  // With workers: 1 the B2BUA (drachtio-srf) runs in this process (env-snapshot.ts).
  snapshotEnvironment();
  const nodeId = args.values['node-id'] ?? process.env.PEERGATE_NODE_ID ?? `${hostname()}:${policy.ops.port}`;
  // Signals that arrive while the SBE is starting are acted on as soon as it has started.
  let app: App | undefined;
  let terms = 0;
  let interrupted = false;
  const act = () => {
    if (!app) return;
    if (interrupted || terms > 1) void app.stopNow(interrupted ? 'SIGINT' : 'SIGTERM');
    else if (terms === 1) app.drain('SIGTERM');
  };
  const onTerm = () => { terms++; log.info({ signal: 'SIGTERM' }, terms === 1 ? 'draining' : 'stopping now'); act(); };
  const onInt = () => { interrupted = true; act(); };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    app = await App.start({ holder, log, nodeId });
  } catch (err) {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    throw err;
  }
  act();
  // Only a drain or a stop ends the process.
  const code = await app.stopped;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  return code;
}
