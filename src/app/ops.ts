// The ops HTTP server as a subsystem. Its address is fixed at start (restart needed); the
// admin token follows reloads.
import type { Policy } from '../policy/schema.js';
import { startOpsServer, resolveAdminToken, type AdminProviders, type OpsServer, type Readiness } from '../ops/server.js';
import { changedKeys, restartOrApplied, type PolicyProblem, type Reconfigured, type Subsystem } from './subsystem.js';

export class OpsSubsystem implements Subsystem {
  readonly name = 'ops';
  private server: OpsServer | undefined;
  private token: string | undefined;
  private readonly prepared = new WeakMap<Policy, string | undefined>();

  /** `metrics`: the /metrics text when it is not this process's registry alone (workers). */
  constructor(
    private readonly started: Policy, private readonly readiness: () => Promise<Readiness>, private readonly admin: AdminProviders,
    private readonly metrics?: () => Promise<string>,
  ) {
    this.token = resolveAdminToken(started.ops);
  }

  get port(): number | undefined { return this.server?.port; }

  async start(): Promise<void> {
    this.server = await startOpsServer({
      address: this.started.ops.address,
      port: this.started.ops.port,
      adminToken: () => this.token,
      ready: this.readiness,
      admin: this.admin,
      ...(this.metrics ? { metrics: this.metrics } : {}),
    });
  }

  prepare(next: Policy): PolicyProblem[] {
    try {
      this.prepared.set(next, resolveAdminToken(next.ops));
      return [];
    } catch (err) {
      return [{ keyPath: ['ops', 'admin_token_file'], message: (err as Error).message }];
    }
  }

  reconfigure(next: Policy): Reconfigured {
    if (this.prepared.has(next)) this.token = this.prepared.get(next);
    return restartOrApplied(changedKeys(this.started, next, ['ops.address', 'ops.port']));
  }

  ready(): true | string { return true; }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
