/**
 * One run of fur's main job: completed source files → frames → batches → packaged and uploaded
 * → committed → local copies deleted. Stages overlap: files are read ahead while earlier
 * batches upload, chunks compress in the thread pool while others are on the wire.
 */
import { posix } from 'node:path';
import { FurError, isFurError } from '../errors.js';
import { pickFormat, preloadDecoder, readFrames } from '../source/readers/index.js';
import { listCompleted, settled, watchFolder, type CompletedFile, type FolderWatch, type WatchOptions } from '../source/watch.js';
import type { Destination } from '../transport/destination.js';
import { AppendTarget } from './append.js';
import { batchStreams, collect, readAhead, type BatchStream, type Rejected, type SourceItem } from './batch.js';
import { BatchesTarget } from './batches.js';
import { SourceCleanup, unsyncedNotice } from './cleanup.js';
import { FilesTarget } from './files.js';
import { Lease, leasePath, leaseTicket, type LeaseTicket } from './lease.js';
import { sweepTemporaries } from './sweep.js';
import { sameFrames } from './layout.js';
import { validate, type PipelineOptions } from './options.js';
import type { Progress } from './progress.js';
import type { FrameSource } from './source.js';
import type { CommitResult, Target } from './target.js';

export interface RunSpec {
  /** the folder of frame files (absent when `frames` gives the frames) */
  sourceDir?: string;
  /** which files in it are frames */
  pattern?: string;
  /** frames from elsewhere than a folder: pushed from memory, or received from a stream */
  frames?: FrameSource;
  /** watch the folder (continuous capture); absent = upload what is there now */
  watch?: WatchOptions;
  /** names in a finished folder that are not frames (a watch has its own) */
  notFrames?: Pick<WatchOptions, 'stopFile' | 'markerSuffix'>;
  /** stop after this many frames */
  maxFrames?: number;
  /** the finished folder's listing, when the caller started it already (see listFinished) */
  listing?: Promise<CompletedFile[]>;
  dest: Destination;
  /** file path (append) or folder (files, batches) inside the destination */
  destPath: string;
  options: PipelineOptions;
  progress: Progress;
  signal?: AbortSignal;
  /** the lease the run holds on its target (lease.ts); kept across reconnections, fresh when absent */
  lease?: LeaseTicket;
  /** a live view (src/serve): shown each batch as it starts, told when its commit is durable */
  view?: { batch(b: BatchStream): void; committed(index: number, r: CommitResult): void };
}

export interface RunSummary {
  files: number;
  frames: number;
  bytes: number;
  rejected: Rejected[];
  endReason: string;
  seconds: number;
}

/** why a file name is unsafe as a remote path component, or undefined */
export function unsafeName(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return `'${name}' is not a file name`;
  if (/[/\\]/.test(name)) return 'contains a path separator';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains control characters';
  return undefined;
}

/** Completed files, minus those a previous run already committed (deleted now if asked). */
async function* fresh(
  files: AsyncIterable<CompletedFile>, isCommitted: (f: CompletedFile) => Promise<boolean | FurError>,
  spec: RunSpec, counts: { files: number }, onRejected: (r: Rejected) => void, onRetried: (f: CompletedFile) => void, cleanup: SourceCleanup,
  lease: Lease,
): AsyncGenerator<CompletedFile> {
  for await (const f of files) {
    if (f.retried) {
      onRetried(f);
      spec.progress.event({ type: 'retried', file: f.path });
    }
    const unsafe = unsafeName(f.name);
    if (unsafe) {
      // the name becomes a remote path: never let it point outside the destination folder
      const error = new FurError('unsafe-name', `${f.path}: file name ${unsafe}; rename the file to upload it (it is kept)`, { file: f.path });
      onRejected({ file: f, error });
      continue;
    }
    const stored = await isCommitted(f);
    if (stored instanceof FurError) {
      // its name is taken at the destination by other frames: neither skip it nor delete it
      onRejected({ file: f, error: stored });
      continue;
    }
    if (stored) {
      counts.files++;
      spec.progress.alreadyStored(f.name, f.size);
      spec.progress.event({ type: 'skipped', file: f.name, reason: 'already committed at the destination' });
      if (spec.options.deleteSource) {
        lease.check();
        const n = await cleanup.earlier([f]);
        spec.progress.event({ type: 'deleted', files: n, names: [f.name], reason: 'committed at the destination by an earlier run' });
      }
      continue;
    }
    yield f;
  }
}

