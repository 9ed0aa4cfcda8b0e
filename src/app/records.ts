// Call records (CDR) and SIP capture (HEP) as subsystems. Both follow reloads at once (a
// moved CDR file, a new collector). The CDR writer closes after the B2BUA, so the records of
// calls a drain ends are written; capture closes after the engine.
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { createCdrWriter, type CdrWriter } from '../sbc/cdr/index.js';
import type { CallRecorder } from '../sbc/cdr/events.js';
import { createHepCapture, type CaptureTap, type HepCapture } from '../engine/capture/index.js';
import { APPLIED, type Reconfigured, type Subsystem } from './subsystem.js';

export class CdrSubsystem implements Subsystem {
  readonly name = 'cdr';
  private writer: CdrWriter | undefined;

  constructor(private readonly started: Policy, private readonly log: Logger, private readonly nodeId: string) {}

  async start(): Promise<void> {
    this.writer = createCdrWriter(this.started.cdr, { log: this.log, node: this.nodeId });
  }

  /** What the B2BUA reports each call to. */
  get recorder(): CallRecorder {
    if (!this.writer) throw new Error('cdr not started');
    return this.writer.recorder;
  }

  /** Reopen the file before the next write (logrotate; a worker hears of SIGUSR1 from the primary). */
  reopen(): void { this.writer?.reopen(); }

  reconfigure(next: Policy): Reconfigured {
    void this.writer?.configure(next.cdr);
    return APPLIED;
  }

  ready(): true | string { return true; }

  async close(): Promise<void> {
    await this.writer?.close();
  }
}

export class CaptureSubsystem implements Subsystem {
  readonly name = 'capture';
  private capture: HepCapture | undefined;

  constructor(private readonly started: Policy, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.capture = createHepCapture(this.started.capture, { log: this.log });
  }

  /** What the engine's transports call for every SIP message. */
  get tap(): CaptureTap | undefined {
    return this.capture?.tap;
  }

  reconfigure(next: Policy): Reconfigured {
    this.capture?.configure(next.capture);
    return APPLIED;
  }

  ready(): true | string { return true; }

  async close(): Promise<void> {
    await this.capture?.close();
  }
}
