// pino loggers. One root logger for the process; `callLogger(callId)` is a child whose
// every line carries `call`, so one grep follows a call through all stages.
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** A logger writing JSON lines to `destination` (default stdout). */
export function createLogger(opts: { level?: LevelWithSilent; destination?: DestinationStream; name?: string } = {}): Logger {
  const options = { level: opts.level ?? 'info', base: { name: opts.name ?? 'peergate' } };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** The process-wide root logger; level from PEERGATE_LOG_LEVEL until the policy sets it. */
export const logger: Logger = createLogger({ level: (process.env.PEERGATE_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info' });

/** Apply the policy's log.level; children created afterwards inherit it (pino copies the level at child creation). */
export function setLogLevel(level: LevelWithSilent, root: Logger = logger): void {
  root.level = level;
}

/** Child logger for one call: every line carries `call: <callId>`. */
export function callLogger(callId: string, parent: Logger = logger, bindings: Record<string, unknown> = {}): Logger {
  return parent.child({ ...bindings, call: callId });
}

/** Child logger for one module, e.g. moduleLogger('policy'). */
export function moduleLogger(module: string, parent: Logger = logger): Logger {
  return parent.child({ module });
}
