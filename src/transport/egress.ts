/**
 * Every byte a run sends to its destination passes here, whatever the protocol: counted (the
 * progress figures' rate) and paced by `--bwlimit`. One Egress is shared by every connection,
 * channel and reconnection of a run, so the limit holds for the run as a whole.
 *
 * Pacing is a token bucket that may go into debt: a write goes as soon as the bucket is not in
 * debt and takes its bytes from it, however large, so writes of any size keep the average rate.
 * The bucket starts empty (a run does not start with a burst) and saves up at most BURST_SECONDS
 * of the rate: a pause as long (a commit's fsync, a round trip) is made up for afterwards,
 * a longer idle spell does not buy a longer burst.
 */
import { Transform, type Readable } from 'node:stream';
import type { BandwidthSchedule, Rate } from './bwlimit.js';

export interface Clock {
  /** milliseconds since the epoch */
  now(): number;
  /** resolve after `ms` */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** what the bucket may save up: half a second at the rate, and a 64 KiB write at least */
const BURST_SECONDS = 0.5;
const MIN_BURST = 64 * 1024;

export class Egress {
  /** bytes sent so far */
  sent = 0;
  private tokens = 0;
  private at: number;
  private rate: Rate;
  /** writers waiting their turn, first come first served */
  private readonly queue: { n: number; go: () => void }[] = [];
  private readonly ready: (() => void)[] = [];
  private timer = false;

  constructor(private readonly schedule?: BandwidthSchedule, private readonly clock: Clock = systemClock) {
    this.at = clock.now();
    this.rate = schedule?.rateAt(this.at);
  }

  /** The limit in force now, bytes/s (undefined: none). */
  limit(): Rate {
    this.refill();
    return this.rate;
  }

  /**
   * Push-style writers: `n` bytes are about to leave. Undefined when they may go at once
   * (counted), else a promise that resolves when they may (counted then). Turns are kept in order.
   */
  take(n: number): Promise<void> | undefined {
    if (this.queue.length === 0 && this.mayGo()) {
      this.spend(n);
      return undefined;
    }
    return new Promise((go) => {
      this.queue.push({ n, go });
      this.wake();
    });
  }

  /** Pull-style writers (SFTP's dispatcher): may bytes leave now? If not, `then` is called once they may. */
  mayLeave(then: () => void): boolean {
    if (this.queue.length === 0 && this.mayGo()) return true;
    this.ready.push(then);
    this.wake();
    return false;
  }

  /** Pull-style writers: `n` bytes left. */
  left(n: number): void {
    this.spend(n);
  }

  private burst(): number {
    return this.rate === undefined ? 0 : Math.max(MIN_BURST, this.rate * BURST_SECONDS);
  }

  private refill(): void {
    const now = this.clock.now();
    const rate = this.schedule?.rateAt(now);
    if (rate !== this.rate) {
      // a new period of the timetable starts from an empty bucket, as at the start of a run
      this.rate = rate;
      this.tokens = Math.min(this.tokens, 0);
    } else if (rate !== undefined) {
      this.tokens = Math.min(this.burst(), this.tokens + (rate * (now - this.at)) / 1000);
    }
    this.at = now;
  }

  private mayGo(): boolean {
    this.refill();
    return this.rate === undefined || this.tokens >= 0;
  }

  private spend(n: number): void {
    this.sent += n;
    if (this.rate !== undefined) this.tokens -= n;
  }

  /** Let waiters go as the bucket refills: one timer for all of them. */
  private wake(): void {
    if (this.timer) return;
    this.timer = true;
    const step = (): void => {
      while (this.queue.length > 0 && this.mayGo()) {
        const w = this.queue.shift()!;
        this.spend(w.n);
        w.go();
      }
      if (this.queue.length === 0 && this.ready.length > 0 && this.mayGo()) {
        // each pull-style writer takes what it may in its own turn (left), so all are woken
        for (const r of this.ready.splice(0)) r();
      }
      if (this.queue.length === 0 && this.ready.length === 0) {
        this.timer = false;
        return;
      }
      // until the debt is paid at the present rate (a timetable may change it meanwhile: at most 1 s)
      const debt = -this.tokens;
      const ms = this.rate === undefined ? 0 : Math.min(1000, Math.max(1, Math.ceil((debt * 1000) / this.rate)));
      void this.clock.sleep(ms).then(step);
    };
    void Promise.resolve().then(step);
  }
}

/** A stream's bytes through an egress, chunk by chunk (uploads that send a stream: FTPS). */
export function pacedStream(source: Readable, egress: Egress | undefined): Readable {
  if (!egress) return source;
  const paced = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const turn = egress.take(chunk.length);
      if (turn) void turn.then(() => cb(null, chunk));
      else cb(null, chunk);
    },
  });
  source.on('error', (e) => paced.destroy(e));
  return source.pipe(paced);
}
