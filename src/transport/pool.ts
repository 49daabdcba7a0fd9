/**
 * How many bytes a destination keeps in flight, and over how many channels, decided from what
 * the link shows: its round trip and the rate acknowledgements come back at. No knob is needed
 * for good results; the expert knobs fix the numbers instead.
 *
 * Too little in flight leaves a long, fat link idle (a round trip per window); too much only
 * queues in buffers along the way: it adds latency to every barrier (a commit waits behind the
 * queue) and holds memory, without moving a byte more. The target is about two round trips'
 * worth at the rate the link delivers:
 *
 * - every interval (a few round trips) the delivered rate is measured; if the bytes in flight
 *   were what limited it (rate × round trip at least 80% of what was allowed: no queue in the
 *   way), the allowance doubles — as a probe: unless the next intervals deliver clearly more
 *   than before, it goes back, and no probe follows for a while. Acknowledgements come in
 *   bursts, so an interval's rate can read above the link's; a doubling that bought nothing
 *   would otherwise stay, and its queue would delay every commit's barriers by a round trip or
 *   more (measured: a 10 GB run at 1 Gbit/s × 50 ms fell from 123 to 75 MB/s, its commits
 *   waiting behind 17 MB in flight where 8 MB filled the link);
 * - if the allowance is far above what the link delivers in a round trip (a queue is building),
 *   it shrinks back to twice the best rate seen recently times the round trip;
 * - an SFTP channel carries at most its window per round trip (OpenSSH: 2 MiB), so the number
 *   of channels follows the allowance.
 *
 * The round trip is the smallest one seen (small requests, or the connection's first request):
 * a queue only ever adds to it.
 */

export interface ControlOptions {
  /** never allow less than this in flight (bytes) */
  floor: number;
  /** never allow more (the memory bound), bytes */
  ceiling: number;
  /** start here (bytes); default: the floor */
  initial?: number;
  /** a fixed allowance (expert): no adaptation */
  fixed?: number;
}

/** Rates seen over the last this many intervals count as "recent". */
const HISTORY = 8;
/** A probe is judged after this many limited intervals at the doubled allowance. */
const PROBE_INTERVALS = 3;
/** ... and kept if they delivered at least this much more than the intervals before it. */
const PROBE_GAIN = 1.15;
/** After a probe that bought nothing, this many limited intervals pass before the next one. */
const PROBE_PAUSE = 24;
/** Shortest measuring interval, ms: shorter ones measure acknowledgement bursts, not rates. */
const MIN_INTERVAL_MS = 40;

export class InFlightControl {
  /** bytes allowed in flight now */
  allowance: number;
  /** smallest round trip seen, ms (Infinity until one is seen) */
  minRttMs = Infinity;
  private intervalStart = -1;
  private delivered = 0;
  private limited = false;
  private readonly rates: number[] = [];
  /** a doubling on trial: the allowance before it, the rate then, and the rates seen since */
  private probe?: { from: number; before: number; rates: number[] };
  /** limited intervals to wait before probing again */
  private pause = 0;

  constructor(private readonly o: ControlOptions) {
    this.allowance = o.fixed ?? Math.min(o.ceiling, Math.max(o.floor, o.initial ?? o.floor));
  }

  /** A round trip measured on an otherwise idle request (ms). */
  observeRtt(ms: number): void {
    if (ms >= 0 && ms < this.minRttMs) this.minRttMs = Math.max(ms, 0.05);
  }

  /** Work waited because of the allowance (or the channels' room): the limit was binding. */
  noteLimited(): void {
    this.limited = true;
  }

  /**
   * Bytes acknowledged at time `now` (ms). Returns true when an interval ended and the
   * allowance may have changed.
   */
  acked(bytes: number, now: number): boolean {
    if (this.intervalStart < 0) {
      this.intervalStart = now;
      this.delivered = 0;
      this.limited = false;
    }
    this.delivered += bytes;
    const rtt = Number.isFinite(this.minRttMs) ? this.minRttMs : 1;
    const length = now - this.intervalStart;
    if (length < Math.max(MIN_INTERVAL_MS, 4 * rtt)) return false;
    this.endInterval(this.delivered / length, rtt);
    this.intervalStart = now;
    this.delivered = 0;
    this.limited = false;
    return true;
  }

  /** Start measuring afresh (after an idle spell: time without demand says nothing about the link). */
  idle(): void {
    this.intervalStart = -1;
  }

  /** rate in bytes per ms */
  private endInterval(rate: number, rtt: number): void {
    if (this.o.fixed !== undefined) return;
    // An interval where nothing waited says how fast the data came, not how fast the link is.
    if (!this.limited) return;
    const before = mean(this.rates);
    this.rates.push(rate);
    if (this.rates.length > HISTORY) this.rates.shift();
    if (this.probe) {
      this.probe.rates.push(rate);
      if (this.probe.rates.length < PROBE_INTERVALS) return;
      const { from, before: then, rates } = this.probe;
      this.probe = undefined;
      if (mean(rates) < PROBE_GAIN * then) {
        // more in flight delivered no more: the link was full, the extra only queued
        this.allowance = from;
        this.pause = PROBE_PAUSE;
        return;
      }
    }
    if (this.pause > 0) this.pause--;
    const best = Math.max(...this.rates);
    const inFlightThatRateNeeds = rate * rtt;
    if (inFlightThatRateNeeds >= 0.8 * this.allowance) {
      // the allowance seems to hold the rate back: open up, on trial
      if (this.pause > 0 || this.allowance >= this.o.ceiling) return;
      this.probe = { from: this.allowance, before: Math.max(before, rate), rates: [] };
      this.allowance = Math.min(this.o.ceiling, this.allowance * 2);
    } else if (best * rtt * 3 < this.allowance) {
      // a queue is building somewhere: keep two round trips' worth of the best recent rate
      this.allowance = Math.max(this.o.floor, Math.min(this.o.ceiling, Math.ceil(best * rtt * 2)));
    }
  }

  /** Delivered rate of recent intervals, bytes per second (0 until measured). */
  get rate(): number {
    return this.rates.length ? Math.max(...this.rates) * 1000 : 0;
  }
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Channels needed to carry `allowance` bytes in flight when each carries at most `window` per round trip. */
export function channelsFor(allowance: number, window: number, max: number): number {
  return Math.max(1, Math.min(max, Math.ceil(allowance / Math.max(1, window))));
}
