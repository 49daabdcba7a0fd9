/**
 * What a run reports while it goes: counts, rates, backlog and ETA, as typed events. The CLI
 * renders them as a status line on a terminal or as one JSON object per line (--json).
 */
export type RunEvent =
  /** reading the batch files earlier runs stored, before `start` (none when there are none): files read so far */
  | { type: 'scan'; done: number; total: number }
  | { type: 'start'; method: string; source: string; destination: string; resumed: { files: number; frames: number } }
  | { type: 'commit'; batch: number; files: number; frames: number; bytes: number; totalFrames: number }
  | { type: 'status'; files: number; frames: number; bytes: number; mbPerSec: number; backlogFiles: number; backlogBytes: number; etaSec: number | null; elapsedSec: number }
  | { type: 'skipped'; file: string; reason: string }
  | { type: 'rejected'; file: string; tag: string; message: string }
  /** a kept file changed, and is complete again: it is read again (and leaves the kept list if good) */
  | { type: 'retried'; file: string }
  | { type: 'deleted'; files: number }
  | { type: 'sweeping'; done: number; of: number }
  | { type: 'swept'; files: number; bytes: number }
  | { type: 'warning'; tag: string; message: string }
  | { type: 'disconnected'; tag: string; message: string; retryInSec: number; attempt: number; downSec: number }
  | { type: 'reconnected'; afterSec: number }
  | { type: 'done'; files: number; frames: number; bytes: number; seconds: number; mbPerSec: number; rejected: number; endReason: string;
      /** the files kept unused at the end, each with why (rejected is their count) */
      kept: { file: string; tag: string; message: string }[] };

export class Progress {
  files = 0;
  frames = 0;
  bytes = 0;
  rejected = 0;
  /** files seen (listed or completed) but not yet committed */
  private backlog = new Map<string, number>();
  private readonly started = Date.now();
  private timer?: NodeJS.Timeout;
  /** total known in advance (upload of a finished capture) */
  totalBytes?: number;

  constructor(private readonly emit: (e: RunEvent) => void, private readonly intervalMs = 1000) {}

  event(e: RunEvent): void { this.emit(e); }

  seen(name: string, size: number): void { this.backlog.set(name, size); }
  settled(name: string): void { this.backlog.delete(name); }

  committed(batch: number, files: { name: string }[], frames: number, bytes: number, totalFrames: number): void {
    this.files += files.length;
    this.frames += frames;
    this.bytes += bytes;
    for (const f of files) this.backlog.delete(f.name);
    this.emit({ type: 'commit', batch, files: files.length, frames, bytes, totalFrames });
  }

  elapsed(): number { return (Date.now() - this.started) / 1000; }
  rate(): number { const s = this.elapsed(); return s > 0 ? this.bytes / 1e6 / s : 0; }

  status(): RunEvent {
    let backlogBytes = 0;
    for (const v of this.backlog.values()) backlogBytes += v;
    const rate = this.rate();
    return {
      type: 'status', files: this.files, frames: this.frames, bytes: this.bytes, mbPerSec: Number(rate.toFixed(2)),
      backlogFiles: this.backlog.size, backlogBytes,
      etaSec: rate > 0 && this.backlog.size ? Math.round(backlogBytes / 1e6 / rate) : null,
      elapsedSec: Number(this.elapsed().toFixed(1)),
    };
  }

  start(): void {
    this.timer = setInterval(() => this.emit(this.status()), this.intervalMs);
    this.timer.unref();
  }
  stop(): void { if (this.timer) clearInterval(this.timer); }
}
