/**
 * Thumbnails of the latest committed frame, drawn on request only (a page asks when the frame
 * changed) and never more often than once a second, however many pages look: a request that
 * comes sooner gets the last picture drawn, or waits for the next turn.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { CommittedFrames, FrameTap } from './frames.js';
import { encodePng } from './png.js';
import { thumbnail } from './thumbnail.js';

export const RENDER_INTERVAL_MS = 1000;

export interface Picture { seq: number; page: number; png: Buffer; frame: CommittedFrames }

export class Thumbnails {
  private last?: Picture;
  private lastAt = -Infinity;
  private turn: Promise<unknown> = Promise.resolve();
  /** pictures drawn so far (the benchmark and tests read it) */
  drawn = 0;

  constructor(private readonly frames: FrameTap, private readonly now: () => number = () => performance.now()) {}

  /** The latest committed frame's page (the last page when not given), or why there is none. */
  picture(page?: number): Promise<Picture | string> {
    const next = this.turn.then(() => this.draw(page));
    this.turn = next.catch(() => undefined);
    return next;
  }

  private async draw(wanted?: number): Promise<Picture | string> {
    const latest = this.frames.latest;
    if (!latest) return 'no frame committed yet';
    const page = Math.max(0, Math.min(latest.block.count - 1, wanted ?? latest.block.count - 1));
    if (this.last && this.last.seq === latest.seq && this.last.page === page) return this.last;
    const wait = this.lastAt + RENDER_INTERVAL_MS - this.now();
    if (wait > 0) await delay(wait);
    // the latest frame may have moved on while waiting: draw that one
    const now = this.frames.latest!;
    const p = Math.max(0, Math.min(now.block.count - 1, wanted ?? now.block.count - 1));
    const px = thumbnail(now.block, p);
    if (typeof px === 'string') return px;
    this.lastAt = this.now();
    this.drawn++;
    this.last = { seq: now.seq, page: p, png: encodePng(px), frame: now };
    return this.last;
  }
}
