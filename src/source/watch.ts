/**
 * Completed instrument files from a folder, in sequence order, each exactly once (a file its
 * consumer gives back unused is yielded again should it change: see reconsider).
 *
 * The folder is the only channel between instrument and fur, so "complete" is inferred from
 * what the instrument does (see CompletionMode). fs.watch only shortens latency: every
 * decision comes from a directory scan, and a periodic rescan covers mounts where fs.watch
 * is silent (NFS, SMB, some container overlays).
 *
 * Ordering: files are released in sequence order, and a complete file waits behind an earlier
 * one that is still incomplete (`ordered`, default true), so frames keep capture order even
 * when the instrument finishes files out of order. A file that turns up after a later one was
 * already yielded is still yielded (never dropped), flagged `outOfOrder`.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FurError } from '../errors.js';
import { compareNames, compileGlob, readDir, sortSequence } from './sequence.js';

/**
 * - 'quiet':  size and timestamps unchanged for `quietMs` (and not empty); a companion marker,
 *             when `markerSuffix` is set, completes a file at once.
 * - 'marker': only the companion marker `<name><markerSuffix>` completes a file.
 * - 'rename': the instrument writes under a temporary name and renames into place, so a file
 *             is complete as soon as its final name is visible.
 * In every mode, finish() or the stop file declares all present files complete.
 */
export type CompletionMode = 'quiet' | 'marker' | 'rename';
export type CompletedBy = CompletionMode | 'finished' | 'listed';
export type EndReason = 'count' | 'stop-file' | 'finished' | 'idle' | 'stopped';

export interface CompletedFile {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  by: CompletedBy;
  /** Companion marker that exists for this file, so cleanup can remove it with the file. */
  marker?: string;
  /** Sorts before a file that was already yielded. */
  outOfOrder: boolean;
  /** with size and mtimeMs, what the file looked like when it was completed (see reconsider) */
  ctimeMs?: number;
  ino?: number;
  /** Yielded before, given back as unusable (reconsider), changed since, and complete again. */
  retried?: boolean;
}

export interface WatchOptions {
  /** Glob on file names (see sequence.ts). Default '*'. */
  pattern?: string;
  completion?: CompletionMode;
  /** Default 2000. Must exceed the filesystem's timestamp resolution and the instrument's write pauses. */
  quietMs?: number;
  /** Default '.done' in marker mode; in quiet mode only when given. */
  markerSuffix?: string;
  /** File name whose appearance ends the capture (treated as finish()). Never yielded. */
  stopFile?: string;
  /** End after this many files. */
  maxFiles?: number;
  /** End when nothing new has happened in the folder for this long. */
  idleMs?: number;
  /** Full rescan interval. Default 1000. */
  rescanMs?: number;
  /** Names never taken (writers' temporary files). Default DEFAULT_TEMP_PATTERNS. */
  tempPatterns?: readonly string[];
  /** Hold complete files behind an earlier incomplete one. Default true. */
  ordered?: boolean;
  /** Use fs.watch to notice changes early. Default true; rescans alone also work. */
  fsEvents?: boolean;
  /** Aborting is the same as stop(). */
  signal?: AbortSignal;
}

export const DEFAULT_QUIET_MS = 2000;
export const DEFAULT_TEMP_PATTERNS: readonly string[] = ['.*', '*.tmp', '*.temp', '*.part', '*.partial', '*~'];

/** fs.watch fires per write; coalescing keeps a busy folder from costing a scan per event. */
const EVENT_COALESCE_MS = 10;
const STAT_CONCURRENCY = 32;

