/**
 * A live view of one run (`--serve`): the frame tap the run feeds, the state its events feed,
 * and the server that shows both. The run's only costs: a reference to the last file of each
 * batch in flight, and each event passed on.
 */
import type { RunEvent } from '../pipeline/progress.js';
import type { ServeAddress } from './address.js';
import { FrameTap } from './frames.js';
import { LiveServer } from './server.js';
import { LiveState, type LiveSetup } from './state.js';
import { Thumbnails } from './thumbnails.js';

export class LiveView {
  readonly tap = new FrameTap();
  readonly state: LiveState;
  readonly thumbnails: Thumbnails;
  readonly server: LiveServer;

  private constructor(address: ServeAddress, setup: LiveSetup, secrets: readonly string[]) {
    this.state = new LiveState(setup, this.tap);
    this.thumbnails = new Thumbnails(this.tap);
    this.server = new LiveServer(address, this.state, this.thumbnails, secrets);
  }

  static async start(address: ServeAddress, setup: LiveSetup, secrets: readonly string[]): Promise<LiveView> {
    const v = new LiveView(address, setup, secrets);
    await v.server.listen();
    return v;
  }

  get url(): string { return this.server.url; }

  /** the run's events, passed on to `next` (the terminal or --json) */
  tee(next: (e: RunEvent) => void): (e: RunEvent) => void {
    return (e) => { this.state.observe(e); next(e); };
  }

  async close(error?: unknown): Promise<void> {
    if (error !== undefined) this.state.failed((error as Error)?.message ?? String(error));
    await this.server.close();
  }
}