/**
 * The completed files of a finished folder; the first one's decoder is loaded meanwhile. Started
 * before the destination is connected, it is done by the time the first frame is wanted.
 */
export function listFinished(dir: string, pattern: string, read: PipelineOptions['read'], notFrames: RunSpec['notFrames'] = {}): Promise<CompletedFile[]> {
  const listing = listCompleted(dir, pattern, notFrames);
  listing.then((l) => { if (l.length > 0) preloadDecoder(pickFormat(l[0]!.path, read)); }, () => undefined);
  return listing;
}

/** The method's target at the destination: what a run stores into. */
async function openTarget(spec: RunSpec, o: PipelineOptions): Promise<Target | FilesTarget> {
  return o.method === 'append'
    ? spec.dest.url.startsWith('s3://')
      // an object store: one multipart upload, completed when the run ends (loaded on demand: it needs the S3 SDK)
      ? await (await import('./append-s3.js')).S3AppendTarget.open(spec.dest, spec.destPath, o, (message) => spec.progress.event({ type: 'warning', tag: 'destination', message }))
      : await AppendTarget.open(spec.dest, spec.destPath, o)
    : o.method === 'batches' ? await BatchesTarget.open(spec.dest, spec.destPath, o, (p) => spec.progress.event({ type: 'scan', ...p }))
    : await FilesTarget.open(spec.dest, spec.destPath);
}

/** Close a target after a failure: the first error is the one to report; an S3 upload stays pending, to be resumed, not completed. */
async function abandon(target: Target | FilesTarget): Promise<void> {
  const suspend = (target as { suspend?: () => Promise<void> }).suspend;
  await (suspend ? suspend.call(target) : target.close()).catch(() => undefined);
}

/** The folder a run reads its frames from (every run without `frames` has one). */
export function folderOf(spec: Pick<RunSpec, 'sourceDir' | 'pattern'>): { dir: string; pattern: string } {
  if (spec.sourceDir === undefined) throw new FurError('no-source', 'a run needs a source folder or frames to store', {});
  return { dir: spec.sourceDir, pattern: spec.pattern ?? '*' };
}

/** The destination as the user named it: the file (append) or the folder. */
function where(spec: RunSpec): string {
  return `${spec.dest.url.replace(/\/$/, '')}${spec.destPath === '.' ? '' : '/' + spec.destPath}`;
}

/**
 * The run, holding the lease on its target from before it writes anything until it ends (see
 * lease.ts): a second run on the same destination is refused, and a run that loses its lease
 * stops before its next commit and deletes no more sources.
 */
export async function run(spec: RunSpec): Promise<RunSummary> {
  const o = validate(spec.options);
  const lease = await Lease.acquire(spec.dest, leasePath(o.method, spec.destPath), {
    where: where(spec), ticket: spec.lease ?? leaseTicket(), signal: spec.signal,
    notice: (message) => spec.progress.event({ type: 'warning', tag: 'lease', message }),
  });
  try {
    return await runHeld(spec, o, lease);
  } finally {
    await lease.release();
  }
}