/** What a file looks like to stat: any change means it is still being written (or was replaced). */
interface Stamp {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

interface Pending extends Stamp {
  name: string;
  changedAt: number;
}

interface Filter {
  isData(name: string): boolean;
  markerOf(name: string): string | undefined;
}

function makeFilter(opts: Pick<WatchOptions, 'pattern' | 'tempPatterns' | 'markerSuffix' | 'stopFile'>): Filter {
  const match = compileGlob(opts.pattern ?? '*');
  const temps = (opts.tempPatterns ?? DEFAULT_TEMP_PATTERNS).map((p) => compileGlob(p, 'temp pattern'));
  const suffix = opts.markerSuffix;
  return {
    isData: (name) => match(name) && name !== opts.stopFile && !temps.some((t) => t(name)) &&
      !(suffix !== undefined && name.endsWith(suffix)),
    markerOf: (name) => (suffix === undefined ? undefined : name + suffix),
  };
}

export class FolderWatch implements AsyncIterable<CompletedFile> {
  readonly dir: string;
  private readonly mode: CompletionMode;
  private readonly quietMs: number;
  private readonly rescanMs: number;
  private readonly filter: Filter;
  private readonly pending = new Map<string, Pending>();
  /** Every non-folder name seen by the last scan, markers included. */
  private present = new Set<string>();
  private readonly yielded = new Set<string>();
  /**
   * Files yielded, then given back as unusable as they were (reconsider): no longer yielded,
   * watched, and completed again if they change.
   */
  private readonly kept = new Map<string, Stamp>();
  /** names completed again after they were given back, until they are yielded */
  private readonly retried = new Set<string>();
  private lastYielded: string | undefined;
  private count = 0;
  private lastActivity = performance.now();
  private finishing: 'finished' | 'stop-file' | undefined;
  private stopping = false;
  private dirty = false;
  private wake: (() => void) | undefined;
  private started = false;
  private ended: EndReason | undefined;

  constructor(dir: string, private readonly opts: WatchOptions = {}) {
    this.dir = dir;
    this.mode = opts.completion ?? 'quiet';
    this.quietMs = positive(opts.quietMs ?? DEFAULT_QUIET_MS, 'quiet period (quietMs)');
    this.rescanMs = positive(opts.rescanMs ?? 1000, 'rescan interval (rescanMs)');
    if (opts.maxFiles !== undefined && (!Number.isInteger(opts.maxFiles) || opts.maxFiles < 1)) {
      throw setting('file count (maxFiles)', opts.maxFiles, 'must be a whole number ≥ 1');
    }
    if (opts.idleMs !== undefined) {
      positive(opts.idleMs, 'idle timeout (idleMs)');
      if (this.mode === 'quiet' && opts.idleMs <= this.quietMs) {
        throw setting('idle timeout (idleMs)', opts.idleMs,
          `must be longer than the quiet period (${this.quietMs} ms), or files would be left behind as incomplete`);
      }
    }
    const markerSuffix = opts.markerSuffix ?? (this.mode === 'marker' ? '.done' : undefined);
    if (markerSuffix === '') throw setting('marker suffix', markerSuffix, 'must not be empty');
    this.filter = makeFilter({ ...opts, markerSuffix });
    opts.signal?.addEventListener('abort', () => this.stop(), { once: true });
    if (opts.signal?.aborted) this.stopping = true;
  }

  /** The capture is over: everything present now is complete. Drains, then ends. */
  finish(): void {
    this.finishing ??= 'finished';
    this.poke();
  }

  /** Stop watching: yields files already complete (in order), then ends. Incomplete files stay for a later run. */
  stop(): void {
    this.stopping = true;
    this.poke();
  }

  /** Why iteration ended, once it has. */
  get endReason(): EndReason | undefined {
    return this.ended;
  }

