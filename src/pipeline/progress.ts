/**
 * What a run reports while it goes. The figures live here, in one model: `snapshot()` is what a
 * status line, a --json event or a web page shows, and `history()` the recent rate samples
 * (bounded). The CLI only renders them (src/cli/render.ts).
 *
 * Rates are of bytes leaving for the destination (the run's egress), so they move while a batch
 * is on the wire, not only at commits. Percentage and ETA are of the source: the bytes of source
 * files done, estimated from the bytes sent (times what commits showed a source byte costs on the
 * wire: compression, metadata) and never ahead of what the pipeline has taken.
 */
import type { LocalState } from '../source/instrument.js';

export type RunEvent =
  /** reading the batch files earlier runs stored, before `start` (none when there are none): files read so far */
  | { type: 'scan'; done: number; total: number }
  | { type: 'start'; method: string; source: string; destination: string; resumed: { files: number; frames: number } }
  | { type: 'commit'; batch: number; files: number; frames: number; bytes: number; totalFrames: number; names: string[]; reason: string }
  | ({ type: 'status' } & ProgressSnapshot)
  | { type: 'skipped'; file: string; reason: string }
  | { type: 'rejected'; file: string; tag: string; message: string }
  /** a kept file changed, and is complete again: it is read again (and leaves the kept list if good) */
  | { type: 'retried'; file: string }
  | { type: 'deleted'; files: number; names: string[]; reason: string }
  | { type: 'sweeping'; done: number; of: number }
  | { type: 'swept'; files: number; bytes: number }
  | { type: 'warning'; tag: string; message: string }
  | { type: 'disconnected'; tag: string; message: string; retryInSec: number; attempt: number; downSec: number }
  | { type: 'reconnected'; afterSec: number }
  | { type: 'done'; files: number; frames: number; bytes: number; seconds: number; mbPerSec: number; rejected: number; endReason: string;
      /** the files kept unused at the end, each with why (rejected is their count) */
      kept: { file: string; tag: string; message: string }[];
      progress: ProgressSnapshot };

export interface ProgressSnapshot {
  /** a capture still being written (watch), or a finished one (upload) */
  watch: boolean;
  elapsedSec: number;
  /** source files: taken by the pipeline, committed, kept unused, and all (when known) */
  files: { seen: number; committed: number; kept: number; total?: number };
  /** frames read from the source, committed, and all (when known: --count, or a finished folder of like files) */
  frames: { seen: number; committed: number; total?: number };
  /**
   * sent: left for the destination; committed: written by commits; done: source bytes done
   * (estimated as described above); total: source bytes in all, when known
   */
  bytes: { sent: number; committed: number; done: number; total?: number };
  /** of bytes.total, when known */
  percent?: number;
  /** bytes/s leaving for the destination: over the last few seconds, and since the start */
  rate: { current: number; average: number };
  /** from the current rate and what remains, when the total is known and the rate is not 0 */
  etaSec?: number;
  /** local files waiting: in watch, not yet read for sending; in upload, not yet committed */
  backlog: { files: number; bytes: number };
  /** watch: how fast the instrument writes, and whether fur keeps up */
  instrument?: { rate: number; keepingUp: boolean; behindBy: number };
  /** the source folder's file system: free bytes, and when it fills at the present rates */
  disk?: { free: number; fullInSec?: number };
  reconnects: number;
  /** --bwlimit in force, bytes/s */
  limit?: number;
}

export interface RateSample {
  /** ms since the run started */
  t: number;
  sent: number;
  done: number;
  /** watch: bytes the instrument has written, and the local backlog */
  written?: number;
  backlog?: number;
}

export interface ProgressOptions {
  watch?: boolean;
  /** local files are deleted once committed (the disk then fills only with the backlog) */
  deleteSource?: boolean;
  /** bytes sent so far (the run's egress) */
  sent?: () => number;
  /** --bwlimit in force now */
  limit?: () => number | undefined;
  /** watch: a look at the source folder (InstrumentMeter.sample) */
  local?: (isDone: (name: string) => boolean) => Promise<LocalState>;
  /** --count */
  maxFrames?: number;
  /** how often figures are sampled and a status event emitted, ms (default 1000) */
  sampleMs?: number;
  now?: () => number;
}

/** the current rate's window */
const RATE_WINDOW_MS = 5000;
/** whether fur keeps up is judged over this long: a quiet period and a batch fit in it */
const KEEP_UP_WINDOW_MS = 15_000;
/** samples kept: ten minutes at one a second */
const MAX_HISTORY = 600;

export class Progress {
  /** committed: files, frames and bytes written by commits (the run summary's figures) */
  files = 0;
  frames = 0;
  bytes = 0;
  rejected = 0;
  /** total known in advance (upload of a finished capture) */
  totalBytes?: number;
  totalFiles?: number;
  /** every listed file has this size (a finished folder of like files), or undefined */
  private listedSize?: number;
  reconnects = 0;

