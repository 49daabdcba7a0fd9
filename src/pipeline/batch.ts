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
import type { Origin } from './source.js';

export interface SourceItem {
  /** a completed file, or frames pushed from memory (see FrameSource) */
  file: Origin;
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
 * Failures that come from the settings, not from the file: every file would fail alike, so they
 * end the run whatever --on-mismatch says.
 */
const SETTING_ERRORS = new Set(['raw-needs-layout']);

/**
 * Asked about a file that could not be used as it was read, before it is judged: a file still
 * being written is not bad. `'later'`: the source yields it again once it is complete; a file:
 * it has settled, read it again now; undefined: it has not changed, judge it.
 */
export type Reconsider = (file: CompletedFile) => Promise<CompletedFile | 'later' | undefined>;

/**
 * Read files in order, up to `ahead.files` files or `ahead.bytes` bytes ahead of the consumer:
 * reading overlaps upload, and when upload is slower than the instrument the backlog stays on
 * the local disk, not in memory. A file that cannot be read, or whose frames differ from the
 * first file's, is reconsidered, then (unchanged) rejected: skipped, or the end of the run.
 */
export async function* readAhead(
  files: AsyncIterable<CompletedFile>, opts: ReadOptions, ahead: { files: number; bytes: number },
  onRejected: (r: Rejected) => void, onMismatch: 'stop' | 'skip', reconsider?: Reconsider,
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
  let reference: FrameBlock | undefined;
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
      let { file, p } = next;
      for (;;) {
        let block: FrameBlock | undefined;
        let error: FurError | undefined;
        try {
          block = await p;
        } catch (e) {
          if (!isFurError(e) || SETTING_ERRORS.has(e.tag)) throw e;
          error = e;
        }
        if (block && reference) error = checkConsistent(reference, block);
        if (!error) {
          reference ??= block;
          yield { file, block: block! };
          break;
        }
        const again = await reconsider?.(file);
        if (again === 'later') break;
        if (again) {
          // it changed after it was completed and has settled: this is the file now
          file = again;
          p = readFrames(file.path, opts);
          continue;
        }
        onRejected({ file, error });
        if (onMismatch === 'stop') throw error;
        break;
      }
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
 * A batch handed out before its frames are all read: its items arrive as the consumer takes them,
 * so a target that stores frames as they come (append) holds none of a batch in memory, however
 * large the batch (see batchStreams).
 */
export interface BatchStream {
  index: number;
  /** the frames' layout, and frames and bytes in a file, from the batch's first file */
  first: { dtype: FrameBlock['dtype']; shape: number[]; frames: number; fileBytes: number; encoding?: FrameBlock['encoding'] };
  /** frames the batch ends at (it ends sooner when --batch-seconds pass or the source ends) */
  want: number;
  /** the items, each once; ends where the batch ends */
  items: AsyncIterable<SourceItem>;
  /** what has been taken so far: the whole batch once `items` has ended */
  taken: { files: Origin[]; frames: number; bytes: number };
  /** ends the batch where its consumer stopped (a failed commit): the next batch goes on from there */
  close(): void;
  /**
   * No batch follows: the source ended within this batch, or had ended already when it was full
   * (looked at without waiting). Known once `items` has ended; false while a capture goes on.
   */
  readonly last: boolean;
}

/**
 * Group items into batches of at least `frames` frames, or fewer when `seconds` pass with an
 * open batch (a slow capture still reaches the destination) or when the source ends.
 * `limit`, given a batch's first item, may close batches sooner (see Target.batchFrames).
 * The next batch is handed out only once the previous one has ended: its items are taken, or
 * it was closed.
 */
export async function* batchStreams(items: AsyncIterable<SourceItem>, frames: number, seconds: number, startIndex = 0, limit?: (first: SourceItem) => number): AsyncGenerator<BatchStream> {
  const it = items[Symbol.asyncIterator]();
  // an item asked for and not yet taken: it belongs to whichever batch takes it next
  let pending: Promise<IteratorResult<SourceItem>> | undefined;
  let sourceEnded = false;
  // the first item of a batch closed before its consumer took it: it starts the next batch
  let carried: SourceItem | undefined;
  for (let index = startIndex; !sourceEnded; index++) {
    // only firstItem refers to the first item here, and only until the stream hands it out:
    // this suspended generator must not keep a file's frames alive
    let firstItem = carried ?? await (async () => {
      pending ??= it.next();
      const head = await pending;
      pending = undefined;
      return head.done ? undefined : head.value;
    })();
    carried = undefined;
    if (!firstItem) return;
    const first = { dtype: firstItem.block.dtype, shape: firstItem.block.shape, frames: firstItem.block.count, fileBytes: firstItem.file.size, encoding: firstItem.block.encoding };
    const want = limit ? Math.max(1, Math.min(frames, limit(firstItem))) : frames;
    const deadline = Date.now() + seconds * 1000;
    const taken = { files: [] as Origin[], frames: 0, bytes: 0 };
    let closed = false;
    let last = false;
    let ended!: () => void;
    const end = new Promise<void>((resolve) => { ended = resolve; });
    const take = (item: SourceItem): SourceItem => {
      taken.files.push(item.file);
      taken.frames += item.block.count;
      taken.bytes += item.file.size;
      return item;
    };
    const handOver = (): SourceItem => { const item = firstItem!; firstItem = undefined; return item; };
    const stream = async function* (): AsyncGenerator<SourceItem> {
      try {
        // the consumer holds the first item now, as long as it needs it; nothing here keeps it
        yield take(handOver());
        while (!closed && taken.frames < want) {
          pending ??= it.next();
          let timer: NodeJS.Timeout | undefined;
          const next = await Promise.race([pending, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())); })]);
          clearTimeout(timer);
          if (next === 'timeout' || closed) return;
          pending = undefined;
          if (next.done) { sourceEnded = last = true; return; }
          yield take(next.value);
        }
        if (!closed) {
          // Full. If the source has ended already (a directory read to its end), say so now: the
          // target can then close the file with this batch's commit. One turn of the event loop,
          // no waiting; an item that arrives is the next batch's.
          pending ??= it.next();
          const peek = await Promise.race([pending, new Promise<'open'>((r) => setImmediate(() => r('open')))]);
          if (peek !== 'open' && peek.done) { pending = undefined; sourceEnded = last = true; }
        }
      } finally {
        ended();
      }
    };
    yield {
      index, want, taken, first,
      get last() { return last; },
      items: stream(),
      close: () => {
        closed = true;
        if (firstItem) { carried = firstItem; firstItem = undefined; }
        ended();
      },
    };
    await end;
  }
}

/** A batch stream's items, all read: a Batch. */
export async function collect(stream: BatchStream): Promise<Batch> {
  const items: SourceItem[] = [];
  for await (const item of stream.items) items.push(item);
  return { index: stream.index, items, frames: stream.taken.frames, bytes: stream.taken.bytes };
}