async function runHeld(spec: RunSpec, o: PipelineOptions, lease: Lease): Promise<RunSummary> {
  const progress = spec.progress;
  // files kept and why, by path: a kept file that changes and is then committed leaves the list
  const kept = new Map<string, Rejected>();
  let watcher: FolderWatch | undefined;
  let source: AsyncIterable<CompletedFile> | undefined;
  const folder = spec.frames ? undefined : folderOf(spec);
  // a finished folder is listed while the destination is opened (a round trip or more)
  const listing = !folder || spec.watch ? undefined : (spec.listing ?? listFinished(folder.dir, folder.pattern, o.read, spec.notFrames));
  listing?.catch(() => undefined); // awaited below, after the destination's own errors
  const opening = openTarget(spec, o);
  opening.catch(() => undefined);
  if (!folder) {
    if (o.method === 'files') {
      await opening.then(abandon, () => undefined);
      throw new FurError('method-unsupported', '--method files stores files as they are; frames pushed or received are stored with append or batches', { url: spec.dest.url, method: o.method });
    }
  } else if (spec.watch) {
    watcher = watchFolder(folder.dir, { pattern: folder.pattern, ...spec.watch, signal: spec.signal });
    source = watcher;
    // a lease lost while no frame comes ends the watch: the run then fails (lease.check below)
    void lease.fenced.then(() => watcher?.stop());
  } else {
    let listed: CompletedFile[];
    try {
      listed = await listing!;
    } catch (e) {
      // the listing failed: a target that opened is let go of as after any failure
      await opening.then(abandon, () => undefined);
      throw e;
    }
    progress.listed(listed);
    source = (async function* () { for (const f of listed) { if (spec.signal?.aborted) return; yield f; } })();
  }
  const target = await opening;

  const resumed = { files: 0, frames: [...target.committed.values()].reduce((a, b) => a + b, 0) };
  progress.event({ type: 'start', method: o.method, source: spec.frames?.label ?? folder!.dir, destination: where(spec), resumed });
  try {
    // under the lease: what is swept is no other run's work in progress
    lease.check();
    const swept = await sweepTemporaries(spec.dest, o.method, spec.destPath, { progress: (done, of) => progress.event({ type: 'sweeping', done, of }) });
    if (swept.files) progress.event({ type: 'swept', ...swept });
  } catch (e) {
    await abandon(target);
    throw e;
  }
  const notice = unsyncedNotice(spec.dest, o);
  if (notice) progress.event({ type: 'warning', tag: 'not-durable', message: notice });
  progress.start();
  const warn = (m: string) => progress.event({ type: 'warning', tag: 'delete-failed', message: m });
  const started = Date.now();
  let endReason = 'finished';
  // --count stops the watcher, which then reports 'stopped'; the run knows better
  let countReached = false;
  const reject = (r: Rejected) => {
    kept.set(r.file.path, r);
    progress.kept(r.file.name, r.file.size);
    progress.event({ type: 'rejected', file: r.file.path, tag: r.error.tag, message: r.error.message });
  };
  const retried = (f: CompletedFile) => {
    kept.delete(f.path);
    progress.unkept(f.name);
  };
  // a file that changed since it was completed is still being written: waited for, not judged
  const reconsider = watcher ? (f: CompletedFile) => watcher!.reconsider(f) : (f: CompletedFile) => settled(f, { signal: spec.signal });
  const cleanup = new SourceCleanup(spec.dest, spec.destPath, o, warn, (file, error) => reject({ file, error }));
  try {
    if (target instanceof FilesTarget) {
      const files = fresh(source!, (f) => target.has(f), spec, resumed, reject, retried, cleanup, lease);
      countReached = await uploadFiles(files, target, spec, cleanup, lease);
    } else {
      // read ahead enough to keep the upload fed, not a batch more: commits in flight hold batches already
      const items = spec.frames ? spec.frames.items(target, progress) : readAhead(fresh(source!, (f) => storedUnderName(target, f, o, spec.dest), spec, resumed, reject, retried, cleanup, lease), o.read, { files: 64, bytes: 8 << 20 }, (r) => {
        // with --on-mismatch stop the error ends the run and is reported once, as the run's error
        if (o.onMismatch !== 'stop') reject(r);
      }, o.onMismatch, reconsider);
      const limited = limitFrames(taking(items, progress), spec.maxFrames, () => { countReached = true; watcher?.stop(); });
      // Up to `concurrency` commits at once (a long link stays busy while one publishes). Each
      // result is taken as soon as its commit is durable, in batch order: only then are the
      // batch's sources deleted; after a failure no later result is taken.
      const depth = Math.max(1, target.concurrency ?? 1);
      const open: Promise<void>[] = [];
      let results: Promise<void> = Promise.resolve();
      // what is kept of a batch until its result is taken: what it took (complete once its commit
      // is done), not its frames, which may go once sent
      const settle = async (batch: BatchStream, result: Promise<CommitResult>): Promise<void> => {
        const r = await result;
        const { index, taken } = batch;
        progress.committed(index, taken.files, taken.frames, r.bytes, r.frames, commitReason(batch, o));
        spec.view?.committed(index, r);
        // a folder run's units are its completed files; other sources let go of their own
        if (spec.frames) await spec.frames.release(taken.files);
        else if (o.deleteSource) {
          // a commit made after the lease was lost or expired is not one this run can vouch for
          lease.check();
          const n = await cleanup.batch(taken.files as CompletedFile[], r.stored);
          progress.event({ type: 'deleted', files: n, names: taken.files.map((f) => f.name), reason: `committed in batch ${index}${cleanup.readBack ? ', and its frames read back intact' : ''}` });
        }
      };
      // A batch's frames are let go of as they are written: nothing here keeps the batch itself.
      // A target that stores frames as they come takes the stream; others, the collected batch.
      const start = (stream: BatchStream) => {
        const batch = fenced(stream, lease);
        spec.view?.batch(batch);
        const commit = async (): Promise<CommitResult> => {
          try {
            return 'commitStream' in target ? await target.commitStream(batch) : await target.commit(await collect(batch));
          } finally {
            batch.close(); // a commit that failed before taking every item ends its batch there
          }
        };
        const result = commit();
        result.catch(() => undefined); // taken in order below
        results = results.then(() => settle(batch, result));
        // taken below, but maybe only once the next batch is complete: until then a failed
        // commit must not count as unhandled (node would end the process on it)
        results.catch(() => undefined);
        open.push(results);
      };
      const next = batchStreams(limited, o.batchFrames, o.batchSeconds, 0, batchLimit(target, spec.frames));
      try {
        for (;;) {
          // room first, then the next batch, which is handed out once the one before it has ended
          while (open.length >= depth) await open.shift();
          const got = await next.next();
          if (got.done) break;
          start(got.value);
        }
        await results;
      } finally {
        await next.return(undefined);
        // after a failure, let the commits still running end before the target is closed
        await Promise.allSettled(open);
      }
    }
    endReason = countReached ? 'count' : watcher?.endReason ?? spec.frames?.endReason ?? (spec.signal?.aborted ? 'stopped' : 'finished');
    // closing writes too (the last sidecar, the file's final size)
    lease.check();
  } catch (e) {
    progress.stop();
    watcher?.stop();
    await cleanup.close();
    await abandon(target);
    throw e;
  }
  progress.stop();
  watcher?.stop();
  await cleanup.close();
  await target.close();
  const seconds = (Date.now() - started) / 1000;
  const rejected = [...kept.values()];
  const summary = { files: progress.files, frames: progress.frames, bytes: progress.bytes, rejected, endReason, seconds };
  await progress.sample();
  progress.event({
    type: 'done', files: summary.files, frames: summary.frames, bytes: summary.bytes, seconds: Number(seconds.toFixed(2)),
    mbPerSec: Number((summary.bytes / 1e6 / Math.max(seconds, 1e-3)).toFixed(2)), rejected: rejected.length, endReason,
    kept: rejected.map((r) => ({ file: r.file.path, tag: r.error.tag, message: r.error.message })),
    progress: progress.snapshot(),
  });
  return summary;
}