  private readonly emit: (e: RunEvent) => void;
  private readonly o: ProgressOptions;
  private readonly now: () => number;
  private readonly started: number;
  /** names taken by the pipeline → [bytes, frames]; a name taken again after a reconnection counts once */
  private readonly taken = new Map<string, [number, number]>();
  private takenBytes = 0;
  private takenFrames = 0;
  /** names committed (this run, or found committed at the destination) */
  private readonly done = new Set<string>();
  private doneBefore = 0;
  private committedSource = 0;
  private keptBytes = 0;
  /** names kept unused → bytes (a kept file that changes is read again) */
  private readonly keptNames = new Map<string, number>();
  private readonly samples: RateSample[] = [];
  private local?: LocalState;
  private timer?: NodeJS.Timeout;
  private sampling = false;
  private uniformFrames?: number | false;

  constructor(emit: (e: RunEvent) => void, options: ProgressOptions = {}) {
    this.emit = emit;
    this.o = options;
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  event(e: RunEvent): void {
    if (e.type === 'reconnected') this.reconnects++;
    this.emit(e);
  }

  /** A finished folder's listing: the total. */
  listed(files: { size: number }[]): void {
    this.totalFiles = files.length;
    this.totalBytes = files.reduce((n, f) => n + f.size, 0);
    this.listedSize = files.length > 0 && files.every((f) => f.size === files[0]!.size) ? files[0]!.size : undefined;
  }

  /** A file the destination already holds (a previous run committed it). */
  alreadyStored(name: string, size: number): void {
    if (this.done.has(name)) return;
    this.done.add(name);
    this.doneBefore += size;
  }

  /** The pipeline took a file's frames (read, and handed on towards the destination). */
  took(name: string, size: number, frames: number): void {
    if (this.taken.has(name)) return;
    this.taken.set(name, [size, frames]);
    this.takenBytes += size;
    this.takenFrames += frames;
    // a finished folder of files alike in size holds as many frames in each
    if (this.uniformFrames === undefined) this.uniformFrames = size === this.listedSize ? frames : false;
    else if (this.uniformFrames !== frames || size !== this.listedSize) this.uniformFrames = false;
  }

  /** A file kept unused (it could not be read, or does not fit). */
  kept(name: string, size: number): void {
    if (this.keptNames.has(name)) return;
    this.keptNames.set(name, size);
    this.rejected++;
    this.keptBytes += size;
    this.done.add(name);
    const taken = this.taken.get(name);
    if (taken) {
      // done with, not sent: counted once, as kept
      this.taken.delete(name);
      this.takenBytes -= taken[0];
      this.takenFrames -= taken[1];
    }
  }

  /** A kept file changed and is read again: no longer done with. */
  unkept(name: string): void {
    const size = this.keptNames.get(name);
    if (size === undefined) return;
    this.keptNames.delete(name);
    this.rejected--;
    this.keptBytes -= size;
    this.done.delete(name);
  }

  committed(batch: number, files: { name: string; size: number }[], frames: number, bytes: number, totalFrames: number, reason: string): void {
    this.files += files.length;
    this.frames += frames;
    this.bytes += bytes;
    for (const f of files) {
      this.done.add(f.name);
      this.committedSource += f.size;
    }
    this.emit({ type: 'commit', batch, files: files.length, frames, bytes, totalFrames, names: files.map((f) => f.name), reason });
  }

  elapsed(): number { return (this.now() - this.started) / 1000; }

  private sent(): number { return this.o.sent?.() ?? this.bytes; }

  /** Source bytes done: those stored before, plus the bytes sent in source terms, up to what was taken. */
  private doneBytes(sent: number): number {
    // what a source byte has cost on the wire so far (compression shrinks it, metadata adds)
    const wirePerSource = this.committedSource > 0 && this.bytes > 0 ? this.bytes / this.committedSource : 1;
    return this.doneBefore + this.keptBytes + Math.min(this.takenBytes, Math.max(this.committedSource, sent / wirePerSource));
  }

  private total(): number | undefined {
    if (this.totalBytes !== undefined) return this.totalBytes;
    // --count: frames to go, at the bytes a frame has taken so far
    if (this.o.maxFrames !== undefined && this.takenFrames > 0) return this.doneBefore + this.o.maxFrames * (this.takenBytes / this.takenFrames);
    return undefined;
  }

  private framesTotal(): number | undefined {
    if (this.o.maxFrames !== undefined) return this.o.maxFrames;
    if (this.totalFiles !== undefined && typeof this.uniformFrames === 'number') return this.totalFiles * this.uniformFrames;
    return undefined;
  }

  /** Rate of `key` over the last `windowMs`, per second (0 until two samples span some time). */
  private rateOf(key: 'sent' | 'done' | 'written' | 'backlog', windowMs: number): number {
    const last = this.samples[this.samples.length - 1];
    if (!last) return 0;
    let first = last;
    for (let i = this.samples.length - 1; i >= 0 && last.t - this.samples[i]!.t <= windowMs; i--) first = this.samples[i]!;
    const span = (last.t - first.t) / 1000;
    return span > 0 ? ((last[key] ?? 0) - (first[key] ?? 0)) / span : 0;
  }

  /** Take a sample now: called every sampleMs while the run goes, and by tests. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      // waiting: not yet read by the pipeline (a batch being sent is not a backlog, and a backlog
      // that grows means the instrument writes faster than fur sends)
      if (this.o.local) this.local = await this.o.local((name) => this.done.has(name) || this.taken.has(name));
    } finally {
      this.sampling = false;
    }
    const sent = this.sent();
    this.samples.push({ t: this.now() - this.started, sent, done: this.doneBytes(sent), written: this.local?.written, backlog: this.local?.waiting.bytes });
    if (this.samples.length > MAX_HISTORY) this.samples.splice(0, this.samples.length - MAX_HISTORY);
  }

  /** The recent samples, oldest first (at most MAX_HISTORY). */
  history(): readonly RateSample[] { return this.samples; }

  snapshot(): ProgressSnapshot {
    const elapsedSec = this.elapsed();
    const sent = this.sent();
    const done = this.doneBytes(sent);
    const total = this.total();
    const current = this.rateOf('sent', RATE_WINDOW_MS);
    const doneRate = this.rateOf('done', RATE_WINDOW_MS);
    const s: ProgressSnapshot = {
      watch: this.o.watch ?? false,
      elapsedSec: round(elapsedSec, 1),
      files: { seen: this.taken.size, committed: this.files, kept: this.rejected, ...(this.totalFiles !== undefined ? { total: this.totalFiles } : {}) },
      frames: { seen: this.takenFrames, committed: this.frames, ...opt('total', this.framesTotal()) },
      bytes: { sent, committed: this.bytes, done: Math.round(done), ...opt('total', total === undefined ? undefined : Math.round(total)) },
      rate: { current: Math.round(current), average: Math.round(elapsedSec > 0 ? sent / elapsedSec : 0) },
      backlog: this.backlog(),
      reconnects: this.reconnects,
      ...opt('limit', this.o.limit?.()),
    };
    if (total !== undefined && total > 0) {
      s.percent = round(Math.min(100, (100 * done) / total), 1);
      const remaining = Math.max(0, total - done);
      if (remaining === 0) s.etaSec = 0;
      else if (doneRate > 0) s.etaSec = Math.round(remaining / doneRate);
    }
    if (this.o.watch && this.local) {
      const written = this.rateOf('written', KEEP_UP_WINDOW_MS);
      const growth = this.rateOf('backlog', KEEP_UP_WINDOW_MS);
      // the backlog grows: fur sends less than the instrument writes (a quiet period's worth waiting
      // is normal); judged once the samples span a third of the window, not on a run's first files
      const span = (this.samples[this.samples.length - 1]?.t ?? 0) - (this.samples[0]?.t ?? 0);
      const behind = span >= KEEP_UP_WINDOW_MS / 3 && growth > Math.max(0.05 * written, 100_000);
      s.instrument = { rate: Math.round(written), keepingUp: !behind, behindBy: Math.round(behind ? growth : 0) };
      if (this.local.free !== undefined) {
        // the disk fills with what the instrument writes, less what fur deletes once committed
        const filling = this.o.deleteSource ? growth : written;
        s.disk = { free: this.local.free, ...(filling > 0 ? { fullInSec: Math.round(this.local.free / filling) } : {}) };
      }
    }
    return s;
  }

  private backlog(): { files: number; bytes: number } {
    if (this.local) return { ...this.local.waiting };
    if (this.totalFiles !== undefined && this.totalBytes !== undefined) {
      return {
        files: Math.max(0, this.totalFiles - this.done.size),
        bytes: Math.max(0, this.totalBytes - this.doneBefore - this.committedSource - this.keptBytes),
      };
    }
    let bytes = 0;
    for (const [name, [size]] of this.taken) if (!this.done.has(name)) bytes += size;
    return { files: [...this.taken.keys()].filter((n) => !this.done.has(n)).length, bytes };
  }

  start(sampleMs = this.o.sampleMs ?? 1000): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => {
      void this.sample().then(() => this.emit({ type: 'status', ...this.snapshot() }), () => undefined);
    }, sampleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function opt<K extends string, V>(key: K, v: V | undefined): { [k in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [k in K]?: V };
}