  [Symbol.asyncIterator](): AsyncIterator<CompletedFile> {
    if (this.started) throw new Error('a FolderWatch can be iterated only once');
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<CompletedFile> {
    const watcher = this.startEvents();
    this.lastActivity = performance.now();
    try {
      for (;;) {
        // An end requested before this scan makes it the last pass; one requested later (during the scan or
        // while the consumer held a file) gets one more pass, so files that arrived meanwhile are not missed.
        let lastPass = this.finishing !== undefined || this.stopping;
        const hadStopFile = this.finishing === 'stop-file';
        await this.scan();
        if (this.finishing === 'stop-file' && !hadStopFile) {
          // readdir is not a snapshot: a frame renamed just before the stop file may be missing from this listing.
          await this.scan();
          lastPass = true;
        }
        for (const f of this.release()) {
          yield f;
          if (this.opts.maxFiles !== undefined && ++this.count >= this.opts.maxFiles) return this.end('count');
        }
        if (lastPass) return this.end(this.finishing ?? 'stopped');
        if (this.finishing !== undefined || this.stopping) continue;
        const now = performance.now();
        if (this.opts.idleMs !== undefined && now - this.lastActivity >= this.opts.idleMs) return this.end('idle');
        await this.sleep(this.nextDeadline(now) - now);
      }
    } finally {
      watcher?.close();
    }
  }

  private end(reason: EndReason): void {
    this.ended = reason;
  }

  private startEvents(): FSWatcher | undefined {
    if (this.opts.fsEvents === false) return undefined;
    try {
      const w = fsWatch(this.dir, () => {
        this.dirty = true;
        this.poke();
      });
      // Losing events (inotify limits, unmounted share) only costs latency: rescans continue.
      w.on('error', () => w.close());
      return w;
    } catch {
      return undefined;
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async sleep(ms: number): Promise<void> {
    if (this.stopping || this.finishing) return;
    if (!this.dirty) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.wake = undefined; resolve(); }, Math.max(0, ms));
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    if (this.dirty) {
      this.dirty = false;
      await new Promise((r) => setTimeout(r, EVENT_COALESCE_MS));
    }
  }

  private nextDeadline(now: number): number {
    let at = now + this.rescanMs;
    if (this.mode === 'quiet') {
      // Deadlines already past belong to files held back (empty, or behind an earlier file): only rescans can change those.
      for (const p of this.pending.values()) {
        const due = p.changedAt + this.quietMs + 1;
        if (due > now) at = Math.min(at, due);
      }
    }
    if (this.opts.idleMs !== undefined) at = Math.min(at, this.lastActivity + this.opts.idleMs);
    return at;
  }

  private async scan(): Promise<void> {
    const entries = await readDir(this.dir);
    this.present = new Set(entries.filter((e) => !e.isDirectory()).map((e) => e.name));
    if (this.opts.stopFile !== undefined && this.present.has(this.opts.stopFile)) this.finishing ??= 'stop-file';

    for (const name of this.pending.keys()) if (!this.present.has(name)) this.pending.delete(name);
    // a kept file that is gone is forgotten: a new file of that name is a new candidate
    for (const name of this.kept.keys()) if (!this.present.has(name)) this.kept.delete(name);
    const candidates = [...this.present].filter((n) => !this.yielded.has(n) && !this.kept.has(n) && this.filter.isData(n));
    await eachLimit(candidates, STAT_CONCURRENCY, (name) => this.observe(name));
    await eachLimit([...this.kept.keys()], STAT_CONCURRENCY, (name) => this.recheck(name));
  }

  /** A kept file that changed is being written again: pending, to be completed and yielded once more. */
  private async recheck(name: string): Promise<void> {
    const was = this.kept.get(name);
    const now = await stampOf(join(this.dir, name));
    if (was === undefined || !this.kept.has(name)) return;
    if (now === undefined) { this.kept.delete(name); return; }
    if (sameStamp(was, now)) return;
    this.takeBack(name, now);
  }

  private takeBack(name: string, st: Stamp): void {
    const at = performance.now();
    this.kept.delete(name);
    this.yielded.delete(name);
    this.retried.add(name);
    this.pending.set(name, { name, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, changedAt: at });
    this.lastActivity = at;
  }

  /**
   * A yielded file its consumer could not use as it was (truncated, undecodable, unlike the first
   * file). Judged only if it has not changed since it was completed:
   * - changed: 'later' — taken back unjudged, and yielded again (`retried`) once complete;
   * - unchanged: undefined — the consumer keeps it (judged), and the watch goes on looking at it:
   *   should it change later (an instrument that paused longer than the quiet period), it is
   *   completed and yielded again like any file.
   * Once the watch is ending it can yield nothing more: a file that changed is returned as it is
   * now, to be read again at once (finish() declared everything present complete); after stop(),
   * nothing is retried (what is incomplete stays for a later run).
   */
  async reconsider(file: CompletedFile): Promise<CompletedFile | 'later' | undefined> {
    // a file fur may not even stat is judged by what its read said
    const now = await stampOf(file.path).catch(() => undefined);
    if (now === undefined) return undefined;
    if (sameStamp(now, stampFrom(file))) {
      if (!this.closing()) {
        this.yielded.delete(file.name);
        this.kept.set(file.name, now);
      }
      return undefined;
    }
    if (this.finishing !== undefined && !this.stopping) return { ...file, ...now, by: 'finished' };
    if (this.closing()) return undefined;
    this.takeBack(file.name, now);
    this.poke();
    return 'later';
  }

  /** No further pass is sure to come: nothing taken back now would be yielded. */
  private closing(): boolean {
    return this.ended !== undefined || this.finishing !== undefined || this.stopping ||
      (this.opts.maxFiles !== undefined && this.count >= this.opts.maxFiles);
  }

  private async observe(name: string): Promise<void> {
    let st;
    try {
      st = await stat(join(this.dir, name));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') { this.pending.delete(name); return; } // renamed away or removed between readdir and stat
      throw new FurError('unreadable-file', `${join(this.dir, name)}: cannot inspect (${code}); check permissions`,
        { file: join(this.dir, name), code }, { cause: e });
    }
    if (!st.isFile()) return;
    const now = performance.now();
    const prev = this.pending.get(name);
    if (prev && prev.size === st.size && prev.mtimeMs === st.mtimeMs && prev.ctimeMs === st.ctimeMs && prev.ino === st.ino) return;
    this.pending.set(name, { name, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, changedAt: now });
    this.lastActivity = now;
  }

  private release(): CompletedFile[] {
    const now = performance.now();
    const ordered = this.opts.ordered ?? true;
    const out: CompletedFile[] = [];
    for (const name of sortSequence(this.pending.keys())) {
      const p = this.pending.get(name)!;
      const by = this.completedBy(p, now);
      if (!by) {
        if (ordered) break;
        continue;
      }
      const marker = this.filter.markerOf(name);
      out.push({
        path: join(this.dir, name), name, size: p.size, mtimeMs: p.mtimeMs, ctimeMs: p.ctimeMs, ino: p.ino, by,
        marker: marker !== undefined && this.present.has(marker) ? join(this.dir, marker) : undefined,
        outOfOrder: this.lastYielded !== undefined && compareNames(name, this.lastYielded) < 0,
        ...(this.retried.delete(name) ? { retried: true } : {}),
      });
      this.pending.delete(name);
      this.yielded.add(name);
      if (this.lastYielded === undefined || compareNames(name, this.lastYielded) > 0) this.lastYielded = name;
      this.lastActivity = now;
    }
    return out;
  }

  private completedBy(p: Pending, now: number): CompletedBy | undefined {
    if (this.finishing) return 'finished';
    if (this.mode === 'rename') return 'rename';
    const marker = this.filter.markerOf(p.name);
    if (marker !== undefined && this.present.has(marker)) return 'marker';
    // Instruments often create the file before the first write: empty is never complete by silence alone.
    if (this.mode === 'quiet' && p.size > 0 && now - p.changedAt >= this.quietMs) return 'quiet';
    return undefined;
  }
}

export function watchFolder(dir: string, opts: WatchOptions = {}): FolderWatch {
  return new FolderWatch(dir, opts);
}

/** For a capture that has already finished: every matching file is complete. In sequence order. */
export async function listCompleted(
  dir: string,
  pattern = '*',
  opts: Pick<WatchOptions, 'tempPatterns' | 'markerSuffix' | 'stopFile'> = {},
): Promise<CompletedFile[]> {
  const filter = makeFilter({ ...opts, pattern });
  const entries = await readDir(dir);
  const present = new Set(entries.map((e) => e.name));
  const names = sortSequence(entries.filter((e) => !e.isDirectory() && filter.isData(e.name)).map((e) => e.name));
  const files: (CompletedFile | undefined)[] = new Array(names.length);
  await eachLimit(names.map((n, i) => [n, i] as const), STAT_CONCURRENCY, async ([name, i]) => {
    const path = join(dir, name);
    try {
      const st = await stat(path);
      if (!st.isFile()) return;
      const marker = filter.markerOf(name);
      files[i] = { path, name, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, by: 'listed', outOfOrder: false,
        marker: marker !== undefined && present.has(marker) ? join(dir, marker) : undefined };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      throw new FurError('unreadable-file', `${path}: cannot inspect (${code}); check permissions`, { file: path, code }, { cause: e });
    }
  });
  return files.filter((f): f is CompletedFile => f !== undefined);
}

/**
 * For a finished capture (nothing watches its folder): a file that could not be used and has
 * changed since it was listed is still being written. Waits until it has not changed for
 * `quietMs` and returns it as it is then, to be read again; undefined when it had not changed
 * (judge it), is gone, or still changes after `maxWaitMs` or once `signal` aborts.
 */
export async function settled(file: CompletedFile, opts: { quietMs?: number; maxWaitMs?: number; signal?: AbortSignal } = {}): Promise<CompletedFile | undefined> {
  const quietMs = opts.quietMs ?? DEFAULT_QUIET_MS;
  const end = performance.now() + (opts.maxWaitMs ?? MAX_SETTLE_MS);
  let seen = await stampOf(file.path);
  if (seen === undefined || sameStamp(seen, stampFrom(file))) return undefined;
  let since = performance.now();
  const step = Math.max(10, Math.min(250, quietMs / 4));
  while (!opts.signal?.aborted && performance.now() < end) {
    await new Promise((r) => setTimeout(r, step));
    const now = await stampOf(file.path);
    if (now === undefined) return undefined;
    if (!sameStamp(now, seen)) { seen = now; since = performance.now(); continue; }
    if (performance.now() - since >= quietMs) return { ...file, ...seen };
  }
  return undefined;
}

/**
 * How long a finished capture's file may go on changing before it is judged as it is: a file
 * still written to a minute after the capture was declared finished is not being completed.
 */
const MAX_SETTLE_MS = 60_000;

async function stampOf(path: string): Promise<Stamp | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino } : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FurError('unreadable-file', `${path}: cannot inspect (${(e as NodeJS.ErrnoException).code}); check permissions`,
      { file: path, code: (e as NodeJS.ErrnoException).code }, { cause: e });
  }
}

/** A completed file's stamp; parts it lacks (a file from elsewhere) do not count as changes. */
function stampFrom(f: CompletedFile): Partial<Stamp> {
  return { size: f.size, mtimeMs: f.mtimeMs, ctimeMs: f.ctimeMs, ino: f.ino };
}

function sameStamp(now: Stamp, was: Partial<Stamp>): boolean {
  return now.size === was.size && now.mtimeMs === was.mtimeMs &&
    (was.ctimeMs === undefined || now.ctimeMs === was.ctimeMs) && (was.ino === undefined || now.ino === was.ino);
}

async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function positive(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0) throw setting(name, v, 'must be a positive number of milliseconds');
  return v;
}

function setting(name: string, value: unknown, why: string): FurError<'bad-setting'> {
  return new FurError('bad-setting', `${name}: ${String(value)} ${why}`, { setting: name, value });
}