/** Frames per batch: the target's limit, and the source's where it holds frames until released. */
function batchLimit(target: Target, frames: FrameSource | undefined): ((first: SourceItem) => number) | undefined {
  const limits = [target.batchFrames?.bind(target), frames?.batchLimit?.bind(frames)].filter((f) => f !== undefined);
  return limits.length ? (first) => Math.min(...limits.map((f) => f(first))) : undefined;
}

/**
 * Whether a file is already committed. Frames are known by their source file's name, so a name
 * alone is not enough: a new capture that reuses names must not be taken for the old one (and
 * deleted unsent). Where the destination records frame hashes, the local frames must match them.
 */
async function storedUnderName(target: Target, f: CompletedFile, o: PipelineOptions, dest: Destination): Promise<boolean | FurError> {
  if (!target.committed.has(f.name)) return false;
  const stored = target.hashes.get(f.name);
  if (!stored) return true; // written before frame hashes were kept: the name is all there is
  let block;
  try {
    block = await readFrames(f.path, o.read);
  } catch (e) {
    if (isFurError(e)) return e;
    throw e;
  }
  if (sameFrames(block, stored)) return true;
  return new FurError('name-reused',
    `${f.path}: ${dest.url} already holds other frames from a file of this name; a capture that reuses file names needs a new destination`,
    { file: f.path });
}

/** Items as the batches take them: the progress figures' frames seen. */
async function* taking<T extends { file: { name: string; size: number }; block: { count: number } }>(items: AsyncIterable<T>, progress: Progress): AsyncGenerator<T> {
  for await (const it of items) {
    progress.took(it.file.name, it.file.size, it.block.count);
    yield it;
  }
}

