/**
 * From completed files to batches: files are read ahead (bounded, in order) while earlier
 * batches upload, and grouped into batches of N frames. A batch holds whole files, so a file
 * is committed — and may be deleted — as one unit.
 */
import type { FurError } from '../errors.js';
import { isFurError } from '../errors.js';
import type { FrameBlock } from '../source/frame.js';
import { checkConsistent, readFrames, type ReadOptions } from '../source/readers/index.js';
import type { CompletedFile } from '../source/watch.js';

export interface SourceItem {
  file: CompletedFile;
  block: FrameBlock;
}

export interface Batch {
  index: number;
  items: SourceItem[];
  frames: number;
  bytes: number;
}

/** A file that could not be used; reported by name and kept on disk. */
export interface Rejected { file: CompletedFile; error: FurError }

/**
 * Read files in order, up to `ahead.files` files or `ahead.bytes` bytes ahead of the consumer:
 * reading overlaps upload, and when upload is slower than the instrument the backlog stays on
 * the local disk, not in memory.
 */
export async function* readAhead(
  files: AsyncIterable<CompletedFile>, opts: ReadOptions, ahead: { files: number; bytes: number },
  onRejected: (r: Rejected) => void, onMismatch: 'stop' | 'skip', first?: FrameBlock,
): AsyncGenerator<SourceItem> {
  const queue: { file: CompletedFile; p: Promise<FrameBlock> }[] = [];
  let queuedBytes = 0;
  let done = false;
  let failure: unknown;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  let stopped = false;
  const it = files[Symbol.asyncIterator]();
  const producer = (async () => {
    for (;;) {
      while (!stopped && queue.length && (queue.length >= ahead.files || queuedBytes >= ahead.bytes)) {
        await new Promise<void>((r) => { wakeProducer = r; });
      }
      if (stopped) return;
      const n = await it.next();
      if (n.done || stopped) return;
      const p = readFrames(n.value.path, opts);
      p.catch(() => undefined); // reported when its turn comes
      queue.push({ file: n.value, p });
      queuedBytes += n.value.size;
      wakeConsumer?.();
    }
  })().catch((e) => { failure = e; }).finally(() => { done = true; wakeConsumer?.(); });
  let reference = first;
  try {
    for (;;) {
      if (!queue.length) {
        if (done) { if (failure) throw failure; return; }
        await new Promise<void>((r) => { wakeConsumer = r; });
        continue;
      }
      const next = queue.shift()!;
      queuedBytes -= next.file.size;
      wakeProducer?.();
      let block: FrameBlock;
      try {
        block = await next.p;
      } catch (e) {
        if (!isFurError(e)) throw e;
        onRejected({ file: next.file, error: e });
        if (onMismatch === 'stop') throw e;
        continue;
      }
      if (reference) {
        const err = checkConsistent(reference, block);
        if (err) {
          onRejected({ file: next.file, error: err });
          if (onMismatch === 'stop') throw err;
          continue;
        }
      } else reference = block;
      yield { file: next.file, block };
    }
  } finally {
    stopped = true;
    wakeProducer?.();
    // the source may be waiting for files that will never come: do not wait for it to answer
    void it.return?.();
    void producer;
  }
}

/**
 * Group items into batches of at least `frames` frames, or fewer when `seconds` pass with an
 * open batch (a slow capture still reaches the destination) or when the source ends.
 * `limit`, given a batch's first item, may close batches sooner (see Target.batchFrames).
 */
export async function* batches(items: AsyncIterable<SourceItem>, frames: number, seconds: number, startIndex = 0, limit?: (first: SourceItem) => number): AsyncGenerator<Batch> {
  let want = frames;
  const it = items[Symbol.asyncIterator]();
  let current: Batch = { index: startIndex, items: [], frames: 0, bytes: 0 };
  let pending: Promise<IteratorResult<SourceItem>> | undefined;
  let deadline = 0;
  for (;;) {
    pending ??= it.next();
    let next: IteratorResult<SourceItem> | 'timeout';
    if (current.items.length) {
      const wait = Math.max(0, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      next = await Promise.race([pending, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), wait); })]);
      clearTimeout(timer);
    } else next = await pending;
    if (next === 'timeout') {
      yield current;
      current = { index: current.index + 1, items: [], frames: 0, bytes: 0 };
      continue;
    }
    pending = undefined;
    if (next.done) {
      if (current.items.length) yield current;
      return;
    }
    if (!current.items.length) {
      deadline = Date.now() + seconds * 1000;
      want = limit ? Math.max(1, Math.min(frames, limit(next.value))) : frames;
    }
    current.items.push(next.value);
    current.frames += next.value.block.count;
    current.bytes += next.value.file.size;
    if (current.frames >= want) {
      yield current;
      current = { index: current.index + 1, items: [], frames: 0, bytes: 0 };
    }
  }
}
