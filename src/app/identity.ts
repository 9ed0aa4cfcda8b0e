// Caller identity (RFC 8224 / RFC 4474) as a subsystem. Its verifier is built per policy,
// so trust anchors and fetch settings apply at once (the anchors are read again on every
// reload, also when only a file's content changed); prepare() refuses a policy whose anchor
// files cannot be read or hold no certificate, so a reload never installs anchors that would
// fail every call. The anchor paths are absolute: the policy loader resolved them (FilePath).
import { accessSync, constants } from 'node:fs';
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { createIdentityStage } from '../sbc/identity/index.js';
import { loadAnchors } from '../sbc/identity/chain.js';
import type { IdentityStage } from '../sbc/stages.js';
import type { Store } from '../store/index.js';
import { APPLIED, type PolicyProblem, type Reconfigured, type Subsystem } from './subsystem.js';

export class IdentitySubsystem implements Subsystem {
  readonly name = 'identity';
  readonly stage: IdentityStage;

  constructor(store: Store, log: Logger) {
    // Replay cache shared across the pool through the store.
    this.stage = createIdentityStage({
      seenOnce: (key, ttlMs) => store.seenOnce(key, ttlMs),
      onSignError: (peer, err) => log.warn({ peer, err: err.message }, 'cannot sign toward peer; sending unsigned'),
    });
  }

  async start(): Promise<void> { /* verifiers are built per policy on first use */ }

  prepare(next: Policy): PolicyProblem[] {
    const problems: PolicyProblem[] = [];
    const check = (keyPath: (string | number)[], file: string) => {
      try { accessSync(file, constants.R_OK); } catch (err) { problems.push({ keyPath, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }); return; }
      try { loadAnchors([file]); } catch (err) {
        const m = /^identity trust anchor (.*)$/.exec((err as Error).message);
        problems.push({ keyPath, message: m?.[1] ?? `${file}: not a PEM certificate` });
      }
    };
    next.identity.trust_anchors.forEach((f, i) => check(['identity', 'trust_anchors', i], f));
    next.identity.rfc4474_trust_anchors?.forEach((f, i) => check(['identity', 'rfc4474_trust_anchors', i], f));
    return problems;
  }

  reconfigure(): Reconfigured { return APPLIED; }
  ready(): true | string { return true; }
  async close(): Promise<void> { /* nothing held */ }
}
