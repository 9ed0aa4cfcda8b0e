// Promise rejections nobody handled. Node's default ends the process on the first one; for an
// SBE that would drop every call for what is, by construction, a failure already over (a
// library's internal command rejected on a closed connection, say). So each one is logged
// with its stack and counted, and the process goes on. Synchronous exceptions that escape
// (uncaughtException) still end it: after one, the process's state is unknown.
import type { Logger } from 'pino';
import { counter } from '../ops/metrics.js';

const strayRejections = counter('peergate_unhandled_rejections_total',
  'Promise rejections no code handled (a peergate or library bug: logged with its stack, the process went on)');

let installed: ((reason: unknown) => void) | undefined;

/** Log and count unhandled rejections instead of exiting (once per process). */
export function keepRunningOnStrayRejections(log: Pick<Logger, 'error'>): void {
  if (installed) return;
  installed = (reason: unknown) => {
    strayRejections.inc();
    const err = reason instanceof Error ? { message: reason.message, stack: reason.stack } : { message: String(reason) };
    log.error({ err }, 'unhandled promise rejection (a bug: please report it with this stack); the process goes on');
  };
  process.on('unhandledRejection', installed);
}
