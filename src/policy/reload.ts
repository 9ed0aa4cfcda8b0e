// Hot reload of the policy, atomically: a file that fails to load never replaces the
// policy in force. The policy object is deep-frozen; a call captures `holder.current` once
// when it starts and keeps using that object, so a reload never changes a call midway.
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { loadPolicy, formatError, type PolicyError, type LoadOptions } from './load.js';
import { loadPolicyOffThread } from './parse-thread.js';
import type { Policy } from './schema.js';
import { policyReloadsTotal } from '../ops/metrics.js';
import { recordPolicyInForce } from '../ops/policy-metrics.js';
import { moduleLogger, type Logger } from '../log.js';

export class PolicyLoadError extends Error {
  constructor(readonly errors: PolicyError[]) {
    super(`invalid policy:\n${errors.map(formatError).join('\n')}`);
    this.name = 'PolicyLoadError';
  }
}

/**
 * Checks a valid policy against the running process before it is swapped in (TLS material
 * readable and consistent, …); errors refuse it like a schema error would.
 */
export type PolicyGate = (next: Policy, previous: Policy) => PolicyError[];

export interface PolicyHolderOptions extends LoadOptions {
  /** Quiet period after the last file event before reloading (editors write in bursts). */
  debounceMs?: number;
  logger?: Logger;
}

export interface PolicyHolderEvents {
  /** A new policy is in force; `previous` is what calls already running still use. */
  policy: [policy: Policy, previous: Policy];
  /** The file did not load; the running policy stays. */
  'reload-failed': [errors: PolicyError[]];
}

export class PolicyHolder extends EventEmitter<PolicyHolderEvents> {
  readonly path: string;
  private policy: Policy;
  private readonly opts: PolicyHolderOptions;
  private readonly log: Logger;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private gate: PolicyGate | undefined;
  /** Files the policy names (certificates, CRLs) whose change also triggers a reload. */
  private materialFiles: string[] = [];
  private errors: PolicyError[] = [];
  /** Digest of the file as last read, so touch/chmod/duplicate events do not reload. */
  private digest: string | undefined;
  private readonly onSighup = () => { this.log.info('SIGHUP: reloading policy'); void this.reload(); };
  /** The reload in progress, if any: reloads run one after another. */
  private reloading: Promise<boolean> = Promise.resolve(true);
  /** After close(): a load still running is not put in force. */
  private closed = false;

  constructor(path: string, initial: Policy, opts: PolicyHolderOptions = {}) {
    super();
    this.path = resolve(path);
    this.policy = initial;
    this.opts = opts;
    this.log = opts.logger ?? moduleLogger('policy');
    this.digest = this.fileDigest();
    recordPolicyInForce(initial);
  }

  /** Load `path` for the first time; throws PolicyLoadError (with every error) if it is invalid. */
  static load(path: string, opts: PolicyHolderOptions = {}): PolicyHolder {
    const r = loadPolicy(path, opts);
    if (!r.ok) throw new PolicyLoadError(r.errors);
    return new PolicyHolder(path, r.policy, opts);
  }

  /** The policy in force (frozen). Capture it once per call. */
  get current(): Policy {
    return this.policy;
  }

  /** Why the last reload failed (empty after a successful one), e.g. for POST /admin/reload. */
  get lastErrors(): readonly PolicyError[] {
    return this.errors;
  }

  /** Install the check a new policy must pass before it replaces the running one. */
  setGate(gate: PolicyGate): void {
    this.gate = gate;
  }

  /**
   * Re-read the file; resolves with whether the new policy is now in force. The file is parsed
   * off the event loop (parse-thread.ts); a reload asked for while one runs starts after it,
   * reading the file again (it may have changed since).
   */
  reload(): Promise<boolean> {
    this.reloading = this.reloading.then(() => this.reloadNow(), () => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow(): Promise<boolean> {
    this.digest = this.fileDigest();
    const loaded = await loadPolicyOffThread(this.path, this.opts); // the thread is handed checkFiles and env only
    if (this.closed) return false;
    const gateErrors = loaded.ok && this.gate ? this.gate(loaded.policy, this.policy) : [];
    const r = loaded.ok && gateErrors.length > 0 ? { ok: false as const, errors: gateErrors } : loaded;
    if (!r.ok) {
      this.errors = r.errors;
      policyReloadsTotal.inc({ result: 'error' });
      this.log.error({ errors: r.errors.map(formatError) }, 'policy reload failed; keeping the running policy');
      this.emit('reload-failed', r.errors);
      return false;
    }
    const previous = this.policy;
    this.policy = r.policy;
    this.errors = [];
    policyReloadsTotal.inc({ result: 'ok' });
    recordPolicyInForce(r.policy);
    this.log.info({ peers: r.policy.peers.length, routes: r.policy.routes.length }, 'policy reloaded');
    this.emit('policy', r.policy, previous);
    return true;
  }

  /**
   * Reload on SIGHUP and when the file changes. The directory is watched, not the file,
   * because editors and config tools replace files by rename (a new inode).
   */
  watch(): this {
    if (this.watchers.length > 0) return this;
    process.on('SIGHUP', this.onSighup);
    this.rewatch();
    return this;
  }

  /**
   * Also reload when one of `files` changes (the TLS certificate, key, client CAs and CRLs the
   * policy names), e.g. when certbot or a CRL fetcher replaces them.
   */
  watchMaterial(files: string[]): void {
    const next = [...new Set(files.map((f) => resolve(f)))].sort();
    if (next.join('\n') === this.materialFiles.join('\n')) return;
    this.materialFiles = next;
    this.digest = this.fileDigest();
    if (this.watchers.length > 0) this.rewatch();
  }

  /** One watcher per directory: editors and config tools replace files by rename (a new inode). */
  private rewatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const byDir = new Map<string, Set<string>>();
    for (const f of [this.path, ...this.materialFiles]) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, filename) => {
          if (filename !== null && !names.has(filename.toString())) return;
          clearTimeout(this.timer);
          this.timer = setTimeout(() => {
            this.timer = undefined;
            if (this.fileDigest() !== this.digest) void this.reload();
          }, this.opts.debounceMs ?? 250);
          this.timer.unref();
        });
        w.on('error', (err) => this.log.warn({ err, dir }, 'file watch failed; SIGHUP still reloads'));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, dir }, 'cannot watch directory; SIGHUP still reloads');
      }
    }
  }

  /** Digest of the policy file and the material it names, so touch/chmod/duplicate events do not reload. */
  private fileDigest(): string | undefined {
    const h = createHash('sha256');
    try {
      h.update(readFileSync(this.path));
    } catch {
      return undefined; // missing or unreadable: reload() reports why
    }
    for (const f of this.materialFiles) {
      try { h.update(f).update(readFileSync(f)); } catch { h.update(`${f}: unreadable`); }
    }
    return h.digest('hex');
  }

  /** Stop watching and drop the SIGHUP handler. */
  close(): void {
    this.closed = true;
    process.off('SIGHUP', this.onSighup);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