/** Why a batch was committed when it was, for the log. */
function commitReason(batch: BatchStream, o: PipelineOptions): string {
  if (batch.taken.frames >= batch.want) return `${batch.want} frames (${batch.want === o.batchFrames ? '--batch' : 'the most one commit holds'})`;
  if (batch.last) return 'the source ended';
  return `--batch-seconds (${o.batchSeconds} s) passed`;
}

/**
 * The batch, its items checked against the lease as they are taken and once more when they end,
 * before the target commits them: a run that lost its lease publishes no batch it had not
 * finished (and the consumer sees the lease's error as the commit's).
 */
function fenced(batch: BatchStream, lease: Lease): BatchStream {
  const items = batch.items;
  const checked = (async function* () {
    lease.check();
    for await (const item of items) {
      yield item;
      lease.check();
    }
    lease.check();
  })();
  // everything else (`last` is a getter over the batch's own state) is the batch's; `items` stays writable, as
  // on any batch: a live view (src/serve/frames.ts) follows the items by wrapping them
  return Object.create(batch, { items: { value: checked, writable: true } }) as BatchStream;
}

async function* limitFrames<T extends { block: { count: number } }>(items: AsyncIterable<T>, max: number | undefined, stop: () => void): AsyncGenerator<T> {
  let n = 0;
  if (max !== undefined && max <= 0) { stop(); return; }
  for await (const it of items) {
    yield it;
    n += it.block.count;
    if (max !== undefined && n >= max) { stop(); return; }
  }
}

const FILES_IN_FLIGHT = 256;
const FILE_BYTES_IN_FLIGHT = 64 << 20;

/** `files` method: several uploads in flight; each file is deleted once its rename landed. True when --count ended it. */
async function uploadFiles(files: AsyncIterable<CompletedFile>, target: FilesTarget, spec: RunSpec, cleanup: SourceCleanup, lease: Lease): Promise<boolean> {
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let batch = 0;
  let count = 0;
  let countReached = false;
  // Each file costs a few round trips (open; write + fsync + close; rename): on a long link only
  // many files at once keep it busy. Bounded by count and by the file data held in memory.
  const maxFiles = spec.options.parallelFiles ?? FILES_IN_FLIGHT;
  let held = 0;
  const weight = (f: CompletedFile) => Math.min(f.size, 8 << 20); // larger files are streamed
  // woken whenever an upload ends (Promise.race over hundreds of uploads per file would cost O(n²))
  let wake: (() => void) | undefined;
  for await (const f of files) {
    if (failure) break;
    while (inflight.size > 0 && (inflight.size >= maxFiles || held + weight(f) > FILE_BYTES_IN_FLIGHT)) {
      await new Promise<void>((r) => { wake = r; });
    }
    if (failure) break;
    const index = batch++;
    held += weight(f);
    const p = (async () => {
      lease.check();
      spec.progress.took(f.name, f.size, 1);
      const bytes = await target.upload(f);
      spec.progress.committed(index, [f], 1, bytes, 0, 'uploaded and renamed into place');
      if (spec.options.deleteSource) {
        lease.check();
        spec.progress.event({ type: 'deleted', files: await cleanup.file(f), names: [f.name], reason: `uploaded and renamed into place${cleanup.readBack ? ', and read back intact' : ''}` });
      }
    })().catch((e) => { failure ??= e; }).finally(() => {
      held -= weight(f);
      inflight.delete(p);
      wake?.();
      wake = undefined;
    });
    inflight.add(p);
    if (spec.maxFrames !== undefined && ++count >= spec.maxFrames) { countReached = true; break; }
  }
  await Promise.all(inflight);
  if (failure) throw failure;
  return countReached;
}

/** Split a destination URL path into where the destination is opened and the path inside it. */
export function splitTarget(method: string, path: string): { root: string; inside: string } {
  if (method === 'append') {
    const dir = posix.dirname(path);
    const name = posix.basename(path);
    if (!name || name === '/' || path.endsWith('/')) {
      throw new FurError('bad-url', `for --method append the destination names the HDF5 file (e.g. sftp://host/data/run1.h5), not a folder: ${path}`, { path });
    }
    return { root: dir, inside: name };
  }
  return { root: path, inside: '.' };
}

export { isFurError };
