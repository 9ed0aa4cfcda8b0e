// The media relay (rtpengine) as a subsystem. Reload: the rtpengine list and Retry-After
// apply to new calls at once; anchoring on/off, spawn ↔ list and the embedded daemon's
// settings need a restart.
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { MediaStage } from '../sbc/media/index.js';
import { mediaSeam } from '../sbc/wiring.js';
import type { MediaStage as MediaSeam } from '../sbc/stages.js';
import { changedKeys, restartOrApplied, type Reconfigured, type Subsystem } from './subsystem.js';

export class MediaSubsystem implements Subsystem {
  readonly name = 'media';
  private stage: MediaStage | undefined;
  private mediaSeamOnce: MediaSeam | undefined;

  constructor(private readonly started: Policy, private readonly log: Logger) {}

  async start(): Promise<void> {
    if (!this.started.media.anchoring) {
      this.log.warn('media.anchoring is false: media flows directly (only SDP identity fields are rewritten) and no SRTP policy is enforced');
      return;
    }
    this.stage = await MediaStage.start(this.started.media, { log: this.log });
  }

  /** The call flow's media seam; undefined when media is not anchored. */
  get seam(): MediaSeam | undefined {
    if (this.stage && !this.mediaSeamOnce) this.mediaSeamOnce = mediaSeam(this.stage);
    return this.mediaSeamOnce;
  }

  /** ng address of the spawned rtpengine (media.rtpengine: spawn); B2BUA workers use it. */
  get spawnedAddress(): string | undefined { return this.stage?.embeddedAddress; }

  /** Calls rtpengine holds state for. */
  get sessions(): number {
    return this.stage?.activeCalls() ?? 0;
  }

  reconfigure(next: Policy): Reconfigured {
    const restart = changedKeys(this.started, next, ['media.anchoring']);
    if (this.stage && next.media.anchoring) restart.push(...this.stage.reconfigure(next.media));
    return restartOrApplied(restart);
  }

  ready(): true | string {
    return !this.stage || this.stage.ready() ? true : 'no rtpengine answers';
  }

  /** Deletes every session still held on rtpengine, then stops the embedded daemon. */
  async close(): Promise<void> {
    await this.stage?.close();
  }
}
